package pipeline

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// partitionMetrics say what this replica owns and how often that changes.
type partitionMetrics struct {
	owned     prometheus.Gauge
	handovers *prometheus.CounterVec
}

func newPartitionMetrics(reg prometheus.Registerer) (partitionMetrics, error) {
	m := partitionMetrics{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crowsnest_processor_partitions_owned",
			Help: "Raw-stream partitions this processor replica consumes now.",
		}),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowsnest_processor_partition_handovers_total",
			Help: "Partitions this replica took over (direction=acquired) or gave up after draining them (direction=released).",
		}, []string{"direction"}),
	}
	m.handovers.WithLabelValues("acquired")
	m.handovers.WithLabelValues("released")
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.owned); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return m, fmt.Errorf("register partition metrics: %w", err)
		}
		g, ok := are.ExistingCollector.(prometheus.Gauge)
		if !ok {
			return m, fmt.Errorf("register partition metrics: %w", err)
		}
		m.owned = g
	}
	if err := reg.Register(m.handovers); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return m, fmt.Errorf("register partition metrics: %w", err)
		}
		cv, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return m, fmt.Errorf("register partition metrics: %w", err)
		}
		m.handovers = cv
	}
	return m, nil
}
