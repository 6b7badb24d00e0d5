package detect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

func atCloseCorr(cond string) string {
	return "  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1m\n  condition: " + cond + "\n"
}

// describeAtClose gives each correlation alert as "ids@seconds after t0".
func describeAtClose(alerts []schemas.Alert, t0 time.Time) []string {
	var out []string
	for _, a := range alerts {
		if a.Crowsnest.Alert.Correlation != "" {
			out = append(out, fmt.Sprintf("%s@%d", strings.Join(a.Crowsnest.Alert.EventIDs, ","), int(a.Timestamp.Sub(t0)/time.Second)))
		}
	}
	return out
}

// TestAtCloseWindows: the window semantics of conditions judged at the
// close, the same in a replay (closed by the file's event time, then by the
// end of the input) and in the processor (closed by the watermark).
func TestAtCloseWindows(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	bob := func(id string, sec int) *schemas.Event {
		return denied(id, "bob", "pods", t0.Add(time.Duration(sec)*time.Second))
	}
	cases := []struct {
		name   string
		corr   string
		events []*schemas.Event
		want   []string // ids@window end
	}{
		{"lt: one match is a group", atCloseCorr("{lt: 3}"), []*schemas.Event{bob("1", 0)}, []string{"1@60"}},
		{"lt: as many as the bound is not fewer", atCloseCorr("{lt: 3}"), []*schemas.Event{bob("1", 0), bob("2", 1), bob("3", 2)}, nil},
		{"the window's end is included", atCloseCorr("{lt: 3}"), []*schemas.Event{bob("1", 0), bob("2", 60)}, []string{"1,2@60"}},
		{"a match after the end opens the next window", atCloseCorr("{lt: 3}"), []*schemas.Event{bob("1", 0), bob("2", 61)}, []string{"1@60", "2@121"}},
		{"windows are fixed from the first match, not sliding", atCloseCorr("{lte: 2}"),
			[]*schemas.Event{bob("1", 0), bob("2", 50), bob("3", 70), bob("4", 100)}, []string{"1,2@60", "3,4@130"}},
		{"eq: exactly, not at least", atCloseCorr("{eq: 2}"), []*schemas.Event{bob("1", 0), bob("2", 1), bob("3", 2)}, nil},
		{"eq", atCloseCorr("{eq: 2}"), []*schemas.Event{bob("1", 0), bob("2", 1)}, []string{"1,2@60"}},
		{"neq", atCloseCorr("{neq: 2}"), []*schemas.Event{bob("1", 0), bob("2", 1), bob("3", 2), bob("4", 90)}, []string{"1,2,3@60", "4@150"}},
		{"gt and lt together", atCloseCorr("{gt: 1, lt: 3}"), []*schemas.Event{bob("1", 0), bob("2", 1), bob("3", 70)}, []string{"1,2@60"}},
		{"a redelivered match counts once", atCloseCorr("{lt: 2}"), []*schemas.Event{bob("1", 0), bob("1", 0)}, []string{"1@60"}},
		{"out of order within the window", atCloseCorr("{eq: 3}"), []*schemas.Event{bob("2", 20), bob("1", 5), bob("3", 30)}, []string{"1,2,3@65"}},
		{"value_count", "  type: value_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {field: objectRef.resource, lt: 2}\n",
			[]*schemas.Event{denied("1", "bob", "pods", t0), denied("2", "bob", "pods", t0.Add(time.Second)), denied("3", "eve", "pods", t0), denied("4", "eve", "nodes", t0.Add(time.Second))},
			[]string{"1,2@60"}},
	}
	for _, tc := range cases {
		rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(tc.corr)})
		cfg := NewDefaultConfig()
		cfg.SuppressionWindow = 0
		t.Run(tc.name+"/replay", func(t *testing.T) {
			eng := NewEngine(rules, cfg)
			eng.replay.Store(true)
			alerts := collect(t, eng, tc.events...)
			if err := eng.endOfInput(context.Background(), func(a *schemas.Alert) error { alerts = append(alerts, *a); return nil }); err != nil {
				t.Fatal(err)
			}
			if got := describeAtClose(alerts, t0); !slices.Equal(got, tc.want) {
				t.Fatalf("alerts %v, want %v", got, tc.want)
			}
		})
		t.Run(tc.name+"/watermark", func(t *testing.T) {
			cfg := cfg
			cfg.AllowedLateness = 2 * time.Minute
			clock := &streamClock{now: t0.Add(time.Hour)}
			eng := NewEngine(rules, cfg, WithClock(clock.Now))
			clock.warm(t, eng, t0.Add(-time.Minute))
			alerts := collect(t, eng, tc.events...)
			if len(describeAtClose(alerts, t0)) != 0 {
				t.Fatal("an alert before the watermark passed any window's end")
			}
			// A request of nobody's group moves the watermark past every end.
			alerts = collect(t, eng, denied("mover", "", "pods", t0.Add(time.Hour)))
			if got := describeAtClose(alerts, t0); !slices.Equal(got, tc.want) {
				t.Fatalf("alerts %v, want %v", got, tc.want)
			}
			if n := eng.OpenCorrelationWindows(); n != 0 {
				t.Fatalf("%d windows open after the watermark passed them all", n)
			}
		})
	}
}

