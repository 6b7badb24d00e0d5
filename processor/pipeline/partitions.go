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
	fenced    prometheus.Counter
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
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crowsnest_processor_partition_fence_pauses_total",
			Help: "Times a partition consumer paused because its claim had not been renewed in time (the replica stalled or NATS was slow): its fetched messages were handed back.",
		}),
	}
	m.handovers.WithLabelValues("acquired")
	m.handovers.WithLabelValues("released")
	if reg == nil {
		return m, nil
	}
	var err error
	if m.owned, err = register(reg, m.owned); err != nil {
		return m, err
	}
	if m.handovers, err = register(reg, m.handovers); err != nil {
		return m, err
	}
	if m.fenced, err = register(reg, m.fenced); err != nil {
		return m, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name (a second pipeline in one process shares the first's).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register partition metrics: %w", err)
}
