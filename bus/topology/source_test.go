package topology

import (
	"errors"
	"strings"
	"testing"
)

func TestSources(t *testing.T) {
	want := []string{"k8s_audit", "falco", "tetragon", "docker", "auditd", "procwatch", "json", "collector"}
	got := Sources()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Sources() = %v, want %v", got, want)
	}
	for _, s := range got {
		if !ValidSource(s) {
			t.Errorf("ValidSource(%q) = false", s)
		}
	}
	got[0] = "mutated"
	if Sources()[0] != "k8s_audit" {
		t.Fatal("Sources() shares its backing array between callers")
	}
	for _, s := range []string{"", "K8S_AUDIT", "k8s-audit", "syslog", "falco "} {
		if ValidSource(s) {
			t.Errorf("ValidSource(%q) = true", s)
		}
	}
}

func TestValidateToken(t *testing.T) {
	tests := []struct {
		tok string
		ok  bool
	}{
		{"node-1", true},
		{"ip-10-0-0-1_ec2", true},
		{"Pod_ABC", true},
		{"ünïcode", true},
		{strings.Repeat("a", MaxTokenLen), true},
		{"", false},
		{strings.Repeat("a", MaxTokenLen+1), false},
		{"a.b", false},
		{"a*", false},
		{">", false},
		{"a b", false},
		{"a\tb", false},
		{"a\r\nb", false},
		{"a\x00b", false},
		{"a\u00a0b", false}, // no-break space
		{"\xff\xfe", false},
	}
	for _, tt := range tests {
		err := ValidateToken(tt.tok)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateToken(%q) = %v, want ok=%v", tt.tok, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ValidateToken(%q) error does not wrap ErrInvalidToken", tt.tok)
		}
	}
}

func TestSanitizeToken(t *testing.T) {
	long := strings.Repeat("pod-", 80) // 320 bytes
	tests := []struct {
		in, want string
	}{
		{"node-1", "node-1"},
		{"Node-1", "node-1"},
		{"node1.example.com", "node1_example_com"},
		{"crowsnest-collector-7d9f8-x2x9z", "crowsnest-collector-7d9f8-x2x9z"},
		{"a b*c>d", "a_b_c_d"},
		{"", "unknown"},
		{"ünï", "__n__"}, // each non-ASCII byte becomes '_'
		{"line\r\nbreak", "line__break"},
	}
	for _, tt := range tests {
		if got := SanitizeToken(tt.in); got != tt.want {
			t.Errorf("SanitizeToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	a, b := SanitizeToken(long+"a"), SanitizeToken(long+"b")
	if len(a) != MaxTokenLen || a == b {
		t.Errorf("long names: got %q (%d bytes) and %q; want %d bytes and distinct", a, len(a), b, MaxTokenLen)
	}
	if !strings.HasPrefix(a, "pod-pod-") {
		t.Errorf("long name %q lost its readable prefix", a)
	}
}

func FuzzSanitizeToken(f *testing.F) {
	for _, s := range []string{"", "node-1", "a.b.c", "ünï", "\xff", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		tok := SanitizeToken(name)
		if err := ValidateToken(tok); err != nil {
			t.Fatalf("SanitizeToken(%q) = %q, invalid: %v", name, tok, err)
		}
		if SanitizeToken(name) != tok {
			t.Fatal("SanitizeToken is not deterministic")
		}
		if ValidateToken(name) == nil && strings.ToLower(name) == name && tok != name && isASCIIWordish(name) {
			t.Fatalf("SanitizeToken changed the already-safe %q to %q", name, tok)
		}
	})
}

func isASCIIWordish(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