// TestAtCloseLateMatch: in the processor a match behind the watermark is
// dropped from at-close correlations too (and counted), so the count of a
// window never depends on when its close pass ran.
func TestAtCloseLateMatch(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(atCloseCorr("{lt: 2}"))})
	cfg := NewDefaultConfig()
	cfg.SuppressionWindow = 0
	cfg.AllowedLateness = 10 * time.Second
	clock := &streamClock{now: t0.Add(time.Hour)}
	eng := NewEngine(rules, cfg, WithClock(clock.Now))
	clock.warm(t, eng, t0)
	alerts := collect(t, eng,
		denied("b1", "bob", "pods", t0.Add(time.Second)),
		denied("x", "", "pods", t0.Add(75*time.Second)),     // watermark 65 s: bob's window (ends 61 s) is judged
		denied("b2", "bob", "pods", t0.Add(30*time.Second)), // late
	)
	if got := describeAtClose(alerts, t0); !slices.Equal(got, []string{"b1@61"}) {
		t.Fatalf("alerts %v, want [b1@61]", got)
	}
	if got := eng.Counters().LateMatches.Load(); got != 1 {
		t.Fatalf("late matches %d, want 1", got)
	}
	if n := eng.OpenCorrelationWindows(); n != 0 {
		t.Fatalf("%d windows open: the late match opened one", n)
	}
}

// TestAtCloseClosedWhileStopped: a window that ended while no processor ran
// is read back from the state bucket by the next processor and judged at
// its first closing pass — not deleted unjudged as a sliding window would
// be — and then deleted.
func TestAtCloseClosedWhileStopped(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	store, msgs, _ := stateBucket(t)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(atCloseCorr("{lt: 3}"))})
	cfg := NewDefaultConfig()
	clock := &streamClock{now: t0.Add(time.Hour)}
	first := NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store))
	clock.warm(t, first, t0)
	if got := describeAtClose(collect(t, first, denied("b1", "bob", "pods", t0.Add(time.Second)), denied("b2", "bob", "pods", t0.Add(2*time.Second))), t0); len(got) != 0 {
		t.Fatalf("alerts %v before the window closed", got)
	}
	// Stopped; the next processor starts an hour of event time later.
	second := NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store))
	clock.warm(t, second, t0.Add(time.Hour))
	alerts := collect(t, second, denied("x", "", "pods", t0.Add(time.Hour)))
	if got := describeAtClose(alerts, t0); !slices.Equal(got, []string{"b1,b2@61"}) {
		t.Fatalf("alerts %v, want bob's window judged once: [b1,b2@61]", got)
	}
	if got := describeAtClose(collect(t, second, denied("y", "", "pods", t0.Add(2*time.Hour))), t0); len(got) != 0 {
		t.Fatalf("judged again: %v", got)
	}
	if keys := storedKeys(t, store); len(keys) != 0 {
		t.Fatalf("stored windows %v after the judgement", keys)
	}
	if n := msgs(); n != 0 {
		t.Fatalf("%d messages left in the bucket", n)
	}
}

