package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

const baseRules = `title: Denied
name: denied
id: aaaaaaaa-0000-4000-8000-000000000001
logsource: {product: kubernetes, service: audit}
detection:
  s: {responseStatus.code: 403}
  condition: s
---
title: Exec
name: exec
id: aaaaaaaa-0000-4000-8000-000000000002
logsource: {product: kubernetes, service: audit}
detection:
  s: {objectRef.subresource: exec}
  condition: s
`

func corrRule(body string) string {
	return "title: C\nid: cccccccc-0000-4000-8000-000000000001\nlevel: high\ncorrelation:\n" + body
}

func denied(id, user, resource string, at time.Time) *schemas.Event {
	e := &schemas.Event{Timestamp: at}
	e.Event.ID = id
	e.Crowsnest.Source = "k8s_audit"
	e.User.Name = user
	e.Kubernetes.Audit.ResponseStatus.Code = 403
	e.Kubernetes.Audit.ObjectRef.Resource = resource
	return e
}

func execOn(id, user string, at time.Time) *schemas.Event {
	e := denied(id, user, "pods", at)
	e.Kubernetes.Audit.ResponseStatus.Code = 101
	e.Kubernetes.Audit.ObjectRef.Subresource = "exec"
	return e
}

func correlationAlerts(t *testing.T, corr string, evs ...*schemas.Event) []schemas.Alert {
	t.Helper()
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(corr)})
	cfg := NewDefaultConfig()
	cfg.SuppressionWindow = 0
	var out []schemas.Alert
	for _, a := range collect(t, NewEngine(rules, cfg), evs...) {
		if a.Crowsnest.Alert.Correlation != "" {
			out = append(out, a)
		}
	}
	return out
}

func TestCorrelations(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	eventCount := "  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {gte: 3}\n"
	cases := []struct {
		name   string
		corr   string
		events []*schemas.Event
		want   []string // event ids of each correlation alert
	}{
		{"event_count fires at the threshold", eventCount,
			[]*schemas.Event{denied("1", "bob", "pods", sec(0)), denied("2", "bob", "pods", sec(10)), denied("3", "bob", "pods", sec(20))},
			[]string{"1,2,3"}},
		{"event_count groups by user", eventCount,
			[]*schemas.Event{denied("1", "bob", "pods", sec(0)), denied("2", "eve", "pods", sec(10)), denied("3", "bob", "pods", sec(20))},
			nil},
		{"event_count window slides", eventCount,
			[]*schemas.Event{denied("1", "bob", "pods", sec(0)), denied("2", "bob", "pods", sec(50)), denied("3", "bob", "pods", sec(70)), denied("4", "bob", "pods", sec(80))},
			[]string{"2,3,4"}},
		{"event_count resets after firing", eventCount,
			[]*schemas.Event{denied("1", "bob", "pods", sec(0)), denied("2", "bob", "pods", sec(1)), denied("3", "bob", "pods", sec(2)), denied("4", "bob", "pods", sec(3)), denied("5", "bob", "pods", sec(4))},
			[]string{"1,2,3"}},
		{"a redelivered event counts once", eventCount,
			[]*schemas.Event{denied("1", "bob", "pods", sec(0)), denied("1", "bob", "pods", sec(0)), denied("2", "bob", "pods", sec(1))},
			nil},
		{"event without the group-by field is ignored", eventCount,
			[]*schemas.Event{denied("1", "", "pods", sec(0)), denied("2", "", "pods", sec(1)), denied("3", "", "pods", sec(2))},
			nil},
		{"value_count", "  type: value_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 5m\n  condition: {field: objectRef.resource, gte: 3}\n",
			[]*schemas.Event{denied("1", "bob", "pods", sec(0)), denied("2", "bob", "pods", sec(1)), denied("3", "bob", "secrets", sec(2)), denied("4", "bob", "nodes", sec(3))},
			[]string{"1,2,3,4"}},
		{"temporal any order", "  type: temporal\n  rules: [exec, denied]\n  group-by: [user.name]\n  timespan: 5m\n",
			[]*schemas.Event{denied("1", "bob", "pods", sec(0)), execOn("2", "bob", sec(60))},
			[]string{"2,1"}},
		{"temporal_ordered in order", "  type: temporal_ordered\n  rules: [exec, denied]\n  group-by: [user.name]\n  timespan: 5m\n",
			[]*schemas.Event{execOn("1", "bob", sec(0)), denied("2", "bob", "pods", sec(60))},
			[]string{"1,2"}},
		{"temporal_ordered out of order", "  type: temporal_ordered\n  rules: [exec, denied]\n  group-by: [user.name]\n  timespan: 5m\n",
			[]*schemas.Event{denied("1", "bob", "pods", sec(0)), execOn("2", "bob", sec(60))},
			nil},
		{"temporal_ordered on event time, not arrival", "  type: temporal_ordered\n  rules: [exec, denied]\n  group-by: [user.name]\n  timespan: 5m\n",
			[]*schemas.Event{denied("2", "bob", "pods", sec(60)), execOn("1", "bob", sec(0))},
			[]string{"1,2"}},
		{"temporal beyond the timespan", "  type: temporal\n  rules: [exec, denied]\n  group-by: [user.name]\n  timespan: 1m\n",
			[]*schemas.Event{execOn("1", "bob", sec(0)), denied("2", "bob", "pods", sec(61))},
			nil},
		{"temporal with gte 1: either rule", "  type: temporal\n  rules: [exec, denied]\n  group-by: [user.name]\n  timespan: 5m\n  condition: {gte: 1}\n",
			[]*schemas.Event{denied("1", "bob", "pods", sec(0))},
			[]string{"1"}},
		{"temporal_ordered with gte 1: out of order still one rule", "  type: temporal_ordered\n  rules: [exec, denied]\n  group-by: [user.name]\n  timespan: 5m\n  condition: {gt: 0}\n",
			[]*schemas.Event{denied("1", "bob", "pods", sec(0))},
			[]string{"1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			alerts := correlationAlerts(t, tc.corr, tc.events...)
			var got []string
			for _, a := range alerts {
				got = append(got, strings.Join(a.Crowsnest.Alert.EventIDs, ","))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("correlation alerts on %v, want %v", got, tc.want)
			}
			for _, a := range alerts {
				if a.Rule.ID != "cccccccc-0000-4000-8000-000000000001" || a.Event.Kind != "alert" || a.Crowsnest.Alert.Entity == "" {
					t.Fatalf("alert %+v", a)
				}
				if a.Event.ID != correlationAlertID(a.Rule.ID, a.Crowsnest.Alert.EventIDs) {
					t.Fatalf("alert id %s not derived from its events", a.Event.ID)
				}
			}
		})
	}
}

