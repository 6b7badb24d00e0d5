package pipeline

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
)

// budgetFence is valid for its next budget checks, then not until the test
// makes it valid again (budget < 0: always valid). Only the consume loop
// reads it. partition.Fence is tested against real leases in
// processor/partition; this one lets the test lapse it between two
// messages of one fetched batch.
type budgetFence struct{ budget atomic.Int64 }

func (f *budgetFence) Valid() bool {
	switch b := f.budget.Load(); {
	case b < 0:
		return true
	case b == 0:
		return false
	default:
		f.budget.Add(-1)
		return true
	}
}

func (f *budgetFence) Wait(ctx context.Context) bool {
	for !f.Valid() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// fenceRig is a pipeline with one partition and n raw records waiting.
type fenceRig struct {
	js   jetstream.JetStream
	p    *Pipeline
	cons jetstream.Consumer
	raw  string
}

func newFenceRig(t *testing.T, maxDeliver, n int) *fenceRig {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	tcfg := topology.NewDefaultConfig()
	tcfg.Partitions = 1
	tcfg.Consumers.Processor.MaxDeliver = maxDeliver
	tcfg.Consumers.Processor.Backoff = nil // room for a small max_deliver
	if err := topology.Ensure(ctx, js, tcfg); err != nil {
		t.Fatal(err)
	}
	cfg := NewDefaultConfig()
	reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg.Normalize, reg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(js, norm, deadletter.NewPublisher(js), cfg, Settings{
		Sources: []string{topology.SourceK8sAudit}, Consumer: tcfg.Consumers.Processor, Partitions: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	rawStream, _ := topology.RawStream(topology.SourceK8sAudit)
	cc, err := topology.ProcessorConsumerConfig(topology.SourceK8sAudit, 0, tcfg.Consumers.Processor)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := topology.EnsureConsumer(ctx, js, topology.ConsumerDecl{Stream: rawStream, Config: cc})
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := topology.RawSubject(topology.SourceK8sAudit, "node-1", topology.KeyToken("ns/shop"))
	for i := range n {
		m := nats.NewMsg(subj)
		m.Data = fmt.Appendf(nil, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"f-%03d","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/pods","user":{"username":"u"}}`, i)
		m.Header.Set(headers.MsgID, fmt.Sprintf("f-%03d", i))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	return &fenceRig{js: js, p: p, cons: cons, raw: rawStream}
}

func (r *fenceRig) count(t *testing.T, stream string) uint64 {
	t.Helper()
	return natstest.StreamMsgs(t, r.js, stream)
}

// start runs consume until the returned stop is called; stop checks it
// returned cleanly.
func (r *fenceRig) start(t *testing.T, fence Fence) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.consume(ctx, topology.SourceK8sAudit, r.cons, fence) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("consume: %v", err)
		}
	}
}

// drain waits for the raw work queue to empty, then checks the events
// stream holds n events, none twice.
func (r *fenceRig) drain(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for r.count(t, r.raw) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got, left := r.count(t, topology.EventsStream), r.count(t, r.raw); got != uint64(n) || left != 0 {
		t.Fatalf("%d events (want %d), %d raw left", got, n, left)
	}
	seen := map[string]bool{}
	for _, id := range natstest.MsgIDs(t, r.js, topology.EventsStream, 1, uint64(n)) {
		if seen[id] {
			t.Errorf("event %s published twice", id)
		}
		seen[id] = true
	}
}

// A partition whose fence lapses mid-batch: the messages handled before
// are published and acked, the rest of the batch goes back to JetStream
// unprocessed and fetching pauses; once the fence holds again, every record
// is processed, none twice.
func TestConsumeStopsAtTheFence(t *testing.T) {
	const n, before = 50, 10
	r := newFenceRig(t, 5, n)
	var fence budgetFence
	fence.budget.Store(1 + before) // the check before the fetch, then one per message
	stop := r.start(t, &fence)
	defer stop()

	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(r.p.pm.fenced) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(r.p.pm.fenced); got != 1 {
		t.Fatalf("fence pauses = %v, want 1", got)
	}
	// The ones handled before the lapse are stored and their inputs acked
	// (asynchronously: wait for it), and then nothing more happens.
	settled := func() bool {
		return r.count(t, topology.EventsStream) == before && r.count(t, r.raw) == n-before
	}
	for !settled() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // would a paused consumer still publish?
	if events, raw := r.count(t, topology.EventsStream), r.count(t, r.raw); events != before || raw != n-before {
		t.Fatalf("with the fence lapsed: %d events, %d raw left; want the %d handled before it stored and %d handed back", events, raw, before, n-before)
	}
	fence.budget.Store(-1)
	r.drain(t, n)
}

// A message on its last delivery is processed even past the fence: handed
// back, no one would ever be given it again.
func TestConsumePastTheFenceOnLastDelivery(t *testing.T) {
	const n = 20
	r := newFenceRig(t, 2, n)
	var fence budgetFence
	fence.budget.Store(1) // the first fetch only: every message handed back
	stop := r.start(t, &fence)
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(r.p.pm.fenced) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := r.count(t, topology.EventsStream); got != 0 {
		t.Fatalf("%d events published past the fence on a first delivery", got)
	}
	fence.budget.Store(1) // one more fetch; their second, last delivery comes in it
	r.drain(t, n)
}
