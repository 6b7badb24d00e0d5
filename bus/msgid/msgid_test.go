package msgid

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

const auditID = "4f6a2b1c-9d8e-4f70-a1b2-c3d4e5f60718"

func TestIDs(t *testing.T) {
	contentHash := func(b string) string {
		s := sha256.Sum256([]byte(b))
		return hex.EncodeToString(s[:16])
	}
	long := strings.Repeat("x", 200)
	tests := []struct {
		name string
		got  func() (string, error)
		want string // exact; "" means check only validity
	}{
		{"k8s audit", func() (string, error) { return K8sAudit(auditID, "ResponseComplete") }, auditID + "-ResponseComplete"},
		{"k8s audit stage verbatim", func() (string, error) { return K8sAudit(auditID, "RequestReceived") }, auditID + "-RequestReceived"},
		{"content", func() (string, error) { return FromContent("falco", []byte(`{"rule":"x"}`)), nil }, "falco-" + contentHash(`{"rule":"x"}`)},
		{"content empty record", func() (string, error) { return FromContent("json", nil), nil }, "json-" + contentHash("")},
		{"derived", func() (string, error) { return Derived("falco-abc", "rule-7"), nil }, "falco-abc-rule-7"},
		{"dead letter", func() (string, error) { return DeadLetter("processor", "falco-abc"), nil }, "dlq-processor-falco-abc"},
		{"k8s audit with CRLF", func() (string, error) { return K8sAudit("evil\r\nX-Inject: 1", "ResponseComplete") }, ""},
		{"k8s audit long", func() (string, error) { return K8sAudit(long, "ResponseComplete") }, ""},
		{"derived long", func() (string, error) { return Derived(long, long), nil }, ""},
		{"content odd source", func() (string, error) { return FromContent("my source", []byte("r")), nil }, ""},
		{"derived with spaces", func() (string, error) { return Derived("e1", "rule with spaces"), nil }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.got()
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(id); err != nil {
				t.Fatalf("id %q invalid: %v", id, err)
			}
			if tt.want != "" && id != tt.want {
				t.Fatalf("id = %q, want %q", id, tt.want)
			}
			again, _ := tt.got()
			if again != id {
				t.Fatalf("not deterministic: %q then %q", id, again)
			}
		})
	}
}

func TestUnsafeInputsStayDistinct(t *testing.T) {
	pairs := [][2]string{
		{"a\rb", "a\nb"}, // same readable prefix after '_' mapping
		{strings.Repeat("x", 200) + "1", strings.Repeat("x", 200) + "2"}, // same truncated prefix
		{"a b", "a_b"}, // sanitized vs already-safe lookalike
	}
	for _, p := range pairs {
		a, b := Derived(p[0], "s"), Derived(p[1], "s")
		if a == b {
			t.Errorf("Derived(%q) and Derived(%q) collide: %q", p[0], p[1], a)
		}
	}
	id, _ := K8sAudit("evil\r\nX-Inject: 1", "ResponseComplete")
	if strings.ContainsAny(id, "\r\n ") {
		t.Errorf("unsafe id %q", id)
	}
	if !strings.HasPrefix(id, "evil__X-Inject:_1-ResponseComplete-") {
		t.Errorf("id %q lost its readable prefix", id)
	}
}

func TestK8sAuditNeedsIdentity(t *testing.T) {
	for _, in := range [][2]string{{"", "ResponseComplete"}, {auditID, ""}, {"", ""}} {
		if _, err := K8sAudit(in[0], in[1]); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("K8sAudit(%q, %q) = %v, want ErrNoIdentity", in[0], in[1], err)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"falco-0123", true},
		{strings.Repeat("a", MaxLen), true},
		{"", false},
		{strings.Repeat("a", MaxLen+1), false},
		{"a b", false},
		{"a\r\n", false},
		{"\x00", false},
		{"ü", false},
		{"a\x7f", false},
	}
	for _, tt := range tests {
		err := Validate(tt.id)
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%q) error does not wrap ErrInvalid", tt.id)
		}
	}
}

func FuzzIDs(f *testing.F) {
	f.Add(auditID, "ResponseComplete", "falco", []byte(`{"a":1}`), "rule-1")
	f.Add("", "", "", []byte{}, "")
	f.Add("a\r\nb", "st age", "s.r.c", []byte{0xff}, strings.Repeat("z", 300))
	f.Fuzz(func(t *testing.T, audit, stage, source string, record []byte, suffix string) {
		ids := []string{FromContent(source, record), Derived(audit, suffix), DeadLetter(stage, audit)}
		k, err := K8sAudit(audit, stage)
		if err == nil {
			ids = append(ids, k)
			if safe(audit) && safe(stage) && len(audit)+1+len(stage) <= MaxLen && !strings.Contains(k, audit) {
				t.Fatalf("K8sAudit(%q, %q) = %q does not contain the audit id verbatim", audit, stage, k)
			}
		} else if audit != "" && stage != "" {
			t.Fatalf("K8sAudit(%q, %q): %v", audit, stage, err)
		}
		for _, id := range ids {
			if err := Validate(id); err != nil {
				t.Fatalf("invalid id %q: %v", id, err)
			}
		}
		if FromContent(source, record) != ids[0] || Derived(audit, suffix) != ids[1] {
			t.Fatal("not deterministic")
		}
	})
}

func BenchmarkFromContent(b *testing.B) {
	rec := []byte(strings.Repeat(`{"k":"v"},`, 100)) // ~1 KB
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		_ = FromContent("falco", rec)
	}
}
