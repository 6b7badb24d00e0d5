package webhook

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// The webhook sink's metrics, beside the runner's crowsnest_sink_* ones: the
// runner counts records, these count requests, which is where a 429 or a
// slow endpoint shows.
const (
	MetricRequests        = "crowsnest_sink_webhook_requests_total"
	MetricRequestDuration = "crowsnest_sink_webhook_request_seconds"
)

type metrics struct {
	byCode   *prometheus.CounterVec
	duration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry() // counted, never scraped
	}
	byCode, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests,
		Help: "Webhook requests by answer: the HTTP status code, or error when none came (network, timeout).",
	}, []string{"code"}))
	if err != nil {
		return nil, fmt.Errorf("webhook metrics: %w", err)
	}
	duration, err := register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    MetricRequestDuration,
		Help:    "Duration of webhook requests, until the answer's headers.",
		Buckets: prometheus.ExponentialBuckets(0.005, 3, 9),
	}))
	if err != nil {
		return nil, fmt.Errorf("webhook metrics: %w", err)
	}
	return &metrics{byCode: byCode, duration: duration}, nil
}

// register registers c, or returns the identical collector already there
// (two sinks in one process share the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *metrics) requests(code string) { m.byCode.WithLabelValues(code).Inc() }
