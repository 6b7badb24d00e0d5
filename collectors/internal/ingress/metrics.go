package ingress

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The HTTP metrics of the push sources, labelled by source (and code).
const (
	// MetricRequests counts answered requests by source and status code.
	MetricRequests = "crowsnest_collector_http_requests_total"
	// MetricRequestSeconds is the time to answer, acknowledgements included.
	MetricRequestSeconds = "crowsnest_collector_http_request_seconds"
	// MetricInFlight is how many requests are being handled.
	MetricInFlight = "crowsnest_collector_http_in_flight_requests"
	// MetricRejected counts requests refused at the in-flight bound (429).
	MetricRejected = "crowsnest_collector_http_rejected_requests_total"
)

type metrics struct {
	requests *prometheus.CounterVec
	seconds  prometheus.Observer
	inflight prometheus.Gauge
	rej      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, source string) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	req, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRequests, Help: "HTTP requests answered by a push source, by status code.",
	}, []string{"source", "code"}))
	if err != nil {
		return nil, err
	}
	sec, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricRequestSeconds, Help: "Time to answer a push source's request, JetStream acknowledgements included.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"source"}))
	if err != nil {
		return nil, err
	}
	inf, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricInFlight, Help: "HTTP requests a push source is handling.",
	}, []string{"source"}))
	if err != nil {
		return nil, err
	}
	rej, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricRejected, Help: "HTTP requests refused with 429 at max_in_flight_requests.",
	}, []string{"source"}))
	if err != nil {
		return nil, err
	}
	return &metrics{
		requests: req.MustCurryWith(prometheus.Labels{"source": source}),
		seconds:  sec.WithLabelValues(source),
		inflight: inf.WithLabelValues(source),
		rej:      rej.WithLabelValues(source),
	}, nil
}

// register registers c, or returns the collector already registered under
// its name (several sources in one process share the vectors).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		var zero C
		return zero, fmt.Errorf("register http metrics: %w", err)
	}
	return c, nil
}

func (m *metrics) observe(code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	m.seconds.Observe(d.Seconds())
}

func (m *metrics) inFlight(d float64) {
	if m != nil {
		m.inflight.Add(d)
	}
}

func (m *metrics) rejected() {
	if m != nil {
		m.rej.Inc()
	}
}
