package telemetry_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
)

func TestComponentMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewComponentMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	file := m.Component(telemetry.KindSink, "file")
	file.Received(10)
	file.Sent(7)
	file.DiscardedIntentional(1)
	file.DiscardedUnintentional(2)
	file.Error(telemetry.WriteFailed, telemetry.StageSending)
	file.Error(telemetry.WriteFailed, telemetry.StageSending)
	file.Error("connection reset by peer 10.0.0.7:5123", telemetry.StageReceiving) // unbounded text is folded into "other"
	file.Error(telemetry.TimedOut, "flush")                                        // unknown stage is folded into "processing"
	file.Received(-3)                                                              // a negative count would panic a counter; ignored
	file.Sent(0)

	// A second stage composed in the same process registers again on the
	// same registry and shares the series.
	m2, err := telemetry.NewComponentMetrics(reg)
	if err != nil {
		t.Fatalf("second NewComponentMetrics on one registry: %v", err)
	}
	m2.Component(telemetry.KindCollector, "k8saudit").Received(3)
	m2.Component(telemetry.KindSink, "file").Received(1)

	const want = `
# HELP crowsnest_component_discarded_events_total Events a component dropped; intentional="true" for drops by design (filters, deduplication), "false" for losses (dead-lettered, unparseable, given up on).
# TYPE crowsnest_component_discarded_events_total counter
crowsnest_component_discarded_events_total{component_id="file",component_kind="sink",intentional="false"} 2
crowsnest_component_discarded_events_total{component_id="file",component_kind="sink",intentional="true"} 1
crowsnest_component_discarded_events_total{component_id="k8saudit",component_kind="collector",intentional="false"} 0
crowsnest_component_discarded_events_total{component_id="k8saudit",component_kind="collector",intentional="true"} 0
# HELP crowsnest_component_errors_total Errors a component met, by error_type and the stage (receiving, processing, sending) where they happened.
# TYPE crowsnest_component_errors_total counter
crowsnest_component_errors_total{component_id="file",component_kind="sink",error_type="other",stage="receiving"} 1
crowsnest_component_errors_total{component_id="file",component_kind="sink",error_type="timed_out",stage="processing"} 1
crowsnest_component_errors_total{component_id="file",component_kind="sink",error_type="write_failed",stage="sending"} 2
# HELP crowsnest_component_received_events_total Events a component took in: read from its source, or fetched from its input stream.
# TYPE crowsnest_component_received_events_total counter
crowsnest_component_received_events_total{component_id="file",component_kind="sink"} 11
crowsnest_component_received_events_total{component_id="k8saudit",component_kind="collector"} 3
# HELP crowsnest_component_sent_events_total Events a component handed on and had confirmed: published and acknowledged by JetStream, or written by the store.
# TYPE crowsnest_component_sent_events_total counter
crowsnest_component_sent_events_total{component_id="file",component_kind="sink"} 7
crowsnest_component_sent_events_total{component_id="k8saudit",component_kind="collector"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestComponentMetricsNilIsNoop(t *testing.T) {
	var m *telemetry.ComponentMetrics
	c := m.Component(telemetry.KindProcessor, "pipeline")
	c.Received(1)
	c.Sent(1)
	c.DiscardedIntentional(1)
	c.DiscardedUnintentional(1)
	c.Error(telemetry.DecodeFailed, telemetry.StageProcessing)
}

func TestComponentBadKindPanics(t *testing.T) {
	m, err := telemetry.NewComponentMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Component with an unknown kind did not panic")
		}
	}()
	m.Component("exporter", "x")
}

func TestComponentMetricsConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Someone registered the same name with other labels: a real conflict.
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: telemetry.MetricSentEvents, Help: "x"}))
	if _, err := telemetry.NewComponentMetrics(reg); err == nil {
		t.Error("NewComponentMetrics succeeded over a conflicting metric")
	}
}

func TestComponentConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewComponentMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Component(telemetry.KindProcessor, "pipeline")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Received(1)
				c.Error(telemetry.DecodeFailed, telemetry.StageProcessing)
			}
		})
	}
	wg.Wait()
	const want = `
# HELP crowsnest_component_received_events_total Events a component took in: read from its source, or fetched from its input stream.
# TYPE crowsnest_component_received_events_total counter
crowsnest_component_received_events_total{component_id="pipeline",component_kind="processor"} 8000
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), telemetry.MetricReceivedEvents); err != nil {
		t.Error(err)
	}
}
