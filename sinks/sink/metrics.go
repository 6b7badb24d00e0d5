package sink

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The component metrics every crowsnest stage exports, and the sink's own.
// The component metrics belong to daemon/telemetry once it provides them;
// until then they are declared here, with the names and labels it will use.
const (
	metricReceived  = "crowsnest_component_received_events_total"
	metricSent      = "crowsnest_component_sent_events_total"
	metricDiscarded = "crowsnest_component_discarded_events_total"
	metricErrors    = "crowsnest_component_errors_total"
	metricBatchSize = "crowsnest_sink_batch_size_events"
	metricWrite     = "crowsnest_sink_write_seconds"
	metricPending   = "crowsnest_sink_consumer_pending_events"
)

// Error types, the bounded values of the error_type label.
const (
	errTypeRetryable  = "retryable"   // a record failed and will be written again
	errTypePermanent  = "permanent"   // a record failed for good and was dead-lettered
	errTypeDeadLetter = "dead_letter" // publishing to the dead-letter stream failed
	errTypeAck        = "ack"         // an ack, nak, term or in-progress was not sent
	errTypeConsume    = "consume"     // fetching from JetStream failed
)

// metrics are one Runner's instruments, curried with its labels.
type metrics struct {
	received, sent, discarded prometheus.Counter
	errors                    *prometheus.CounterVec
	batchSize, write          prometheus.Observer
	pending                   map[Kind]prometheus.Gauge
}

type metricVecs struct {
	received, sent, discarded, errors *prometheus.CounterVec
	batchSize, write                  *prometheus.HistogramVec
	pending                           *prometheus.GaugeVec
}

func newMetricVecs() metricVecs {
	return metricVecs{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricReceived, Help: "Events a stage received.",
		}, []string{"stage"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricSent, Help: "Events a stage delivered downstream (for a sink: written to its store and acknowledged).",
		}, []string{"stage"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricDiscarded, Help: "Events a stage did not deliver; intentional=false when they went to the dead-letter stream.",
		}, []string{"stage", "intentional"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricErrors, Help: "Errors by type; one event may count several times.",
		}, []string{"stage", "error_type"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: metricBatchSize, Help: "Records per WriteBatch call.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}, []string{"sink"}),
		write: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: metricWrite, Help: "Duration of WriteBatch calls, retries counted separately.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"sink"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPending, Help: "Messages of the stream the sink's consumer has not received yet (num_pending): its lag.",
		}, []string{"sink", "stream"}),
	}
}

// register registers v in reg, or adopts the collectors already registered
// there under the same names, so several Runners in one process (crowsnest
// run) share one set.
func (v *metricVecs) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	adopt := func(c prometheus.Collector) prometheus.Collector {
		err := reg.Register(c)
		if err == nil {
			return c
		}
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			return are.ExistingCollector
		}
		errs = append(errs, err)
		return c
	}
	counter := func(c *prometheus.CounterVec) *prometheus.CounterVec {
		if got, ok := adopt(c).(*prometheus.CounterVec); ok {
			return got
		}
		errs = append(errs, fmt.Errorf("a collector of another type is registered as %v", c))
		return c
	}
	histogram := func(h *prometheus.HistogramVec) *prometheus.HistogramVec {
		if got, ok := adopt(h).(*prometheus.HistogramVec); ok {
			return got
		}
		errs = append(errs, fmt.Errorf("a collector of another type is registered as %v", h))
		return h
	}
	v.received = counter(v.received)
	v.sent = counter(v.sent)
	v.discarded = counter(v.discarded)
	v.errors = counter(v.errors)
	v.batchSize = histogram(v.batchSize)
	v.write = histogram(v.write)
	if got, ok := adopt(v.pending).(*prometheus.GaugeVec); ok {
		v.pending = got
	} else {
		errs = append(errs, fmt.Errorf("a collector of another type is registered as %s", metricPending))
	}
	if len(errs) > 0 {
		return fmt.Errorf("register sink metrics: %w", errors.Join(errs...))
	}
	return nil
}

func newMetrics(reg prometheus.Registerer, name, stage string) (*metrics, error) {
	v := newMetricVecs()
	if err := v.register(reg); err != nil {
		return nil, err
	}
	errs, err := v.errors.CurryWith(prometheus.Labels{"stage": stage})
	if err != nil {
		return nil, fmt.Errorf("sink metrics: %w", err)
	}
	m := &metrics{
		received:  v.received.WithLabelValues(stage),
		sent:      v.sent.WithLabelValues(stage),
		discarded: v.discarded.WithLabelValues(stage, "false"),
		errors:    errs,
		batchSize: v.batchSize.WithLabelValues(name),
		write:     v.write.WithLabelValues(name),
		pending:   map[Kind]prometheus.Gauge{},
	}
	for _, k := range Kinds() {
		m.pending[k] = v.pending.WithLabelValues(name, k.String())
	}
	return m, nil
}

func (m *metrics) error(typ string, n int) {
	m.errors.WithLabelValues(typ).Add(float64(n))
}
