package enrich

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics registers the Enricher's metrics (crowsnest_enrich_*,
// docs/metrics.md) with reg, the process's registry.
func (e *Enricher) RegisterMetrics(reg prometheus.Registerer) error {
	s := &e.stats
	counter := func(name, help string, labels prometheus.Labels, v func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, func() float64 { return float64(v()) })
	}
	const lookups = "Lookups of the container cache for events that lacked pod or image fields."
	const evictions = "Cache entries dropped: capacity (the least recently used, to stay within max_entries) or expired (older than ttl)."
	collectors := []prometheus.Collector{
		counter("crowsnest_enrich_cache_lookups_total", lookups, prometheus.Labels{"result": "hit"}, s.Hits.Load),
		counter("crowsnest_enrich_cache_lookups_total", lookups, prometheus.Labels{"result": "miss"}, s.Misses.Load),
		counter("crowsnest_enrich_cache_evictions_total", evictions, prometheus.Labels{"reason": "capacity"}, s.EvictedCapacity.Load),
		counter("crowsnest_enrich_cache_evictions_total", evictions, prometheus.Labels{"reason": "expired"}, s.EvictedExpired.Load),
		counter("crowsnest_enrich_events_enriched_total", "Events that gained orchestrator, container, image or host fields from the cache.", nil, s.Enriched.Load),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowsnest_enrich_cache_entries", Help: "Entries held by the cache.", ConstLabels: prometheus.Labels{"cache": "containers"}},
			func() float64 { c, _ := e.Len(); return float64(c) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowsnest_enrich_cache_entries", Help: "Entries held by the cache.", ConstLabels: prometheus.Labels{"cache": "pods"}},
			func() float64 { _, p := e.Len(); return float64(p) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register enrichment metrics: %w", err)
		}
	}
	return nil
}
