package falcohttp

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func outcome(body []byte) string {
	var b bytes.Buffer
	n := 0
	split(body, func(p part) bool {
		if p.reject != "" {
			fmt.Fprintf(&b, "part %d dead-letter (%s): %s\n", n, p.id, p.reject)
		} else {
			fmt.Fprintf(&b, "part %d id: %s (%d bytes)\n", n, p.id, len(p.data))
		}
		n++
		return true
	})
	fmt.Fprintf(&b, "%d parts\n", n)
	return b.String()
}

func TestBodiesGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bodies", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bodies: %v", err)
	}
	var got bytes.Buffer
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&got, "== %s\n%s", filepath.Base(f), outcome(body))
	}
	path := filepath.Join("testdata", "bodies.golden")
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
		t.Errorf("outcomes differ from %s (go test -update to accept):\n%s", path, got.Bytes())
	}
}

func FuzzSplit(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "bodies", "*"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		split(body, func(p part) bool {
			if err := msgid.Validate(p.id); err != nil {
				t.Fatalf("part %q: id %q: %v", p.data, p.id, err)
			}
			if len(p.data) == 0 {
				t.Fatal("empty part")
			}
			if !bytes.Contains(body, p.data) {
				t.Fatalf("part %q is not a piece of the body", p.data)
			}
			return true
		})
	})
}