// TestAtCloseAlertRaisedAgain: the alert of a window judged while processing
// an event is raised again when that event comes again — the input is
// redelivered when the alert's publish failed, and the window is gone by
// then — whether the failure came back from emit (the window is kept and
// judged again) or later (the pipeline's PubAck).
func TestAtCloseAlertRaisedAgain(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(atCloseCorr("{lt: 3}"))})
	cfg := NewDefaultConfig()
	cfg.AllowedLateness = 10 * time.Second
	clock := &streamClock{now: t0.Add(time.Hour)}
	eng := NewEngine(rules, cfg, WithClock(clock.Now))
	clock.warm(t, eng, t0)
	collect(t, eng, denied("b1", "bob", "pods", t0.Add(time.Second)))
	mover := denied("x", "", "pods", t0.Add(2*time.Minute))
	failing := func(*schemas.Alert) error { return errors.New("publish: connection closed") }
	if err := eng.Process(context.Background(), mover, failing); err == nil {
		t.Fatal("the emit error was not returned")
	}
	first := collect(t, eng, mover) // the input retried
	if got := describeAtClose(first, t0); !slices.Equal(got, []string{"b1@61"}) {
		t.Fatalf("retry raised %v, want [b1@61]", got)
	}
	again := collect(t, eng, mover) // redelivered once more (its PubAck failed)
	if len(again) != 1 || again[0].Event.ID != first[0].Event.ID {
		t.Fatalf("redelivery raised %v, want the same alert %s", describeAtClose(again, t0), first[0].Event.ID)
	}
	if got := collect(t, eng, denied("y", "", "pods", t0.Add(3*time.Minute))); len(got) != 0 {
		t.Fatalf("another event raised %v", describeAtClose(got, t0))
	}
}

// TestAtCloseOverflow: a group holding more matches than a window may keeps
// no count it can trust: its window is not judged (no "fewer than" alert on
// a count that lost matches), and that is counted.
func TestAtCloseOverflow(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(atCloseCorr("{neq: 5}"))})
	eng := NewEngine(rules, NewDefaultConfig())
	eng.replay.Store(true)
	var evs []*schemas.Event
	for i := range maxHitsPerGroup + 1 {
		evs = append(evs, denied(fmt.Sprint("b", i), "bob", "pods", t0.Add(time.Duration(i)*time.Millisecond)))
	}
	alerts := collect(t, eng, evs...)
	if err := eng.endOfInput(context.Background(), func(a *schemas.Alert) error { alerts = append(alerts, *a); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := describeAtClose(alerts, t0); len(got) != 0 {
		t.Fatalf("alerts %v on an overflowed window", got)
	}
	if got := eng.Counters().CorrelationOverflow.Load(); got != 1 {
		t.Fatalf("overflow %d, want 1", got)
	}
}

// TestAtCloseSharedBucket: replicas share the state bucket and each reads
// every window back at its start, so one may hold a stale copy of a window
// its owner goes on filling. Whichever judges first judges the matches of
// both copies; the other, finding the entry gone, judges nothing — no "fewer
// than" alert on a stale count, whatever the order.
func TestAtCloseSharedBucket(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for _, ownerFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("owner judges first %v", ownerFirst), func(t *testing.T) {
			store, _, _ := stateBucket(t)
			rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(atCloseCorr("{lt: 3}"))})
			cfg := NewDefaultConfig()
			cfg.AllowedLateness = 10 * time.Second
			clock := &streamClock{now: t0.Add(time.Hour)}
			owner := NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store))
			other := NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store))
			clock.warm(t, owner, t0)
			var alerts []schemas.Alert
			alerts = append(alerts, collect(t, owner, denied("b1", "bob", "pods", t0.Add(time.Second)))...)
			clock.warm(t, other, t0) // reads bob's window back: one match
			if n := other.OpenCorrelationWindows(); n != 1 {
				t.Fatalf("the other replica holds %d windows, want bob's", n)
			}
			alerts = append(alerts, collect(t, owner, denied("b2", "bob", "pods", t0.Add(20*time.Second)), denied("b3", "bob", "pods", t0.Add(30*time.Second)))...)
			// Both watermarks pass the window's end (61 s), in either order.
			order := []*Engine{other, owner}
			if ownerFirst {
				order = []*Engine{owner, other}
			}
			for _, eng := range order {
				alerts = append(alerts, collect(t, eng, denied("x", "", "pods", t0.Add(2*time.Minute)))...)
			}
			if got := describeAtClose(alerts, t0); len(got) != 0 {
				t.Fatalf("alerts %v: bob had 3 denials in the window, not fewer", got)
			}
			if keys := storedKeys(t, store); len(keys) != 0 {
				t.Fatalf("stored windows %v after both judged", keys)
			}
		})
	}
}
