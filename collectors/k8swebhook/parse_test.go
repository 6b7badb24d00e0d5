package k8swebhook

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/collectors/k8saudit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// outcome is what the receiver makes of a body, as text: the list's
// rejection, or per item its id or rejection.
func outcome(body []byte) string {
	var b bytes.Buffer
	items, reject := parseList(body)
	if reject != "" {
		fmt.Fprintf(&b, "body reject: %s\n", reject)
		return b.String()
	}
	i := 0
	items.ForEach(func(_, v gjson.Result) bool {
		raw := rawOf(body, v)
		if id, why := k8saudit.EventID(raw); why != "" {
			fmt.Fprintf(&b, "items[%d] dead-letter: %s\n", i, why)
		} else {
			fmt.Fprintf(&b, "items[%d] id: %s\n", i, id)
		}
		i++
		return true
	})
	fmt.Fprintf(&b, "%d items\n", i)
	return b.String()
}

// TestBodiesGolden runs every body in testdata/bodies through the parser
// and compares with testdata/bodies.golden.
func TestBodiesGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "bodies", "*.json"))
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

func FuzzParseBody(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "bodies", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, reject := parseList(body)
		if reject != "" {
			return
		}
		items.ForEach(func(_, v gjson.Result) bool {
			raw := rawOf(body, v)
			if string(raw) != v.Raw {
				t.Fatalf("rawOf = %q, want %q", raw, v.Raw)
			}
			id, why := k8saudit.EventID(raw)
			if (id == "") == (why == "") {
				t.Fatalf("EventID(%q) = %q, %q: want exactly one", raw, id, why)
			}
			if id != "" {
				if err := msgid.Validate(id); err != nil {
					t.Fatal(err)
				}
			}
			return true
		})
	})
}
