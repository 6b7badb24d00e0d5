package harness

import (
	"os"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}, {1, time.Millisecond}}
	for _, tt := range tests {
		if got := Percentile(s, tt.p); got != tt.want {
			t.Errorf("p%v = %s, want %s", tt.p, got, tt.want)
		}
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one sample = %s, want 7ns", got)
	}
}

// An id counts once, at its first sighting; ids never sent are strays.
func TestLatencies(t *testing.T) {
	l := NewLatencies()
	t0 := time.Unix(1000, 0)
	l.Sent("a", t0)
	l.Sent("b", t0)
	if !l.Seen("a", t0.Add(10*time.Millisecond)) {
		t.Error("first sighting of a not counted")
	}
	if l.Seen("a", t0.Add(time.Second)) {
		t.Error("second sighting of a counted")
	}
	if l.Seen("x", t0) {
		t.Error("an id never sent counted")
	}
	if p := l.Pending(10); len(p) != 1 || p[0] != "b" {
		t.Errorf("pending = %v, want [b]", p)
	}
	s := l.Summary()
	if s.Sent != 2 || s.Seen != 1 || s.Strays != 1 || s.P50 != 10*time.Millisecond || s.Max != 10*time.Millisecond {
		t.Errorf("summary = %+v", s)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis, utime 250, stime 50 ticks.
	line := []byte("4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 5 0 123 456 789")
	got, err := parseStatCPU(line)
	if err != nil || got != 3*time.Second {
		t.Errorf("parseStatCPU = %s, %v; want 3s", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("a short stat line parsed")
	}
}

func TestReadProcUsageOfSelf(t *testing.T) {
	u, err := ReadProcUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.PeakRSS < u.RSS {
		t.Errorf("usage of self = %+v: want RSS > 0 and VmHWM >= VmRSS", u)
	}
	if _, err := ReadProcUsage(-1); err == nil {
		t.Error("usage of pid -1 read")
	}
}
