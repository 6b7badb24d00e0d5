package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
)

func auditEvent(i int, stage string) []byte {
	return fmt.Appendf(nil, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a-%04d","stage":%q,`+
		`"requestURI":"/api/v1/namespaces/shop/pods","verb":"list","user":{"username":"alice","groups":["devs"]},"sourceIPs":["10.0.0.%d"],`+
		`"objectRef":{"resource":"pods","namespace":"shop","apiVersion":"v1"},"responseStatus":{"code":200},`+
		`"requestReceivedTimestamp":"2026-11-26T10:00:00.000000Z","stageTimestamp":"2026-11-26T10:00:00.010000Z"}`, i, stage, i%250)
}

type harness struct {
	js  jetstream.JetStream
	run func(ctx context.Context) error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	tcfg := topology.NewDefaultConfig()
	tcfg.Consumers.Processor.AckWait = 2 * time.Second
	tcfg.Consumers.Processor.Backoff = nil
	if err := topology.Ensure(ctx, js, tcfg); err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.NewDefaultConfig()
	cfg.RetryDelay = 100 * time.Millisecond
	reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg.Normalize, reg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(js, norm, deadletter.NewPublisher(js), cfg, pipeline.Settings{
		Sources:  []string{"k8s_audit"},
		Consumer: tcfg.Consumers.Processor,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{js: js, run: p.Run}
}

func (h *harness) publishRaw(t *testing.T, id string, data []byte) *jetstream.PubAck {
	t.Helper()
	m := nats.NewMsg("crowsnest.raw.k8s_audit.node-1." + topology.KeyToken("ns/shop"))
	m.Data = data
	m.Header.Set(headers.MsgID, id)
	m.Header.Set(headers.Node, "node-1")
	m.Header.Set(headers.Observed, headers.FormatTime(time.Now()))
	ack, err := h.js.PublishMsg(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

func (h *harness) count(t *testing.T, stream string) uint64 {
	t.Helper()
	return natstest.StreamMsgs(t, h.js, stream)
}

func (h *harness) waitFor(t *testing.T, stream string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if h.count(t, stream) >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %d messages, want %d", stream, h.count(t, stream), want)
}

// runFor runs the pipeline until cond holds, then stops it and checks a clean return.
func (h *harness) runUntil(t *testing.T, cond func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	cond()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestPipelineNormalizesPublishesAndDeadLetters(t *testing.T) {
	h := newHarness(t)
	const n = 300
	for i := range n {
		h.publishRaw(t, fmt.Sprintf("a-%04d-ResponseComplete", i), auditEvent(i, "ResponseComplete"))
	}
	h.publishRaw(t, "bad-1", []byte(`{"this is": "not an audit event"}`))
	h.publishRaw(t, "bad-2", []byte("\x00 not json"))

	h.runUntil(t, func() {
		h.waitFor(t, topology.EventsStream, n)
		h.waitFor(t, topology.DeadLetterStream, 2)
	})
	if got := h.count(t, topology.EventsStream); got != n {
		t.Fatalf("events stream holds %d, want %d", got, n)
	}
	// Work-queue raw stream: every input was acked or terminated, none left.
	deadline := time.Now().Add(5 * time.Second)
	for h.count(t, "CROWSNEST_RAW_K8S_AUDIT") != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := h.count(t, "CROWSNEST_RAW_K8S_AUDIT"); left != 0 {
		t.Fatalf("raw stream still holds %d unacknowledged inputs", left)
	}

	// Every event's Nats-Msg-Id is its event.id, which contains the auditID.
	s, _ := h.js.Stream(context.Background(), topology.EventsStream)
	m, err := s.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Event struct{ ID string } `json:"event"`
	}
	if err := json.Unmarshal(m.Data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Event.ID != "a-0000-ResponseComplete" || m.Header.Get(headers.MsgID) != doc.Event.ID {
		t.Fatalf("event.id %q, msg id %q", doc.Event.ID, m.Header.Get(headers.MsgID))
	}

	// The dead letters carry the reason, the stage and the original bytes.
	d, _ := h.js.Stream(context.Background(), topology.DeadLetterStream)
	for seq := uint64(1); seq <= 2; seq++ {
		raw, err := d.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := deadletter.Decode(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Stage != topology.ProcessorStage || rec.Source != "k8s_audit" || rec.Reason == "" || len(rec.Data) == 0 {
			t.Fatalf("dead letter %d: %+v", seq, rec)
		}
	}
}

// TestPipelineRedeliveryProducesNoDuplicate: the same audit event arriving
// again (a collector resend under another msg id, or a processor crash
// before the ack) is dropped by the events stream's dedup on event.id.
func TestPipelineRedeliveryProducesNoDuplicate(t *testing.T) {
	h := newHarness(t)
	for i := range 50 {
		h.publishRaw(t, fmt.Sprintf("first-%d", i), auditEvent(i, "ResponseComplete"))
	}
	h.runUntil(t, func() { h.waitFor(t, topology.EventsStream, 50) })

	for i := range 50 {
		h.publishRaw(t, fmt.Sprintf("resend-%d", i), auditEvent(i, "ResponseComplete"))
	}
	h.publishRaw(t, "new-1", auditEvent(999, "ResponseComplete"))
	h.runUntil(t, func() { h.waitFor(t, topology.EventsStream, 51) })
	time.Sleep(200 * time.Millisecond)
	if got := h.count(t, topology.EventsStream); got != 51 {
		t.Fatalf("events stream holds %d, want 51 (resends must dedup)", got)
	}
}

// TestPartitionConsumerComesBack: a partition's consumer that fails while
// the replica owns the partition (here deleted; in a cluster, a lookup
// timing out while a node restarts) is made again and consumed, not left
// idle until the replica stops.
func TestPartitionConsumerComesBack(t *testing.T) {
	h := newHarness(t)
	h.publishRaw(t, "before", auditEvent(1, "ResponseComplete"))
	stream, err := topology.RawStream(topology.SourceK8sAudit)
	if err != nil {
		t.Fatal(err)
	}
	h.runUntil(t, func() {
		h.waitFor(t, topology.EventsStream, 1)
		ctx := context.Background()
		for part := range topology.DefaultPartitions {
			if err := h.js.DeleteConsumer(ctx, stream, topology.ProcessorConsumerName(part)); err != nil {
				t.Fatalf("delete partition %d's consumer: %v", part, err)
			}
		}
		h.publishRaw(t, "after", auditEvent(2, "ResponseComplete"))
		h.waitFor(t, topology.EventsStream, 2)
	})
	if left := h.count(t, stream); left != 0 {
		t.Errorf("%d raw records left unconsumed", left)
	}
}
