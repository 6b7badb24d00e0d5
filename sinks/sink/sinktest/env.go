package sinktest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Env is an embedded JetStream with the crowsnest streams, for one test.
type Env struct {
	Server *embedded.Server
	NC     *nats.Conn
	JS     jetstream.JetStream
}

// NewEnv starts a server on a random port with the topology ensured. It is
// shut down when the test ends.
func NewEnv(tb testing.TB) *Env {
	tb.Helper()
	srv := natstest.Start(tb)
	nc, js := natstest.Connect(tb, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, js, topology.NewDefaultConfig()); err != nil {
		tb.Fatalf("ensure topology: %v", err)
	}
	return &Env{Server: srv, NC: nc, JS: js}
}

// Connect opens another connection to the server (a runner's own, which a
// test may kill), closed when the test ends.
func (e *Env) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	return natstest.Connect(tb, e.Server)
}

// RunnerConfig is a runner config for tests: small batches, short pauses.
func RunnerConfig() sink.RunnerConfig {
	c := sink.NewDefaultRunnerConfig()
	c.MaxBatchEvents = 50
	c.FlushInterval = 20 * time.Millisecond
	c.DrainTimeout = 10 * time.Second
	c.StatusInterval = 100 * time.Millisecond
	c.Retry = sink.RetryConfig{
		MaxAttempts:        3,
		InitialBackoff:     5 * time.Millisecond,
		MaxBackoff:         20 * time.Millisecond,
		RedeliveryDelay:    50 * time.Millisecond,
		MaxRedeliveryDelay: 200 * time.Millisecond,
	}
	return c
}

// AckWait is the consumers' ack wait in the suite. Tests run in parallel
// with the race detector on busy machines, where a process can stall for a
// second or more: a shorter ack wait makes JetStream redeliver under a
// healthy runner and turns delivery-count checks into coin flips. A test that
// needs a quick redelivery (a crash) sets its own.
const AckWait = 5 * time.Second

// Settings returns settings for tests: warnings logged to the test, a
// private metrics registry, and a consumer with ack wait AckWait.
func Settings(tb testing.TB) sink.Settings {
	return sink.Settings{
		Logger:  slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Metrics: prometheus.NewRegistry(),
		DataDir: tb.TempDir(),
		Consumer: topology.ConsumerSettings{
			AckWait:       AckWait,
			MaxDeliver:    -1,
			MaxAckPending: 1000,
		},
	}
}

// infoTimeout bounds the suite's reads of consumer and stream info: generous,
// since a loaded machine answers slowly and a timeout fails the test.
const infoTimeout = 15 * time.Second

// ConsumerInfo returns the info of sink name's consumer on the stream of k,
// or nil when the runner has not created it yet.
func (e *Env) ConsumerInfo(tb testing.TB, name string, k sink.Kind) *jetstream.ConsumerInfo {
	tb.Helper()
	durable, err := topology.SinkConsumerName(name)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), infoTimeout)
	defer cancel()
	c, err := e.JS.Consumer(ctx, k.Stream(), durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		tb.Fatalf("consumer %s on %s: %v", durable, k.Stream(), err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		tb.Fatalf("consumer %s on %s: %v", durable, k.Stream(), err)
	}
	return info
}

// WaitSettled waits until sink name's consumers exist and their ack floors
// have reached the end of both streams (every message acked or terminated),
// or fails the test after timeout.
func (e *Env) WaitSettled(tb testing.TB, name string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		settled, state := true, ""
		for _, k := range sink.Kinds() {
			info := e.ConsumerInfo(tb, name, k)
			if info == nil {
				settled = false
				state += " " + k.String() + ": no consumer yet;"
				continue
			}
			if last := e.lastSeq(tb, k); info.NumPending != 0 || info.NumAckPending != 0 || info.AckFloor.Stream < last {
				settled = false
				// An ack floor short of the end with nothing pending is a
				// message JetStream gave up on (past MaxDeliver) unsettled.
				state += fmt.Sprintf(" %s: pending %d, ack pending %d, redelivered %d, ack floor %d of %d;",
					k, info.NumPending, info.NumAckPending, info.NumRedelivered, info.AckFloor.Stream, last)
			}
		}
		if settled {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sink %s not settled after %s:%s", name, timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lastSeq is the sequence of the last message in the stream of k.
func (e *Env) lastSeq(tb testing.TB, k sink.Kind) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), infoTimeout)
	defer cancel()
	s, err := e.JS.Stream(ctx, k.Stream())
	if err != nil {
		tb.Fatalf("stream %s: %v", k.Stream(), err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatalf("stream %s: %v", k.Stream(), err)
	}
	return info.State.LastSeq
}

// DeadLetters returns every message of the dead-letter stream, oldest first.
func (e *Env) DeadLetters(tb testing.TB) []*jetstream.RawStreamMsg {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), infoTimeout)
	defer cancel()
	s, err := e.JS.Stream(ctx, topology.DeadLetterStream)
	if err != nil {
		tb.Fatalf("dead-letter stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatalf("dead-letter stream info: %v", err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			tb.Fatalf("dead letter %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}
