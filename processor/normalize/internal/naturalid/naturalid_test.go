package naturalid

import (
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
)

func TestID(t *testing.T) {
	a := ID("docker", "abc", "start", "1700000000000000000")
	if a != ID("docker", "abc", "start", "1700000000000000000") {
		t.Fatal("not deterministic")
	}
	if err := msgid.Validate(a); err != nil || !strings.HasPrefix(a, "docker-") || len(a) != len("docker-")+32 {
		t.Fatalf("id %q: %v", a, err)
	}
	for _, other := range []string{
		ID("docker", "abcs", "tart", "1700000000000000000"), // boundaries matter
		ID("docker", "abc", "stop", "1700000000000000000"),
		ID("auditd", "abc", "start", "1700000000000000000"),
	} {
		if other == a {
			t.Errorf("collision: %q", other)
		}
	}
	if ID("docker", "abc", "", "1") != "" {
		t.Error("an empty part must give no id")
	}
	long := strings.Repeat("x", 1000)
	if id := ID("auditd", long, "1"); msgid.Validate(id) != nil || id == ID("auditd", long, "2") {
		t.Errorf("long parts: %q", id)
	}
}

func TestIDAllocatesOnce(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = ID("docker", "abc", "start", "1700000000000000000") }); n > 1 {
		t.Errorf("%v allocations, want 1 (the string)", n)
	}
}
