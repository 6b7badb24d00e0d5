package k8saudit

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestParseLineGolden runs every line of testdata/lines.jsonl through the
// parser and compares the outcomes with testdata/lines.golden.
func TestParseLineGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "lines.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(in))
	for n := 1; sc.Scan(); n++ {
		id, reject := parseLine(sc.Bytes())
		switch {
		case reject != "":
			fmt.Fprintf(&got, "%d reject: %s\n", n, reject)
		default:
			fmt.Fprintf(&got, "%d id: %s\n", n, id)
		}
	}
	path := filepath.Join("testdata", "lines.golden")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("parse outcomes differ from %s (go test -update to accept):\n%s", path, got.Bytes())
	}
}

func FuzzParseLine(f *testing.F) {
	in, err := os.ReadFile(filepath.Join("testdata", "lines.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	for line := range bytes.Lines(in) {
		f.Add(bytes.TrimRight(line, "\n"))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		id, reject := parseLine(line)
		if (id == "") == (reject == "") {
			t.Fatalf("parseLine(%q) = id %q, reject %q: want exactly one", line, id, reject)
		}
		if id != "" {
			if err := msgid.Validate(id); err != nil {
				t.Fatalf("parseLine(%q) id %q: %v", line, id, err)
			}
		}
	})
}

func BenchmarkParseLine(b *testing.B) {
	line := []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"0b6d2f4e-8a31-4c1e-9d0f-2b7c5e6a1f90","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods","verb":"list","user":{"username":"dave@example.com","groups":["developers","system:authenticated"]},"sourceIPs":["198.51.100.23"],"userAgent":"kubectl/v1.30.1","objectRef":{"resource":"pods","namespace":"shop","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-10T09:00:01.000000Z","stageTimestamp":"2026-03-10T09:00:01.004000Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}`)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, reject := parseLine(line); reject != "" {
			b.Fatal(reject)
		}
	}
}
