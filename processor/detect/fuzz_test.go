package detect

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// FuzzLoadAndProcess: any rule file (detection or correlation, with the
// base rules beside it) loads or is reported, and the engine never panics
// on the events it then sees.
func FuzzLoadAndProcess(f *testing.F) {
	f.Add([]byte(ruleExec))
	f.Add([]byte(corrRule("  type: temporal_ordered\n  rules: [exec, denied]\n  group-by: [user.name]\n  timespan: 5m\n")))
	f.Add([]byte(corrRule("  type: value_count\n  rules: [denied]\n  group-by: [user.name, objectRef.resource]\n  timespan: 1s\n  condition: {field: verb, gte: 1}\n")))
	f.Add([]byte("title: x\ncorrelation: {type: event_count, rules: [denied, exec], group-by: [nosuch], timespan: 1w, condition: {eq: 0}}\n"))
	f.Add([]byte(corrRule("  type: event_count\n  rules: [denied, exec]\n  group-by: [user.name]\n  timespan: 1s\n  condition: {lt: 3, neq: 1}\n")))
	f.Add([]byte(corrRule("  type: value_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 2h\n  condition: {field: verb, lte: 1}\n")))
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	events := []*schemas.Event{
		denied("1", "bob", "pods", t0), execOn("2", "bob", t0.Add(time.Second)), denied("3", "", "", t0.Add(-time.Hour)),
		execEvent("4", "web", t0), {},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"base.yml": {Data: []byte(baseRules)}, "fuzz.yml": {Data: data}}
		rules, _, err := Load(LoadOptions{}, Source{Ruleset: "fuzz", FS: fsys})
		if err != nil {
			return // a duplicate id: reported, nothing to run
		}
		cfg := NewDefaultConfig()
		cfg.MaxSuppressionEntries = 2
		cfg.MaxCorrelationGroups = 3
		check := func(a *schemas.Alert) error {
			_ = a.AppendJSON(nil)
			if Level(a) == "" || a.Event.ID == "" {
				t.Fatalf("alert without level or id: %+v", a.Rule)
			}
			return nil
		}
		// The processor's engine, and a replay's (which judges at-close
		// windows on event time and at the end of the input).
		stream, replay := NewEngine(rules, cfg), NewEngine(rules, cfg)
		replay.replay.Store(true)
		for _, eng := range []*Engine{stream, replay} {
			for range 2 {
				for _, ev := range events {
					if err := eng.Process(context.Background(), ev, check); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if err := replay.endOfInput(context.Background(), check); err != nil {
			t.Fatal(err)
		}
	})
}
