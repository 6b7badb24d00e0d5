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
