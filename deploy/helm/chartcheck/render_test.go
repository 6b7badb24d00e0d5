package chartcheck

import (
	"strings"
	"testing"
)

func TestSplitDocuments(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"one", "a: 1\n", []string{"a: 1\n"}},
		{"separated", "a: 1\n---\nb: 2", []string{"a: 1", "b: 2"}},
		{"indented separator, as nindent leaves it", "a: 1\n    ---\nb: 2", []string{"a: 1", "b: 2"}},
		{"comment-only and blank documents dropped", "# c\n---\n\n  \n---\nb: 2\n---\n", []string{"b: 2"}},
		{"separator inside a value is text", "a: |\n  x---y\n", []string{"a: |\n  x---y\n"}},
		{"empty", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := splitDocuments(tc.in)
			if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") || len(got) != len(tc.want) {
				t.Errorf("splitDocuments(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzSplitDocuments: no document keeps a separator line or is empty, and
// every meaningful line of the input comes out once, in order.
func FuzzSplitDocuments(f *testing.F) {
	for _, s := range []string{"a: 1\n---\nb: 2", "---\n---\n", "# x\n  ---  \nk: v\n", "a: |\n  ---x\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		meaningful := func(s string) []string {
			var out []string
			for _, l := range strings.Split(s, "\n") {
				if tl := strings.TrimSpace(l); tl != "" && tl != "---" && !strings.HasPrefix(tl, "#") {
					out = append(out, l)
				}
			}
			return out
		}
		var got []string
		for _, doc := range splitDocuments(in) {
			m := meaningful(doc)
			if len(m) == 0 {
				t.Fatalf("empty document %q from %q", doc, in)
			}
			for _, l := range strings.Split(doc, "\n") {
				if strings.TrimSpace(l) == "---" {
					t.Fatalf("separator kept in %q", doc)
				}
			}
			got = append(got, m...)
		}
		if want := meaningful(in); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("lines %q, want %q", got, want)
		}
	})
}
