package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterMetrics(t *testing.T) {
	rules := loadFS(t, map[string]string{"exec.yml": ruleExec})
	eng := NewEngine(rules, NewDefaultConfig())
	reg := prometheus.NewRegistry()
	if err := eng.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	collect(t, eng, execEvent("e1", "p", t0), execEvent("e2", "p", t0.Add(time.Second)))
	want := `
# HELP crowsnest_detect_alerts_total Alerts raised.
# TYPE crowsnest_detect_alerts_total counter
crowsnest_detect_alerts_total{kind="correlation"} 0
crowsnest_detect_alerts_total{kind="rule"} 1
# HELP crowsnest_detect_matches_total Rule matches.
# TYPE crowsnest_detect_matches_total counter
crowsnest_detect_matches_total 2
# HELP crowsnest_detect_suppressed_total Matches suppressed into an earlier alert of the same rule and entity.
# TYPE crowsnest_detect_suppressed_total counter
crowsnest_detect_suppressed_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "crowsnest_detect_alerts_total", "crowsnest_detect_matches_total", "crowsnest_detect_suppressed_total"); err != nil {
		t.Fatal(err)
	}
	if err := eng.RegisterMetrics(reg); err == nil {
		t.Fatal("registering twice on one registry succeeded")
	}
}

// TestLatenessMetrics: late events and matches, open and closed windows and
// the watermark reach the registry.
func TestLatenessMetrics(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	rules := loadFS(t, map[string]string{"base.yml": baseRules, "corr.yml": corrRule(burst)})
	cfg := NewDefaultConfig()
	cfg.AllowedLateness = 10 * time.Second
	clock := &streamClock{now: t0.Add(time.Hour)}
	eng := NewEngine(rules, cfg, WithClock(clock.Now))
	reg := prometheus.NewRegistry()
	if err := eng.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	clock.warm(t, eng, t0)
	collect(t, eng, denied("a", "ann", "pods", t0.Add(time.Minute)), denied("b", "bob", "pods", t0.Add(2*time.Minute+15*time.Second)),
		denied("late", "cid", "pods", t0))
	want := `
# HELP crowsnest_detect_correlation_closed_total Correlation windows closed by the watermark; their state is deleted.
# TYPE crowsnest_detect_correlation_closed_total counter
crowsnest_detect_correlation_closed_total 1
# HELP crowsnest_detect_correlation_windows Open correlation windows.
# TYPE crowsnest_detect_correlation_windows gauge
crowsnest_detect_correlation_windows 1
# HELP crowsnest_detect_late_events_total Events behind the watermark (newest event time minus allowed_lateness); still stored and matched by single-event rules.
# TYPE crowsnest_detect_late_events_total counter
crowsnest_detect_late_events_total 1
# HELP crowsnest_detect_late_matches_total Correlation matches dropped as too late for any open window.
# TYPE crowsnest_detect_late_matches_total counter
crowsnest_detect_late_matches_total 1
`
	names := []string{"crowsnest_detect_correlation_closed_total", "crowsnest_detect_correlation_windows", "crowsnest_detect_late_events_total", "crowsnest_detect_late_matches_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	wm := t0.Add(2*time.Minute + 5*time.Second)
	if got := gaugeValue(t, reg, "crowsnest_detect_watermark_seconds"); got != float64(wm.Unix()) {
		t.Fatalf("watermark metric %v, want %d", got, wm.Unix())
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not registered", name)
	return 0
}
