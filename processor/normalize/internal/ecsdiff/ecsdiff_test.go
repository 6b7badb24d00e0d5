package ecsdiff

import (
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	ref, _ := Flatten([]byte(`{"source":{"ip":["1.2.3.4"]},"event.kind":"event","user":{"name":"a"},"related":{"user":["b","a"]},"x":{"y":1,"z":2}}`))
	ours, _ := Flatten([]byte(`{"source":{"ip":"1.2.3.4"},"event":{"kind":"event","action":"get"},"related":{"user":["a","b"]},"x":{"y":1,"z":3}}`))
	got := map[string]Kind{}
	for _, d := range Compare(ref, ours, []string{"source.ip", "event.kind", "event.action", "user.name", "related.user", "x"}) {
		got[d.Field] = d.Kind
	}
	want := map[string]Kind{"source.ip": ArrayScalar, "event.action": OursOnly, "user.name": ReferenceOnly, "x.z": Value}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
}

func TestAllowlist(t *testing.T) {
	md := "# t\n\n| field | shapes | kind | a | b | why |\n|---|---|---|---|---|---|\n" +
		"| `source.ip` | native, aks | array-vs-scalar | x | y | z |\n| `x` | all | value | x | y | z |\n| `unused.field` | gke | ours-only | | | |\n"
	al, err := ParseAllowlist(strings.NewReader(md))
	if err != nil || al.Len() != 3 {
		t.Fatalf("rows %d, err %v", al.Len(), err)
	}
	if !al.Allows("aks", Diff{Field: "source.ip", Claim: "source.ip", Kind: ArrayScalar}) {
		t.Error("documented difference not allowed")
	}
	if al.Allows("gke", Diff{Field: "source.ip", Claim: "source.ip", Kind: ArrayScalar}) {
		t.Error("allowed for a shape the row does not name")
	}
	if al.Allows("aks", Diff{Field: "source.ip", Claim: "source.ip", Kind: Value}) {
		t.Error("allowed for another kind")
	}
	if !al.Allows("native", Diff{Field: "x.z", Claim: "x", Kind: Value}) {
		t.Error("a row naming the claimed prefix must cover the keys below it")
	}
	if u := al.Unused(); len(u) != 1 || u[0].Field != "unused.field" {
		t.Errorf("unused %v", u)
	}
	if _, err := ParseAllowlist(strings.NewReader("| `f` | all | typo | | | |\n")); err == nil {
		t.Error("an unknown kind must fail")
	}
}
