package detect

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers the engine's counters on reg (the process's
// registry, never the global one), read when scraped:
//
//	crowsnest_detect_rules                          rules loaded (correlations included)
//	crowsnest_detect_matches_total                  rule matches
//	crowsnest_detect_alerts_total{kind}             alerts raised: kind="rule" or "correlation"
//	crowsnest_detect_suppressed_total               matches suppressed into an earlier alert
//	crowsnest_detect_suppression_evictions_total    suppression windows forgotten to stay bounded
//	crowsnest_detect_correlation_evictions_total    correlation windows forgotten to stay bounded
//	crowsnest_detect_correlation_closed_total       correlation windows closed by the watermark (state deleted)
//	crowsnest_detect_correlation_windows            open correlation windows
//	crowsnest_detect_correlation_overflow_total     at-close windows not judged: their group held too many matches
//	crowsnest_detect_late_events_total              events behind the watermark
//	crowsnest_detect_late_matches_total             correlation matches dropped as late
//	crowsnest_detect_watermark_seconds              the watermark, Unix time (0 before it is known)
func (e *Engine) RegisterMetrics(reg prometheus.Registerer) error {
	c := &e.counters
	collectors := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowsnest_detect_rules", Help: "Detection rules loaded, correlations included."},
			func() float64 { return float64(len(e.Rules().rules)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_matches_total", Help: "Rule matches."},
			func() float64 { return float64(c.Matches.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_alerts_total", Help: "Alerts raised.", ConstLabels: prometheus.Labels{"kind": "rule"}},
			func() float64 { return float64(c.Alerts.Load() - c.Correlated.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_alerts_total", Help: "Alerts raised.", ConstLabels: prometheus.Labels{"kind": "correlation"}},
			func() float64 { return float64(c.Correlated.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_suppressed_total", Help: "Matches suppressed into an earlier alert of the same rule and entity."},
			func() float64 { return float64(c.Suppressed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_suppression_evictions_total", Help: "Suppression windows forgotten to stay within max_suppression_entries."},
			func() float64 { return float64(c.Evicted.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_correlation_evictions_total", Help: "Open correlation windows forgotten to stay within bounds."},
			func() float64 { return float64(e.CorrelationEvictions()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_correlation_closed_total", Help: "Correlation windows closed by the watermark; their state is deleted."},
			func() float64 { return float64(c.CorrelationClosed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_correlation_overflow_total", Help: "Windows of lt/lte/eq/neq correlations not judged at their close because their group held more than 1000 matches."},
			func() float64 { return float64(c.CorrelationOverflow.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowsnest_detect_correlation_windows", Help: "Open correlation windows."},
			func() float64 { return float64(e.OpenCorrelationWindows()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_late_events_total", Help: "Events behind the watermark (newest event time minus allowed_lateness); still stored and matched by single-event rules."},
			func() float64 { return float64(c.LateEvents.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowsnest_detect_late_matches_total", Help: "Correlation matches dropped as too late for any open window."},
			func() float64 { return float64(c.LateMatches.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowsnest_detect_watermark_seconds", Help: "The detection watermark as Unix time; 0 before it is known."},
			func() float64 {
				if wm := e.Watermark(); !wm.IsZero() {
					return float64(wm.UnixNano()) / 1e9
				}
				return 0
			}),
	}
	for _, col := range collectors {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("register detection metrics: %w", err)
		}
	}
	return nil
}
