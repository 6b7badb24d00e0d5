package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
)

// execRecord is a kubectl exec into a pod: the built-in pack alerts on it.
func execRecord(auditID string) []byte {
	return fmt.Appendf(nil, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":"ResponseStarted",`+
		`"requestURI":"/api/v1/namespaces/shop/pods/web-1/exec?command=sh","verb":"create","user":{"username":"dave@example.com"},`+
		`"sourceIPs":["198.51.100.23"],"objectRef":{"resource":"pods","subresource":"exec","namespace":"shop","name":"web-1","apiVersion":"v1"},`+
		`"responseStatus":{"code":101},"requestReceivedTimestamp":"2026-11-26T10:00:00.000000Z","stageTimestamp":"2026-11-26T10:00:00.040000Z"}`, auditID)
}

// newPipeline builds a pipeline with the built-in rules over h's server; a
// new one is a restarted processor (empty suppression table).
func newPipeline(t *testing.T, h *harness, cfgMut func(*pipeline.Config)) func(ctx context.Context) error {
	t.Helper()
	cfg := pipeline.NewDefaultConfig()
	cfg.RetryDelay = 100 * time.Millisecond
	if cfgMut != nil {
		cfgMut(&cfg)
	}
	reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg.Normalize, reg)
	if err != nil {
		t.Fatal(err)
	}
	tcfg := topology.NewDefaultConfig()
	tcfg.Consumers.Processor.AckWait = 2 * time.Second
	tcfg.Consumers.Processor.Backoff = nil
	// Unlimited deliveries: a test that makes publishes fail for a while
	// must not reach the last delivery, which dead-letters the input.
	tcfg.Consumers.Processor.MaxDeliver = -1
	p, err := pipeline.New(h.js, norm, deadletter.NewPublisher(h.js), cfg, pipeline.Settings{
		Sources:  []string{"k8s_audit"},
		Consumer: tcfg.Consumers.Processor,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p.Run
}

func (h *harness) runWith(t *testing.T, run func(context.Context) error, cond func()) {
	t.Helper()
	prev := h.run
	h.run = run
	defer func() { h.run = prev }()
	h.runUntil(t, cond)
}

// TestPipelinePublishesAlertOnce: an alert-triggering record yields exactly
// one alert — on the alert subject of its level, with Nats-Msg-Id = alert id
// — even when the record comes again (a collector resend) to the same
// processor and to a restarted one.
func TestPipelinePublishesAlertOnce(t *testing.T) {
	h := newHarness(t)
	h.publishRaw(t, "first", execRecord("0b2f5c7e-1111-4222-8333-444455556666"))
	h.publishRaw(t, "benign", auditEvent(1, "ResponseComplete"))
	run := newPipeline(t, h, nil)
	h.runWith(t, run, func() {
		h.waitFor(t, topology.EventsStream, 2)
		h.waitFor(t, topology.AlertsStream, 1)
	})

	// The same record again, to the same processor and to a fresh one.
	h.publishRaw(t, "resend-1", execRecord("0b2f5c7e-1111-4222-8333-444455556666"))
	h.runWith(t, run, func() { h.waitRawEmpty(t) })
	h.publishRaw(t, "resend-2", execRecord("0b2f5c7e-1111-4222-8333-444455556666"))
	h.runWith(t, newPipeline(t, h, nil), func() { h.waitRawEmpty(t) })
	time.Sleep(200 * time.Millisecond)

	if n := h.count(t, topology.AlertsStream); n != 1 {
		t.Fatalf("alerts stream holds %d, want exactly 1", n)
	}
	s, err := h.js.Stream(context.Background(), topology.AlertsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Event struct {
			ID   string `json:"id"`
			Kind string `json:"kind"`
		} `json:"event"`
		Rule struct {
			Name  string `json:"name"`
			Level string `json:"level"`
		} `json:"rule"`
		Crowsnest struct {
			Alert struct {
				EventIDs []string `json:"event_ids"`
			} `json:"alert"`
		} `json:"crowsnest"`
	}
	if err := json.Unmarshal(m.Data, &a); err != nil {
		t.Fatal(err)
	}
	if a.Event.Kind != "alert" || a.Rule.Name != "Exec, attach or port-forward into a pod" {
		t.Fatalf("alert %+v", a)
	}
	if m.Subject != "crowsnest.alerts."+a.Rule.Level || m.Header.Get(headers.MsgID) != a.Event.ID {
		t.Fatalf("subject %s, msg id %q, alert id %q", m.Subject, m.Header.Get(headers.MsgID), a.Event.ID)
	}
	if len(a.Crowsnest.Alert.EventIDs) != 1 || a.Crowsnest.Alert.EventIDs[0] != "0b2f5c7e-1111-4222-8333-444455556666-ResponseStarted" {
		t.Fatalf("event ids %v (must carry the auditID)", a.Crowsnest.Alert.EventIDs)
	}
}

// TestPipelineAlertPublishFailureRedelivers: when the alerts stream cannot
// take the alert, the input is not acked; once it can, the redelivered input
// yields the alert (and the event once).
func TestPipelineAlertPublishFailureRedelivers(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	// Take the alerts stream away: alert publishes fail (no responders).
	if err := h.js.DeleteStream(ctx, topology.AlertsStream); err != nil {
		t.Fatal(err)
	}
	h.publishRaw(t, "x", execRecord("9a9a9a9a-1111-4222-8333-444455556666"))
	run := newPipeline(t, h, nil)
	h.runWith(t, run, func() {
		h.waitFor(t, topology.EventsStream, 1)
		time.Sleep(500 * time.Millisecond)
	})
	if left := h.count(t, "CROWSNEST_RAW_K8S_AUDIT"); left != 1 {
		t.Fatalf("raw stream holds %d; the input must stay until its alert is stored", left)
	}
	tcfg := topology.NewDefaultConfig()
	if err := topology.Ensure(ctx, h.js, tcfg); err != nil {
		t.Fatal(err)
	}
	h.runWith(t, run, func() {
		h.waitFor(t, topology.AlertsStream, 1)
		h.waitRawEmpty(t)
	})
	if n := h.count(t, topology.EventsStream); n != 1 {
		t.Fatalf("events stream holds %d, want 1 (the republished event is a duplicate)", n)
	}
}

// TestPipelineDetectionOff: with detect.enabled false no alert is published.
func TestPipelineDetectionOff(t *testing.T) {
	h := newHarness(t)
	h.publishRaw(t, "x", execRecord("7c7c7c7c-1111-4222-8333-444455556666"))
	h.runWith(t, newPipeline(t, h, func(c *pipeline.Config) { c.Detect.Enabled = false }), func() { h.waitRawEmpty(t) })
	if n := h.count(t, topology.AlertsStream); n != 0 {
		t.Fatalf("%d alerts with detection off", n)
	}
}

func (h *harness) waitRawEmpty(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.count(t, "CROWSNEST_RAW_K8S_AUDIT") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("raw stream still holds %d", h.count(t, "CROWSNEST_RAW_K8S_AUDIT"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forbiddenRecord is a 403 for bob at second sec: five in a minute make the
// built-in burst correlation fire.
func forbiddenRecord(auditID string, sec int) []byte {
	ts := fmt.Sprintf("2026-11-26T10:00:%02d.000000Z", sec)
	return fmt.Appendf(nil, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":"ResponseComplete",`+
		`"requestURI":"/api/v1/namespaces/kube-system/secrets","verb":"list","user":{"username":"bob@example.com"},"sourceIPs":["198.51.100.77"],`+
		`"objectRef":{"resource":"secrets","namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"code":403},`+
		`"requestReceivedTimestamp":%q,"stageTimestamp":%q}`, auditID, ts, ts)
}

// correlationAlerts counts the alerts stream's correlation alerts.
func (h *harness) correlationAlerts(t *testing.T) int {
	t.Helper()
	s, err := h.js.Stream(context.Background(), topology.AlertsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			continue
		}
		var a struct {
			Crowsnest struct {
				Alert struct{ Correlation string } `json:"alert"`
			} `json:"crowsnest"`
		}
		if json.Unmarshal(m.Data, &a) == nil && a.Crowsnest.Alert.Correlation != "" {
			n++
		}
	}
	return n
}

// TestPipelineCorrelationSurvivesRestart: a correlation window open when the
// processor stops is in the crowsnest-state bucket; the restarted processor
// resumes it, the correlation fires exactly once, and a resend of the
// record that completed it raises no second alert.
func TestPipelineCorrelationSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	for i := range 3 {
		h.publishRaw(t, fmt.Sprintf("f-%d", i), forbiddenRecord(fmt.Sprintf("4a4a4a4a-0000-4000-8000-00000000000%d", i), i*5))
	}
	h.runWith(t, newPipeline(t, h, nil), func() { h.waitRawEmpty(t) })
	if n := h.correlationAlerts(t); n != 0 {
		t.Fatalf("%d correlation alerts after 3 of 5 denials", n)
	}

	// A new processor: its memory is empty, the window is in the bucket.
	for i := 3; i < 5; i++ {
		h.publishRaw(t, fmt.Sprintf("f-%d", i), forbiddenRecord(fmt.Sprintf("4a4a4a4a-0000-4000-8000-00000000000%d", i), i*5))
	}
	h.runWith(t, newPipeline(t, h, nil), func() { h.waitRawEmpty(t) })
	if n := h.correlationAlerts(t); n != 1 {
		t.Fatalf("%d correlation alerts after the restart, want exactly 1", n)
	}

	// The completing record again, to yet another processor.
	h.publishRaw(t, "f-4-again", forbiddenRecord("4a4a4a4a-0000-4000-8000-000000000004", 20))
	h.runWith(t, newPipeline(t, h, nil), func() { h.waitRawEmpty(t) })
	time.Sleep(200 * time.Millisecond)
	if n := h.correlationAlerts(t); n != 1 {
		t.Fatalf("%d correlation alerts after a resend, want exactly 1", n)
	}
}

// TestPipelineStateWriteFailureRedelivers: a correlation match's window
// write is one of its input's outputs: while the state bucket refuses it
// the input is not acked (its event is stored all the same), and once the
// bucket takes writes again the input is acked with its window stored.
func TestPipelineStateWriteFailureRedelivers(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tcfg := topology.NewDefaultConfig()
	small := topology.StateBucketConfig(tcfg)
	small.MaxValueSize = 8 // a window is larger: every write is refused
	if _, err := h.js.UpdateKeyValue(ctx, small); err != nil {
		t.Fatal(err)
	}
	h.publishRaw(t, "f-0", forbiddenRecord("5b5b5b5b-0000-4000-8000-000000000000", 0))
	run := newPipeline(t, h, nil)
	h.runWith(t, run, func() {
		h.waitFor(t, topology.EventsStream, 1)
		time.Sleep(500 * time.Millisecond)
	})
	if left := h.count(t, "CROWSNEST_RAW_K8S_AUDIT"); left != 1 {
		t.Fatalf("raw stream holds %d; the input must stay until its window is stored", left)
	}
	if _, err := h.js.UpdateKeyValue(ctx, topology.StateBucketConfig(tcfg)); err != nil {
		t.Fatal(err)
	}
	h.runWith(t, run, func() { h.waitRawEmpty(t) })
	kv, err := h.js.KeyValue(ctx, topology.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for range keys.Keys() {
		n++
	}
	if n != 1 {
		t.Fatalf("state bucket holds %d windows after the input was acked, want 1", n)
	}
}

// TestPipelineRegistersDetectionMetrics: the engine's counters reach the
// registry the caller hands in.
func TestPipelineRegistersDetectionMetrics(t *testing.T) {
	h := newHarness(t)
	cfg := pipeline.NewDefaultConfig()
	reg := prometheus.NewRegistry()
	norm, err := normalize.New(cfg.Normalize, mustRegistry(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.New(h.js, norm, deadletter.NewPublisher(h.js), cfg, pipeline.Settings{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "crowsnest_detect_rules" && f.GetMetric()[0].GetGauge().GetValue() > 20 {
			return
		}
	}
	t.Fatal("crowsnest_detect_rules not registered with the built-in pack's count")
}

func mustRegistry(t *testing.T, cfg pipeline.Config) *normalize.Registry {
	t.Helper()
	reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
	if err != nil {
		t.Fatal(err)
	}
	return reg
}
