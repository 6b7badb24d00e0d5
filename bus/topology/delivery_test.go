package topology_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// setup starts a server, ensures the topology with one partition (these
// tests are about one partition consumer's redelivery) and returns a
// JetStream handle and the raw subject of the falco collector "node-1".
func setup(t *testing.T) (context.Context, *nats.Conn, jetstream.JetStream, string) {
	t.Helper()
	ctx := testContext(t)
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	cfg := topology.NewDefaultConfig()
	cfg.Partitions = 1
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	subj, err := topology.RawSubject(topology.SourceFalco, "node-1", topology.KeyToken("node/node-1"))
	if err != nil {
		t.Fatal(err)
	}
	return ctx, nc, js, subj
}

func processorConsumer(t *testing.T, ctx context.Context, js jetstream.JetStream, s topology.ConsumerSettings) jetstream.Consumer {
	t.Helper()
	stream, err := topology.RawStream(topology.SourceFalco)
	if err != nil {
		t.Fatal(err)
	}
	s.PinnedTTL = 0 // plain pulls; pinning has its own test
	cc, err := topology.ProcessorConsumerConfig(topology.SourceFalco, 0, s)
	if err != nil {
		t.Fatal(err)
	}
	c, err := topology.EnsureConsumer(ctx, js, topology.ConsumerDecl{Stream: stream, Config: cc})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func next(t *testing.T, c jetstream.Consumer, wait time.Duration) jetstream.Msg {
	t.Helper()
	m, err := c.Next(jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return m
}

func deliveries(t *testing.T, m jetstream.Msg) uint64 {
	t.Helper()
	md, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return md.NumDelivered
}

func TestPublishWithMsgIDIsDeduplicated(t *testing.T) {
	t.Parallel()
	ctx, _, js, subj := setup(t)
	first, err := js.Publish(ctx, subj, []byte("rec"), jetstream.WithMsgID("falco-0123"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := js.Publish(ctx, subj, []byte("rec"), jetstream.WithMsgID("falco-0123"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("acks %+v then %+v: want the second marked Duplicate with the first's sequence", first, second)
	}
	if first.Stream != "CROWSNEST_RAW_FALCO" {
		t.Errorf("landed in %s", first.Stream)
	}
	s, err := js.Stream(ctx, first.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}

	// The id is remembered after the processor acked the record off the work
	// queue (until the duplicate window ends or the server restarts).
	c := processorConsumer(t, ctx, js, topology.NewDefaultConfig().Consumers.Processor)
	if err := next(t, c, 2*time.Second).DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	third, err := js.Publish(ctx, subj, []byte("rec"), jetstream.WithMsgID("falco-0123"))
	if err != nil {
		t.Fatal(err)
	}
	if !third.Duplicate {
		t.Error("republish after ack: want Duplicate within the window")
	}
}

func TestNakRedeliversWithDeliveryCount(t *testing.T) {
	t.Parallel()
	ctx, _, js, subj := setup(t)
	if _, err := js.Publish(ctx, subj, []byte("rec"), jetstream.WithMsgID("id-1")); err != nil {
		t.Fatal(err)
	}
	c := processorConsumer(t, ctx, js, topology.NewDefaultConfig().Consumers.Processor)
	m := next(t, c, 2*time.Second)
	if n := deliveries(t, m); n != 1 {
		t.Fatalf("first delivery count %d", n)
	}
	if err := m.Nak(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m = next(t, c, 2*time.Second)
	if n := deliveries(t, m); n != 2 {
		t.Fatalf("after Nak: delivery count %d, want 2", n)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Nak redelivered after %s; a plain Nak should redeliver at once", d)
	}
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
}

func TestNoAckRedeliversAfterAckWaitThenBackoff(t *testing.T) {
	ctx, _, js, subj := setup(t)
	if _, err := js.Publish(ctx, subj, []byte("rec"), jetstream.WithMsgID("id-1")); err != nil {
		t.Fatal(err)
	}
	s := topology.ConsumerSettings{AckWait: 300 * time.Millisecond, Backoff: []time.Duration{900 * time.Millisecond}, MaxDeliver: 5, MaxAckPending: 10}
	c := processorConsumer(t, ctx, js, s)

	m := next(t, c, 2*time.Second)
	t0 := time.Now()
	_ = m // not acked
	m = next(t, c, 3*time.Second)
	gap1 := time.Since(t0)
	if n := deliveries(t, m); n != 2 {
		t.Fatalf("delivery count %d, want 2", n)
	}
	t1 := time.Now()
	m = next(t, c, 3*time.Second)
	gap2 := time.Since(t1)
	if n := deliveries(t, m); n != 3 {
		t.Fatalf("delivery count %d, want 3", n)
	}
	if gap1 < 250*time.Millisecond || gap1 > 1500*time.Millisecond {
		t.Errorf("first redelivery after %s, want about ack_wait (300ms)", gap1)
	}
	if gap2 < 800*time.Millisecond {
		t.Errorf("second redelivery after %s, want about backoff[0] (900ms)", gap2)
	}
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
}

// MaxDeliver exhausted: JetStream publishes a MAX_DELIVERIES advisory, never
// delivers the message to this consumer again, and keeps it in the stream
// (a work queue deletes only on ack/term). So the processor must dead-letter
// and Term on the last delivery itself.
func TestMaxDeliverExhausted(t *testing.T) {
	t.Parallel()
	ctx, nc, js, subj := setup(t)
	advisories, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.CROWSNEST_RAW_FALCO.processor-p0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subj, []byte("poison"), jetstream.WithMsgID("id-poison")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subj, []byte("good"), jetstream.WithMsgID("id-good")); err != nil {
		t.Fatal(err)
	}
	s := topology.ConsumerSettings{AckWait: 5 * time.Second, MaxDeliver: 2, MaxAckPending: 10}
	c := processorConsumer(t, ctx, js, s)

	// Nak the poison every time, ack the good one, until nothing more comes.
	// The server notices the exhaustion when it next looks for something to
	// deliver, so the advisory follows a pull after the last Nak.
	poison, good := 0, 0
	for {
		m, err := c.Next(jetstream.FetchMaxWait(700 * time.Millisecond))
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data()) == "good" {
			good++
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		poison++
		if n := deliveries(t, m); n != uint64(poison) {
			t.Fatalf("poison delivery %d has count %d", poison, n)
		}
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	if poison != 2 || good != 1 {
		t.Fatalf("poison delivered %d times (want max_deliver=2), good %d times (want 1)", poison, good)
	}
	adv, err := advisories.NextMsg(2 * time.Second)
	if err != nil {
		t.Fatalf("no MAX_DELIVERIES advisory: %v", err)
	}
	var a struct {
		Stream     string `json:"stream"`
		Consumer   string `json:"consumer"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(adv.Data, &a); err != nil {
		t.Fatal(err)
	}
	if a.Stream != "CROWSNEST_RAW_FALCO" || a.Consumer != "processor-p0" || a.StreamSeq != 1 || a.Deliveries != 2 {
		t.Errorf("advisory = %+v", a)
	}
	stream, err := js.Stream(ctx, "CROWSNEST_RAW_FALCO")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.GetMsg(ctx, 1); err != nil {
		t.Errorf("the exhausted message should stay in the work queue: %v", err)
	}
}

func TestTermRemovesFromWorkQueue(t *testing.T) {
	t.Parallel()
	ctx, _, js, subj := setup(t)
	if _, err := js.Publish(ctx, subj, []byte("poison"), jetstream.WithMsgID("id-poison")); err != nil {
		t.Fatal(err)
	}
	c := processorConsumer(t, ctx, js, topology.NewDefaultConfig().Consumers.Processor)
	if err := next(t, c, 2*time.Second).TermWithReason("dead-lettered"); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "CROWSNEST_RAW_FALCO")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Term the work queue still holds %d messages", info.State.Msgs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWorkQueueFullPushesBack(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := topology.NewDefaultConfig()
	cfg.Raw.MaxBytes = 4 * topology.KiB
	cfg.Partitions = 1
	cfg.Consumers.Processor.PinnedTTL = 0
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	subj, _ := topology.RawSubject(topology.SourceDocker, "n1", topology.KeyToken("node/n1"))
	payload := make([]byte, 1000)
	var err error
	var stored int
	for i := range 20 {
		if _, err = js.Publish(ctx, subj, payload, jetstream.WithMsgID("id-"+string(rune('a'+i)))); err != nil {
			break
		}
		stored++
	}
	if err == nil {
		t.Fatal("publishing 20 KB into a 4 KiB raw stream never failed; want discard=new to refuse")
	}
	if stored == 0 || stored >= 20 {
		t.Fatalf("stored %d before refusal", stored)
	}
	// Processing frees room: after acking one, a publish succeeds again.
	stream, _ := topology.RawStream(topology.SourceDocker)
	cc, err := topology.ProcessorConsumerConfig(topology.SourceDocker, 0, cfg.Consumers.Processor)
	if err != nil {
		t.Fatal(err)
	}
	c, err := topology.EnsureConsumer(ctx, js, topology.ConsumerDecl{Stream: stream, Config: cc})
	if err != nil {
		t.Fatal(err)
	}
	if err := next(t, c, 2*time.Second).DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, subj, payload, jetstream.WithMsgID("id-after")); err != nil {
		t.Fatalf("publish after the processor freed room: %v", err)
	}
}

func TestSinkConsumersReadEventsAndAlerts(t *testing.T) {
	t.Parallel()
	ctx, _, js, _ := setup(t)
	ev, _ := topology.EventSubject(topology.SourceK8sAudit)
	al, _ := topology.AlertSubject("high")
	if _, err := js.Publish(ctx, ev, []byte(`{"event":1}`), jetstream.WithMsgID("e1")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, al, []byte(`{"alert":1}`), jetstream.WithMsgID("a1")); err != nil {
		t.Fatal(err)
	}
	decls, err := topology.SinkConsumers("file", topology.NewDefaultConfig().Consumers.Sink)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range decls {
		c, err := topology.EnsureConsumer(ctx, js, d)
		if err != nil {
			t.Fatal(err)
		}
		if c.CachedInfo().Name != "sink-file" {
			t.Errorf("consumer name %s", c.CachedInfo().Name)
		}
		m := next(t, c, 2*time.Second)
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		// Events and alerts are retained after the sink acked: another sink
		// (or a replay) can still read them.
		s, err := js.Stream(ctx, d.Stream)
		if err != nil {
			t.Fatal(err)
		}
		if s.CachedInfo().State.Msgs != 1 {
			t.Errorf("%s holds %d messages after ack, want 1", d.Stream, s.CachedInfo().State.Msgs)
		}
		// Ensuring the consumer again is a no-op.
		if _, err := topology.EnsureConsumer(ctx, js, d); err != nil {
			t.Errorf("EnsureConsumer again: %v", err)
		}
	}
}
