package detect

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/detect/kvstate"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// streamClock is a processor clock tests move by hand; it starts past the
// watermark's warm-up once warm is called.
type streamClock struct{ now time.Time }

func (c *streamClock) Now() time.Time { return c.now }

// warm sends one event and moves the clock past the warm-up, so the
// watermark is in force for what follows.
func (c *streamClock) warm(t *testing.T, eng *Engine, at time.Time) {
	t.Helper()
	ev := &schemas.Event{Timestamp: at}
	ev.Event.ID = "warm-up"
	ev.Crowsnest.Source = "k8s_audit"
	collect(t, eng, ev)
	c.now = c.now.Add(idleSourceAfter)
}

const burst = "  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {gte: 2}\n  generate: true\n"

func correlationIDs(alerts []schemas.Alert) []string {
	var out []string
	for _, a := range alerts {
		if a.Crowsnest.Alert.Correlation != "" {
			out = append(out, strings.Join(a.Crowsnest.Alert.EventIDs, ","))
		}
	}
	return out
}

// TestAllowedLateness: in the pipeline a correlation match behind the
// watermark (newest event time minus allowed_lateness) is dropped from
// correlation and counted; the event still raises its own rule's alert.
// Within the lateness, out-of-order matches still correlate.
func TestAllowedLateness(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(burst)})
	cfg := NewDefaultConfig()
	cfg.SuppressionWindow = 0
	cfg.AllowedLateness = 30 * time.Second
	clock := &streamClock{now: at(time.Hour)}
	eng := NewEngine(rules, cfg, WithClock(clock.Now))
	clock.warm(t, eng, at(0))

	alerts := collect(t, eng,
		denied("eve-1", "eve", "pods", at(10*time.Minute)), // watermark 9:09:30
		denied("bob-1", "bob", "pods", at(9*time.Minute)),  // late: behind the watermark
		denied("bob-2", "bob", "pods", at(9*time.Minute+40*time.Second)),
		denied("bob-3", "bob", "pods", at(9*time.Minute+35*time.Second)), // out of order, within the lateness
	)
	if got := correlationIDs(alerts); !slices.Equal(got, []string{"bob-2,bob-3"}) {
		t.Fatalf("correlation alerts on %v, want [bob-2,bob-3]: bob-1 is late", got)
	}
	if n := len(alerts) - 1; n != 4 {
		t.Fatalf("%d alerts of the base rule (generate: true), want 4: a late event still matches on its own", n)
	}
	if got := eng.Counters().LateMatches.Load(); got != 1 {
		t.Fatalf("late matches %d, want 1", got)
	}
	if got := eng.Counters().LateEvents.Load(); got != 1 {
		t.Fatalf("late events %d, want 1", got)
	}
	if wm := eng.Watermark(); !wm.Equal(at(9*time.Minute + 30*time.Second)) {
		t.Fatalf("watermark %s", wm)
	}

	// bob-3 redelivered once the watermark has passed it (its alert's
	// publish failed), while bob's window is still open: the same alert again.
	fired := alerts[len(alerts)-1]
	again := collect(t, eng, denied("zed-1", "", "pods", at(10*time.Minute+30*time.Second)), denied("bob-3", "bob", "pods", at(9*time.Minute+35*time.Second)))
	if got := correlationIDs(again); len(got) != 1 || again[len(again)-1].Event.ID != fired.Event.ID {
		t.Fatalf("late redelivery raised %v, want the same correlation alert %s", got, fired.Event.ID)
	}
	if got := eng.Counters().LateMatches.Load(); got != 1 {
		t.Fatalf("late matches %d after the redelivery, want still 1", got)
	}
}

// TestReplayIgnoresLateness: `crowsnest detect` replays on event time; the
// allowed lateness and the processor clock play no part.
func TestReplayIgnoresLateness(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(burst)})
	cfg := NewDefaultConfig()
	cfg.AllowedLateness = 0
	eng := NewEngine(rules, cfg)
	eng.replay.Store(true) // as Lines and MergeLines do
	alerts := collect(t, eng,
		denied("eve-1", "eve", "pods", t0.Add(10*time.Minute)),
		denied("bob-1", "bob", "pods", t0.Add(10*time.Minute-20*time.Second)),
		denied("bob-2", "bob", "pods", t0.Add(10*time.Minute-10*time.Second)),
	)
	if got := correlationIDs(alerts); !slices.Equal(got, []string{"bob-1,bob-2"}) {
		t.Fatalf("replay: correlation alerts on %v, want [bob-1,bob-2]", got)
	}
	if !eng.Watermark().IsZero() {
		t.Fatal("replay has a watermark")
	}
}

