package detect

import (
	"testing"
	"time"
)

func TestWatermark(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	clock := t0.Add(time.Hour)
	w := newWatermark(time.Minute, func() time.Time { return clock })
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		name     string
		advance  time.Duration // processor clock before the event
		source   string
		t        time.Time
		wantWM   time.Time
		wantLate bool
	}{
		{"warm-up: no watermark yet", 0, "audit", at(10 * time.Minute), time.Time{}, false},
		{"warm-up: a source starting further back is not late", 10 * time.Second, "tetragon", at(5 * time.Minute), time.Time{}, false},
		{"after the warm-up: the slowest source minus the lateness", time.Minute, "audit", at(10*time.Minute + 30*time.Second), at(4 * time.Minute), false},
		{"within the lateness", 0, "audit", at(8 * time.Minute), at(4 * time.Minute), false},
		{"behind the watermark", 0, "tetragon", at(3 * time.Minute), at(4 * time.Minute), true},
		{"the slow source catches up", 0, "tetragon", at(15 * time.Minute), at(9*time.Minute + 30*time.Second), false},
		{"now audit is late", 0, "audit", at(9 * time.Minute), at(9*time.Minute + 30*time.Second), true},
		{"an idle source stops holding it back", 2 * time.Minute, "audit", at(30 * time.Minute), at(29 * time.Minute), false},
		{"the watermark never goes back", 0, "tetragon", at(16 * time.Minute), at(29 * time.Minute), true},
		{"no time: not late, moves nothing", 0, "audit", time.Time{}, at(29 * time.Minute), false},
	}
	for _, s := range steps {
		clock = clock.Add(s.advance)
		wm, late := w.observe(s.source, s.t)
		if !wm.Equal(s.wantWM) || late != s.wantLate {
			t.Fatalf("%s: watermark %s late %v, want %s %v", s.name, wm.Format(time.TimeOnly), late, s.wantWM.Format(time.TimeOnly), s.wantLate)
		}
	}
}

// TestWatermarkFutureEvent: an event stamped ahead of the processor's clock
// moves the watermark only up to the clock, so it cannot make the events of
// the present late.
func TestWatermarkFutureEvent(t *testing.T) {
	clock := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	w := newWatermark(time.Minute, func() time.Time { return clock })
	w.observe("audit", clock)
	clock = clock.Add(idleSourceAfter)
	wm, _ := w.observe("audit", clock.Add(100*time.Hour))
	if !wm.Equal(clock.Add(-time.Minute)) {
		t.Fatalf("watermark %s after a future event, want the clock minus the lateness %s", wm, clock.Add(-time.Minute))
	}
	if _, late := w.observe("audit", clock.Add(-30*time.Second)); late {
		t.Fatal("an event of the present is late after a future one")
	}
}
