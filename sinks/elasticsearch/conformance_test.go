package elasticsearch

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// The conformance suite against the real server. ExactlyOnce holds by
// create with _id = event.id: a redelivered document meets 409.
func TestConformance(t *testing.T) {
	base := serverURL(t)
	sinktest.Run(t, sinktest.Harness{
		Name: Type,
		NewStore: func(tb testing.TB) sinktest.Store {
			return &esStore{base: base, ns: testNamespace(tb, base)}
		},
		ExactlyOnce: true,
		// The mapping rejects it: @timestamp is a date.
		Reject: []byte(`{"@timestamp":"not a date","event":{"id":"rejected","kind":"event"},"message":"a document the mapping refuses"}`),
	})
}

// esStore is one test namespace: its two data streams.
type esStore struct {
	base, ns string
}

func (s *esStore) Open(tb testing.TB) sink.Sink {
	return openSink(tb, testConfig(s.base, s.ns))
}

func (s *esStore) Stored(tb testing.TB) map[string]int {
	_, counts := hits(tb, s.base, s.ns)
	return counts
}
