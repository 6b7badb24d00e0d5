package sink

import (
	"context"
	"errors"
	"fmt"

	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// The sink's own metrics, beside the component metrics of daemon/telemetry.
const (
	MetricBatchSize = "crowsnest_sink_batch_size_events"
	MetricWrite     = "crowsnest_sink_write_seconds"
	MetricPending   = "crowsnest_sink_consumer_pending_events"
)

// metrics are one Runner's instruments.
type metrics struct {
	c         *telemetry.Component
	batchSize prometheus.Observer
	write     prometheus.Observer
	pending   map[Kind]prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry() // counted, never scraped
	}
	cm, err := telemetry.NewComponentMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("sink metrics: %w", err)
	}
	var errs []error
	batchSize := adopt(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricBatchSize,
		Help:    "Records per WriteBatch call, retries included.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8),
	}, []string{"sink"}), &errs)
	write := adopt(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricWrite,
		Help:    "Duration of WriteBatch calls, each retry observed on its own.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
	}, []string{"sink"}), &errs)
	pending := adopt(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricPending,
		Help: "Messages of the stream the sink's consumer has not received yet (num_pending in the consumer info): the sink's lag.",
	}, []string{"sink", "stream"}), &errs)
	if len(errs) > 0 {
		return nil, fmt.Errorf("sink metrics: %w", errors.Join(errs...))
	}
	m := &metrics{
		c:         cm.Component(telemetry.KindSink, name),
		batchSize: batchSize.WithLabelValues(name),
		write:     write.WithLabelValues(name),
		pending:   map[Kind]prometheus.Gauge{},
	}
	for _, k := range Kinds() {
		m.pending[k] = pending.WithLabelValues(name, k.String())
	}
	return m, nil
}

// adopt registers c on reg, or returns the identical collector already
// registered there, so Runners composed in one process share one set.
func adopt[C prometheus.Collector](reg prometheus.Registerer, c C, errs *[]error) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	*errs = append(*errs, err)
	return c
}

// writeError counts n records failing to be written, typed by err.
func (m *metrics) writeError(err error, n int) {
	t := telemetry.WriteFailed
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t = telemetry.TimedOut
	case !IsPermanent(err):
		var be *BatchError
		if !errors.As(err, &be) {
			t = telemetry.RequestFailed // the whole batch: the store did not answer
		}
	}
	for range n {
		m.c.Error(t, telemetry.StageSending)
	}
}
