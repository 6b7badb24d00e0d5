package authz_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// lockedBuffer collects a connection's log, where natsconn reports the
// server's asynchronous errors (permission violations among them).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (b *bus) connectLogged(t *testing.T, id authz.Identity) (jetstream.JetStream, *lockedBuffer) {
	t.Helper()
	var log lockedBuffer
	cfg := natsconn.NewDefaultConfig()
	cfg.URL = b.srv.ClientURL()
	cfg.Name = id.Name()
	cfg.NKeyFile = authz.SeedFile(b.seeds, id)
	cfg.InboxPrefix = id.InboxPrefix()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := natsconn.Connect(ctx, cfg, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatalf("%s: connect: %v", id.Name(), err)
	}
	t.Cleanup(nc.Close)
	t.Cleanup(func() {
		if s := log.String(); strings.Contains(strings.ToLower(s), "violation") {
			t.Errorf("%s: the server refused something the identity needs:\n%s", id.Name(), s)
		}
	})
	return js, &log
}

// TestIdentitiesDoTheirJobs runs each stage's JetStream calls, the ones the
// collector's publish.Publisher, the processor's pipeline and membership,
// and sink.Runner make, as that stage's identity, end to end: a record
// published by a collector is consumed by the processor, which writes an
// event, an alert, a dead-letter and state; a sink consumes both and
// dead-letters one. Any permission the generator forgot fails a call here or
// shows as a violation in the connection's log.
func TestIdentitiesDoTheirJobs(t *testing.T) {
	b := startBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	settings := topology.NewDefaultConfig().Consumers
	// Pinning is off by default; on, the processor also pulls through the
	// priority group and unpins: its permissions must allow both.
	settings.Processor.PinnedTTL = 10 * time.Second

	// Collector: async publish with a message id (publish.Publisher).
	cjs, _ := b.connectLogged(t, collector1)
	subj, _ := topology.RawSubject(topology.SourceK8sAudit, "node1", "pod-a")
	msg := &nats.Msg{Subject: subj, Header: nats.Header{}, Data: []byte(`{"kind":"Event"}`)}
	msg.Header.Set(nats.MsgIdHdr, "rec-1")
	f, err := cjs.PublishMsgAsync(msg)
	if err != nil {
		t.Fatalf("collector: publish: %v", err)
	}
	select {
	case ack := <-f.Ok():
		if ack.Stream != "CROWSNEST_RAW_K8S_AUDIT" {
			t.Fatalf("collector: stored in %s", ack.Stream)
		}
	case err := <-f.Err():
		t.Fatalf("collector: publish ack: %v", err)
	case <-ctx.Done():
		t.Fatal("collector: no publish ack")
	}
	dlq := deadletter.NewPublisher(cjs)
	if err := dlq.Publish(ctx, deadletter.Record{Stage: topology.CollectorStage, Collector: "node1", Source: topology.SourceK8sAudit, Reason: "too big", Data: []byte("x")}); err != nil {
		t.Fatalf("collector: dead-letter: %v", err)
	}

	// Processor: bind the raw stream, ensure and read its partition
	// consumers through the pinned group, unpin, keep state, publish.
	pjs, _ := b.connectLogged(t, processor)
	if err := topology.Verify(ctx, pjs, topology.NewDefaultConfig(), topology.ProcessorStreams()); err != nil {
		t.Fatalf("processor: verify topology: %v", err)
	}
	raw, err := pjs.Stream(ctx, "CROWSNEST_RAW_K8S_AUDIT")
	if err != nil {
		t.Fatalf("processor: stream info: %v", err)
	}
	got := 0
	for part := range topology.DefaultPartitions {
		cc, err := topology.ProcessorConsumerConfig(topology.SourceK8sAudit, part, settings.Processor)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := topology.EnsureConsumer(ctx, pjs, topology.ConsumerDecl{Stream: "CROWSNEST_RAW_K8S_AUDIT", Config: cc}); err != nil {
			t.Fatalf("processor: ensure consumer p%d: %v", part, err)
		}
		cons, err := pjs.Consumer(ctx, "CROWSNEST_RAW_K8S_AUDIT", topology.ProcessorConsumerName(part))
		if err != nil {
			t.Fatalf("processor: consumer p%d: %v", part, err)
		}
		opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(300 * time.Millisecond)}
		if settings.Processor.PinnedTTL > 0 {
			opts = append(opts, jetstream.FetchPriorityGroup(topology.ProcessorPriorityGroup))
		}
		batch, err := cons.Fetch(10, opts...)
		if err != nil {
			t.Fatalf("processor: fetch p%d: %v", part, err)
		}
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("processor: ack: %v", err)
			}
			got++
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("processor: fetch p%d: %v", part, err)
		}
		if settings.Processor.PinnedTTL > 0 {
			if err := raw.UnpinConsumer(ctx, topology.ProcessorConsumerName(part), topology.ProcessorPriorityGroup); err != nil {
				t.Fatalf("processor: unpin p%d: %v", part, err)
			}
		}
	}
	if got != 1 {
		t.Fatalf("processor: read %d raw records, want 1", got)
	}
	state, err := pjs.KeyValue(ctx, topology.StateBucket)
	if err != nil {
		t.Fatalf("processor: state bucket: %v", err)
	}
	if _, err := pjs.Stream(ctx, topology.StateBucketStream); err != nil {
		t.Fatalf("processor: state stream: %v", err)
	}
	if _, err := state.Put(ctx, "window.rule1", []byte("3")); err != nil {
		t.Fatalf("processor: state put: %v", err)
	}
	if e, err := state.Get(ctx, "window.rule1"); err != nil || string(e.Value()) != "3" {
		t.Fatalf("processor: state get: %v", err)
	}
	members, err := pjs.CreateOrUpdateKeyValue(ctx, topology.ProcessorsBucketConfig(30*time.Second))
	if err != nil {
		t.Fatalf("processor: membership bucket: %v", err)
	}
	w, err := members.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatalf("processor: watch members: %v", err)
	}
	if _, err := members.Put(ctx, "replica-1", []byte("0,1")); err != nil {
		t.Fatalf("processor: lease: %v", err)
	}
	select {
	case e := <-w.Updates():
		if e == nil || e.Key() != "replica-1" {
			t.Fatalf("processor: watch: got %v", e)
		}
	case <-ctx.Done():
		t.Fatal("processor: watch saw no update")
	}
	if err := w.Stop(); err != nil {
		t.Fatalf("processor: stop watch: %v", err)
	}
	if _, err := members.Keys(ctx); err != nil {
		t.Fatalf("processor: list members: %v", err)
	}
	ev, _ := topology.EventSubject(topology.SourceK8sAudit)
	al, _ := topology.AlertSubject("high")
	for _, s := range []string{ev, al} {
		if _, err := pjs.Publish(ctx, s, []byte(`{"id":"e1"}`)); err != nil {
			t.Fatalf("processor: publish %s: %v", s, err)
		}
	}
	if err := deadletter.NewPublisher(pjs).Publish(ctx, deadletter.Record{Stage: topology.ProcessorStage, Source: topology.SourceK8sAudit, Reason: "unparsable", Data: []byte("x")}); err != nil {
		t.Fatalf("processor: dead-letter: %v", err)
	}

	// Sink: ensure its own consumers (sink.Runner.Start), consume both
	// streams, ack one, dead-letter the other.
	sjs, _ := b.connectLogged(t, sinkCH)
	if err := topology.Verify(ctx, sjs, topology.NewDefaultConfig(), topology.SinkStreams()); err != nil {
		t.Fatalf("sink: verify topology: %v", err)
	}
	decls, err := topology.SinkConsumers("ch", settings.Sink)
	if err != nil {
		t.Fatal(err)
	}
	sinkDLQ := deadletter.NewPublisher(sjs)
	for _, d := range decls {
		cons, err := topology.EnsureConsumer(ctx, sjs, d)
		if err != nil {
			t.Fatalf("sink: ensure %s: %v", d.Stream, err)
		}
		if _, err := sjs.Consumer(ctx, d.Stream, d.Config.Durable); err != nil {
			t.Fatalf("sink: consumer info %s: %v", d.Stream, err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(10))
		if err != nil {
			t.Fatalf("sink: consume %s: %v", d.Stream, err)
		}
		m, err := it.Next()
		if err != nil {
			t.Fatalf("sink: next on %s: %v", d.Stream, err)
		}
		if err := m.InProgress(); err != nil {
			t.Fatalf("sink: in progress: %v", err)
		}
		if d.Stream == topology.AlertsStream {
			if err := sinkDLQ.Publish(ctx, deadletter.Record{Stage: "sink-ch", Source: topology.SourceK8sAudit, OriginalSubject: m.Subject(), Reason: "mapping", Data: m.Data()}); err != nil {
				t.Fatalf("sink: dead-letter: %v", err)
			}
			if err := m.TermWithReason("dead-lettered"); err != nil {
				t.Fatalf("sink: term: %v", err)
			}
		} else if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("sink: ack: %v", err)
		}
		it.Stop()
	}

	// The admin sees the outcome: three dead-letters, nothing left pending.
	_, ajs := b.connect(t, admin)
	s, err := ajs.Stream(ctx, topology.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 3 {
		t.Errorf("dead-letter stream holds %d records, want 3 (collector, processor, sink)", n)
	}
	if _, err := ajs.Stream(ctx, "CROWSNEST_RAW_K8S_AUDIT"); err != nil {
		t.Fatal(err)
	}
	if raw, _ := ajs.Stream(ctx, "CROWSNEST_RAW_K8S_AUDIT"); raw.CachedInfo().State.Msgs != 0 {
		t.Errorf("raw stream still holds %d records after the processor acked", raw.CachedInfo().State.Msgs)
	}
}