// TestCorrelationBaseRulesGenerate: by default (generate: false) the base
// rules raise no alerts of their own; generate: true keeps them.
func TestCorrelationBaseRulesGenerate(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for _, generate := range []bool{false, true} {
		corr := "  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {gte: 9}\n"
		if generate {
			corr += "  generate: true\n"
		}
		rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(corr)})
		alerts := collect(t, NewEngine(rules, NewDefaultConfig()), denied("1", "bob", "pods", t0))
		if got := len(alerts) == 1; got != generate {
			t.Errorf("generate %v: %d alerts of the base rule", generate, len(alerts))
		}
	}
}

func TestCorrelationProblems(t *testing.T) {
	cases := []struct{ corr, want string }{
		{"  type: event_count\n  rules: [nosuch]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {gte: 3}\n", "no loaded rule"},
		{"  type: temporal\n  rules: [denied, exec]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {lt: 2}\n", "correlation:temporal:condition"},
		{"  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {neq: 1000}\n", "correlation:neq"},
		{"  type: event_count\n  rules: [denied]\n  group-by: [NoSuchField]\n  timespan: 1m\n  condition: {gte: 3}\n", "NoSuchField"},
		{"  type: temporal\n  rules: [denied, exec]\n  timespan: 1m\n", "group-by"},
		{"  type: temporal\n  rules: [denied, exec]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {gt: 2}\n", "no count of the 2 referenced"},
		{"  type: temporal_ordered\n  rules: [denied, exec]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {gte: 3}\n", "no count of the 2 referenced"},
	}
	for _, tc := range cases {
		fsys := map[string]string{"base.yml": baseRules, "corr.yml": corrRule(tc.corr)}
		_, problems, err := Load(LoadOptions{}, Source{Ruleset: "t", FS: mapFS(fsys)})
		if err != nil {
			t.Fatal(err)
		}
		if len(problems) != 1 || !strings.Contains(problems[0].Error(), tc.want) {
			t.Errorf("%q: problems %v, want one saying %q", tc.corr, problems, tc.want)
		}
	}
}

func TestCorrelationGroupsAreBounded(t *testing.T) {
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule("  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1h\n  condition: {gte: 3}\n")})
	cfg := NewDefaultConfig()
	cfg.MaxCorrelationGroups = 100
	eng := NewEngine(rules, cfg)
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for i := range 1000 {
		collect(t, eng, denied("e"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), "user-"+time.Duration(i).String(), "pods", t0.Add(time.Duration(i)*time.Millisecond)))
	}
	if n := len(eng.active.Load().corr[0].groups); n > 100 {
		t.Fatalf("%d open groups, bound 100", n)
	}
	if eng.CorrelationEvictions() == 0 {
		t.Fatal("no eviction counted")
	}
}

// TestCorrelationRedeliveryAfterFiring: an event that made a correlation
// fire, seen again (an input redelivered after its alert failed to publish),
// raises the same alert again — never none, never another id.
func TestCorrelationRedeliveryAfterFiring(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule("  type: event_count\n  rules: [denied]\n  group-by: [user.name]\n  timespan: 1m\n  condition: {gte: 2}\n")})
	eng := NewEngine(rules, NewDefaultConfig())
	last := denied("2", "bob", "pods", t0.Add(time.Second))
	var ids []string
	for _, a := range collect(t, eng, denied("1", "bob", "pods", t0), last, last, denied("3", "bob", "pods", t0.Add(2*time.Second))) {
		ids = append(ids, a.Event.ID)
	}
	if len(ids) != 2 || ids[0] != ids[1] {
		t.Fatalf("alerts %v: want the same correlation alert twice (first delivery and redelivery), nothing more", ids)
	}
}