// TestIdleWindowsClose: once the watermark passes a window's end, the window
// is forgotten, so groups that never see another match do not hold memory.
func TestIdleWindowsClose(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(burst)})
	cfg := NewDefaultConfig()
	cfg.AllowedLateness = 10 * time.Second
	clock := &streamClock{now: t0.Add(time.Hour)}
	eng := NewEngine(rules, cfg, WithClock(clock.Now))
	clock.warm(t, eng, t0)
	for i := range 100 {
		collect(t, eng, denied("u-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "user-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "pods", t0.Add(time.Second)))
	}
	if n := eng.OpenCorrelationWindows(); n != 100 {
		t.Fatalf("%d open windows, want 100", n)
	}
	// Not yet: the watermark (t0+71s-10s) is within a minute of the matches.
	collect(t, eng, denied("x-1", "", "pods", t0.Add(71*time.Second)))
	if n := eng.OpenCorrelationWindows(); n != 100 {
		t.Fatalf("%d open windows before their end, want 100", n)
	}
	// Any event moving the watermark past t0+1s+1m closes them.
	collect(t, eng, denied("x-2", "", "pods", t0.Add(73*time.Second)))
	if n := eng.OpenCorrelationWindows(); n != 0 {
		t.Fatalf("%d open windows after the watermark passed their end, want 0", n)
	}
	if got := eng.Counters().CorrelationClosed.Load(); got != 100 {
		t.Fatalf("closed %d, want 100", got)
	}
	if got := eng.CorrelationEvictions(); got != 0 {
		t.Fatalf("evicted %d: closing is not eviction", got)
	}
}

// stateBucket starts an embedded NATS server with the crowsnest-state
// bucket as bus/topology declares it, and returns a store over it and a
// function counting the messages the bucket's stream holds.
func stateBucket(t *testing.T) (*kvstate.Store, func() uint64, jetstream.KeyValue) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.Start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, topology.StateBucketConfig(topology.NewDefaultConfig()))
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() uint64 {
		t.Helper()
		s, err := js.Stream(t.Context(), topology.StateBucketStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	return kvstate.New(js), msgs, kv
}

func storedKeys(t *testing.T, s *kvstate.Store) []string {
	t.Helper()
	keys, err := s.Keys(t.Context(), "correlation.")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestStoredWindowsDeletedOnClose: a window's entry in the crowsnest-state
// bucket is deleted when the watermark closes it, leaving no message behind,
// and eviction beyond max_correlation_groups deletes the evicted entries.
func TestStoredWindowsDeletedOnClose(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	store, msgs, _ := stateBucket(t)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(burst)})
	cfg := NewDefaultConfig()
	cfg.AllowedLateness = 10 * time.Second
	cfg.MaxCorrelationGroups = 20
	clock := &streamClock{now: t0.Add(time.Hour)}
	eng := NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store))
	clock.warm(t, eng, t0)
	for i := range 50 {
		u := "user-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		collect(t, eng, denied(u, u, "pods", t0.Add(time.Duration(i)*time.Millisecond)))
	}
	if n := len(storedKeys(t, store)); n != 20 {
		t.Fatalf("%d stored windows, want 20 (the bound)", n)
	}
	if got := eng.CorrelationEvictions(); got != 30 {
		t.Fatalf("evictions %d, want 30", got)
	}
	if n := msgs(); n != 20 {
		t.Fatalf("%d messages in the bucket, want 20: evicted entries leave nothing", n)
	}
	collect(t, eng, denied("late-comer", "", "pods", t0.Add(2*time.Minute)))
	if keys := storedKeys(t, store); len(keys) != 0 {
		t.Fatalf("stored windows %v after the watermark passed them, want none", keys)
	}
	if n := msgs(); n != 0 {
		t.Fatalf("%d messages in the bucket after every window closed, want 0", n)
	}
}

