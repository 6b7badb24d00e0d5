package telemetry

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// ComponentKind is the component_kind label: which part of the pipeline a
// component is.
type ComponentKind string

// The component kinds.
const (
	KindCollector ComponentKind = "collector"
	KindProcessor ComponentKind = "processor"
	KindSink      ComponentKind = "sink"
)

// ErrorType is the error_type label of crowsnest_component_errors_total: a
// closed set, so that the label cannot grow with error messages.
type ErrorType string

// The error types. An error that fits none is OtherError; a value outside
// this list is counted as OtherError too.
const (
	ReadFailed    ErrorType = "read_failed"    // reading the source, a stream or a file failed
	DecodeFailed  ErrorType = "decode_failed"  // a record could not be parsed or mapped
	EncodeFailed  ErrorType = "encode_failed"  // an event could not be serialized
	PublishFailed ErrorType = "publish_failed" // JetStream did not acknowledge a publish
	AckFailed     ErrorType = "ack_failed"     // acknowledging (ack, nak, term) a message failed
	RequestFailed ErrorType = "request_failed" // a call to a store or server failed before it answered
	WriteFailed   ErrorType = "write_failed"   // a store answered, rejecting some or all items
	TimedOut      ErrorType = "timed_out"      // an operation ran out of time
	OtherError    ErrorType = "other"
)

func (t ErrorType) known() bool {
	switch t {
	case ReadFailed, DecodeFailed, EncodeFailed, PublishFailed, AckFailed,
		RequestFailed, WriteFailed, TimedOut, OtherError:
		return true
	}
	return false
}

// Stage is the stage label of crowsnest_component_errors_total: where in the
// component the error happened.
type Stage string

// The stages. A value outside this list is counted as StageProcessing.
const (
	StageReceiving  Stage = "receiving"  // taking input in: reading, fetching, decoding
	StageProcessing Stage = "processing" // working on it: mapping, enriching, detecting
	StageSending    Stage = "sending"    // handing it on: publishing, writing, acknowledging
)

func (s Stage) known() bool {
	return s == StageReceiving || s == StageProcessing || s == StageSending
}

// Metric names, for the documentation and for tests that scrape.
const (
	MetricReceivedEvents  = "crowsnest_component_received_events_total"
	MetricSentEvents      = "crowsnest_component_sent_events_total"
	MetricDiscardedEvents = "crowsnest_component_discarded_events_total"
	MetricErrors          = "crowsnest_component_errors_total"
)

// ComponentMetrics are the counters every component reports, the same for
// collectors, the processor and sinks, so that one dashboard reads them all.
// The runner of a component counts, not the component's own code.
type ComponentMetrics struct {
	received  *prometheus.CounterVec
	sent      *prometheus.CounterVec
	discarded *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

// NewComponentMetrics registers the component counters on reg. Calling it
// again with the same registry, as stages composed in one process do, returns
// metrics over the same counters.
func NewComponentMetrics(reg prometheus.Registerer) (*ComponentMetrics, error) {
	labels := []string{"component_kind", "component_id"}
	var errs []error
	register := func(opts prometheus.CounterOpts, extra ...string) *prometheus.CounterVec {
		vec, err := registerCounterVec(reg, prometheus.NewCounterVec(opts, append(labels, extra...)))
		errs = append(errs, err)
		return vec
	}
	m := &ComponentMetrics{
		received: register(prometheus.CounterOpts{
			Name: MetricReceivedEvents,
			Help: "Events a component took in: read from its source, or fetched from its input stream.",
		}),
		sent: register(prometheus.CounterOpts{
			Name: MetricSentEvents,
			Help: "Events a component handed on and had confirmed: published and acknowledged by JetStream, or written by the store.",
		}),
		discarded: register(prometheus.CounterOpts{
			Name: MetricDiscardedEvents,
			Help: "Events a component dropped; intentional=\"true\" for drops by design (filters, deduplication), \"false\" for losses (dead-lettered, unparseable, given up on).",
		}, "intentional"),
		errors: register(prometheus.CounterOpts{
			Name: MetricErrors,
			Help: "Errors a component met, by error_type and the stage (receiving, processing, sending) where they happened.",
		}, "error_type", "stage"),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("register component metrics: %w", err)
	}
	return m, nil
}

// registerCounterVec registers vec, or returns the identical one already
// registered.
func registerCounterVec(reg prometheus.Registerer, vec *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(vec)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return vec, err
}

// Component returns the counters of one component. id is the component's
// configured id — never a value from an event, which would make the series
// unbounded. It panics on a kind other than the constants above: kinds are
// fixed in code, so the first test finds the mistake.
//
// A nil *ComponentMetrics returns a nil *Component, whose methods do nothing:
// a component built without metrics (in a test) needs no guard.
func (m *ComponentMetrics) Component(kind ComponentKind, id string) *Component {
	if m == nil {
		return nil
	}
	if kind != KindCollector && kind != KindProcessor && kind != KindSink {
		panic(fmt.Sprintf("telemetry: unknown component kind %q", kind))
	}
	k := string(kind)
	return &Component{
		received:      m.received.WithLabelValues(k, id),
		sent:          m.sent.WithLabelValues(k, id),
		intentional:   m.discarded.WithLabelValues(k, id, "true"),
		unintentional: m.discarded.WithLabelValues(k, id, "false"),
		errors:        m.errors.MustCurryWith(prometheus.Labels{"component_kind": k, "component_id": id}),
	}
}

// Component counts for one component. Its methods are safe for concurrent
// use, cost an atomic add (Error: a map lookup too), and do nothing on a nil
// *Component.
type Component struct {
	received      prometheus.Counter
	sent          prometheus.Counter
	intentional   prometheus.Counter
	unintentional prometheus.Counter
	errors        *prometheus.CounterVec
}

// Received counts n events taken in.
func (c *Component) Received(n int) {
	if c != nil && n > 0 {
		c.received.Add(float64(n))
	}
}

// Sent counts n events handed on and confirmed downstream.
func (c *Component) Sent(n int) {
	if c != nil && n > 0 {
		c.sent.Add(float64(n))
	}
}

// DiscardedIntentional counts n events dropped by design: a filter, a
// deduplication, a sampling rule.
func (c *Component) DiscardedIntentional(n int) {
	if c != nil && n > 0 {
		c.intentional.Add(float64(n))
	}
}

// DiscardedUnintentional counts n events lost to an error: unparseable,
// dead-lettered, dropped after the retries ran out. Count the error that
// caused it with Error as well.
func (c *Component) DiscardedUnintentional(n int) {
	if c != nil && n > 0 {
		c.unintentional.Add(float64(n))
	}
}

// Error counts one error of type t at stage s.
func (c *Component) Error(t ErrorType, s Stage) {
	if c == nil {
		return
	}
	if !t.known() {
		t = OtherError
	}
	if !s.known() {
		s = StageProcessing
	}
	c.errors.WithLabelValues(string(t), string(s)).Inc()
}
