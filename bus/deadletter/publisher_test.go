package deadletter_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

var _ deadletter.MsgPublisher = jetstream.JetStream(nil)

// A raw record the processor rejects on its second delivery is dead-lettered
// with everything a human needs, once even if the rejection repeats, and
// reads back intact.
func TestPublishAndDecodeRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := topology.NewDefaultConfig()
	cfg.Partitions = 1 // the record below in partition 0
	cfg.Consumers.Processor.PinnedTTL = 0
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}

	subj, _ := topology.RawSubject(topology.SourceK8sAudit, "node-1", topology.KeyToken("node/node-1"))
	body := bytes.Repeat([]byte("x"), 3000)
	if _, err := js.PublishMsg(ctx, rawMsg(subj, body)); err != nil {
		t.Fatal(err)
	}
	stream, _ := topology.RawStream(topology.SourceK8sAudit)
	cc, err := topology.ProcessorConsumerConfig(topology.SourceK8sAudit, 0, cfg.Consumers.Processor)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := topology.EnsureConsumer(ctx, js, topology.ConsumerDecl{Stream: stream, Config: cc})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Nak(); err != nil {
		t.Fatal(err)
	}
	m, err = cons.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}

	pub := deadletter.NewPublisher(js, deadletter.WithMaxBody(1024))
	rec := deadletter.FromMsg(topology.ProcessorStage, m, errors.New("normalize k8s_audit: no auditID\nat line 1"))
	for range 2 { // the same rejection again (e.g. after a crash before Term) is stored once
		if err := pub.Publish(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.TermWithReason("dead-lettered"); err != nil {
		t.Fatal(err)
	}

	dlq, err := js.Stream(ctx, topology.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := dlq.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("DLQ holds %d records, want 1", n)
	}
	c, err := js.OrderedConsumer(ctx, topology.DeadLetterStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	out, err := deadletter.DecodeMsg(got)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject() != "crowsnest.dlq.processor.k8s_audit" || out.ID != "dlq-processor-audit-1-ResponseComplete" ||
		out.Stage != "processor" || out.Source != "k8s_audit" || out.DeliveryCount != 2 ||
		out.OriginalSubject != "crowsnest.raw.k8s_audit.0.node-1."+topology.KeyToken("node/node-1") || out.OriginalID != "audit-1-ResponseComplete" ||
		out.Reason != "normalize k8s_audit: no auditID at line 1" || !out.Truncated || out.OriginalSize != 3000 ||
		!bytes.Equal(out.Data, body[:1024]) || out.Header.Get(headers.Collector) != "node-1" {
		t.Fatalf("decoded %+v", out)
	}
}

func TestPublishFailsWithoutTheDLQStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	// A stream that captures the DLQ subjects but is not CROWSNEST_DLQ.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ELSEWHERE", Subjects: []string{"crowsnest.dlq.>"}}); err != nil {
		t.Fatal(err)
	}
	pub := deadletter.NewPublisher(js)
	err := pub.Publish(ctx, deadletter.Record{Stage: "processor", Source: "falco", OriginalID: "x", Reason: "r"})
	if err == nil || !strings.Contains(err.Error(), "publish dead-letter record dlq-processor-x") {
		t.Fatalf("Publish = %v, want a wrapped error", err)
	}
	s, _ := js.Stream(ctx, "ELSEWHERE")
	if s.CachedInfo().State.Msgs != 0 {
		t.Fatal("record stored in the wrong stream")
	}
}

func rawMsg(subj string, body []byte) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Header.Set(headers.MsgID, "audit-1-ResponseComplete")
	m.Header.Set(headers.Source, topology.SourceK8sAudit)
	m.Header.Set(headers.Collector, "node-1")
	m.Data = body
	return m
}