// TestCorrelationSurvivesKill: a processor killed mid-window — its last
// input processed (window written) but never acked — is replaced by a new
// one on the same bucket; the input is redelivered with the next ones and
// the correlation fires exactly once, with every contributing event. A
// window left open by a killed processor and never matched again is read
// back by its successor and deleted once closed.
func TestCorrelationSurvivesKill(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	store, msgs, _ := stateBucket(t)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule("  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 5m\n  condition: {gte: 5}\n")})
	cfg := NewDefaultConfig()
	cfg.SuppressionWindow = 0
	clock := &streamClock{now: t0.Add(time.Hour)}
	newProcessor := func() *Engine { return NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store)) }

	first := newProcessor()
	alerts := collect(t, first, denied("d1", "bob", "pods", at(1)), denied("d2", "bob", "pods", at(2)), denied("d3", "bob", "pods", at(3)),
		denied("orphan-1", "eve", "pods", at(3)))
	// Killed: d3 was processed but not acked, so it comes again.
	second := newProcessor()
	alerts = append(alerts, collect(t, second, denied("d3", "bob", "pods", at(3)), denied("d4", "bob", "pods", at(4)), denied("d5", "bob", "pods", at(5)))...)
	if got := correlationIDs(alerts); !slices.Equal(got, []string{"d1,d2,d3,d4,d5"}) {
		t.Fatalf("correlation alerts on %v, want exactly one on d1..d5", got)
	}
	// Killed again just after publishing: d5 comes again; the same alert
	// (same id, dropped by the alerts stream), never a new one.
	third := newProcessor()
	again := collect(t, third, denied("d5", "bob", "pods", at(5)))
	if len(again) != 1 || again[0].Event.ID != alerts[len(alerts)-1].Event.ID {
		t.Fatalf("redelivery raised %v, want the same alert id %s", correlationIDs(again), alerts[len(alerts)-1].Event.ID)
	}
	// eve's window (opened by the first processor) was read back, and is
	// deleted once the watermark passes its end, with no match of eve.
	if got := third.OpenCorrelationWindows(); got != 2 {
		t.Fatalf("%d windows open in the third processor, want bob's and eve's", got)
	}
	clock.now = clock.now.Add(idleSourceAfter)
	collect(t, third, denied("later", "", "pods", at(10*60)))
	if keys := storedKeys(t, store); len(keys) != 0 {
		t.Fatalf("stored windows %v after the watermark passed them, want none", keys)
	}
	if n := msgs(); n != 0 {
		t.Fatalf("%d messages left in the bucket", n)
	}
}

// TestRestoreDropsClosedWindows: a processor starting after a long stop
// deletes the stored windows that closed meanwhile instead of resuming them.
func TestRestoreDropsClosedWindows(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	store, _, _ := stateBucket(t)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(burst)})
	cfg := NewDefaultConfig()
	clock := &streamClock{now: t0.Add(time.Hour)}
	first := NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store))
	clock.warm(t, first, t0)
	collect(t, first, denied("b1", "bob", "pods", t0.Add(time.Second)))
	if n := len(storedKeys(t, store)); n != 1 {
		t.Fatalf("%d stored windows, want 1", n)
	}
	second := NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store))
	clock.warm(t, second, t0.Add(time.Hour))
	collect(t, second, denied("x", "", "pods", t0.Add(time.Hour)))
	if keys := storedKeys(t, store); len(keys) != 0 {
		t.Fatalf("stored windows %v, want none: bob's window closed while no processor ran", keys)
	}
	if second.Counters().CorrelationClosed.Load() != 1 {
		t.Fatalf("closed %d, want 1", second.Counters().CorrelationClosed.Load())
	}
}

// TestSharedBucketKeepsAnotherProcessorsWindow: a replica reads back every
// stored window at its start, including those another replica goes on
// updating; when its stale copy closes, it forgets it but leaves the entry,
// which the owner's window, still open, needs.
func TestSharedBucketKeepsAnotherProcessorsWindow(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	store, _, _ := stateBucket(t)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule("  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {gte: 9}\n")})
	cfg := NewDefaultConfig()
	cfg.AllowedLateness = 10 * time.Second
	clock := &streamClock{now: t0.Add(time.Hour)}
	owner := NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store))
	other := NewEngine(rules, cfg, WithClock(clock.Now), WithStateStore(store))
	clock.warm(t, owner, t0)
	collect(t, owner, denied("b1", "bob", "pods", t0.Add(time.Second)))
	clock.warm(t, other, t0) // reads bob's window back
	if n := other.OpenCorrelationWindows(); n != 1 {
		t.Fatalf("the other replica holds %d windows, want bob's", n)
	}
	// The owner moves bob's window on; the other replica's copy is stale.
	collect(t, owner, denied("b2", "bob", "pods", t0.Add(50*time.Second)))
	// The other replica's watermark passes its copy's end (t0+1s+1m), not
	// the owner's (t0+50s+1m).
	collect(t, other, denied("x", "", "pods", t0.Add(75*time.Second)))
	if n := other.OpenCorrelationWindows(); n != 0 {
		t.Fatalf("the other replica still holds %d windows", n)
	}
	if keys := storedKeys(t, store); len(keys) != 1 {
		t.Fatalf("stored windows %v: the owner's open window was deleted by a replica's stale copy", keys)
	}
	// Once the owner's watermark passes it, the owner deletes it.
	collect(t, owner, denied("y", "", "pods", t0.Add(2*time.Minute+5*time.Second)))
	if keys := storedKeys(t, store); len(keys) != 0 {
		t.Fatalf("stored windows %v after the owner closed it", keys)
	}
}
