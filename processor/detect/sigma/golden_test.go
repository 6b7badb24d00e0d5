package sigma

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestCompileGolden compiles every rule in testdata/compile and compares the
// compiled matcher (or the error) with NAME.golden; -update rewrites them.
func TestCompileGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/compile/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	m, err := DefaultMapping()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			rules, err := ParseAll(data)
			if err != nil {
				fmt.Fprintf(&b, "parse error: %v\n", err)
			}
			for _, r := range rules {
				c, err := Compile(r, Options{Mapping: m, Placeholders: map[string][]string{}})
				if err != nil {
					fmt.Fprintf(&b, "%s: error: %v\n", r.Title, err)
					continue
				}
				fmt.Fprintf(&b, "%s [%s]: %s\n", r.Title, c.Logsource.Name, c.Describe())
				for _, w := range c.Warnings {
					fmt.Fprintf(&b, "warning: %s\n", w)
				}
			}
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(want, []byte(b.String())) {
				t.Errorf("compiled output differs from %s (run with -update if intended)\ngot:\n%s\nwant:\n%s", golden, b.String(), want)
			}
		})
	}
}
