package publish

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricPublishSeconds is the histogram of the time from handing a record to
// the publisher to JetStream's acknowledgement, by source. Its tail grows
// when the bus is slow or unreachable (retries included).
const MetricPublishSeconds = "crowsnest_collector_publish_seconds"

// newPublishSeconds registers the publish latency histogram on reg, or
// returns the one already registered (several publishers in one process).
// A nil reg returns nil: nothing is measured.
func newPublishSeconds(reg prometheus.Registerer) (*prometheus.HistogramVec, error) {
	if reg == nil {
		return nil, nil
	}
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: MetricPublishSeconds,
		Help: "Time from a collector handing a record to the publisher to JetStream acknowledging it, retries included.",
		// 250µs to ~16s: an embedded server acks in well under a millisecond,
		// an outage shows up in the top buckets.
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 17),
	}, []string{"source"})
	err := reg.Register(vec)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(*prometheus.HistogramVec); ok {
			return existing, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", MetricPublishSeconds, err)
	}
	return vec, nil
}
