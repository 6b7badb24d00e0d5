package sink_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
	"github.com/crowsnest-siem/crowsnest/sinks/file"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// recordingSink passes batches to a real sink and records their sizes.
type recordingSink struct {
	sink.Sink
	mu     sync.Mutex
	sizes  []int
	bytes  []int
	closed int
}

func (r *recordingSink) WriteBatch(ctx context.Context, batch []sink.Record) error {
	n := 0
	for _, rec := range batch {
		n += len(rec.Data)
	}
	r.mu.Lock()
	r.sizes = append(r.sizes, len(batch))
	r.bytes = append(r.bytes, n)
	r.mu.Unlock()
	return r.Sink.WriteBatch(ctx, batch)
}

func (r *recordingSink) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.sizes {
		n += s
	}
	return n
}

// waitWritten waits until rec has passed n records to the real sink and the
// consumer of name holds none unacknowledged.
func waitWritten(t *testing.T, env *sinktest.Env, rec *recordingSink, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if rec.total() >= n {
			if info := env.ConsumerInfo(t, name, sink.KindEvents); info != nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records written", rec.total(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *recordingSink) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed++
	r.mu.Unlock()
	return r.Sink.Close(ctx)
}

func newFileSink(t *testing.T) sink.Sink {
	t.Helper()
	cfg := file.NewDefaultConfig()
	cfg.Dir = t.TempDir()
	s, err := file.New(cfg, sink.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func runUntilSettled(t *testing.T, env *sinktest.Env, r *sink.Runner, name string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	env.WaitSettled(t, name, 20*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunnerBatchLimits(t *testing.T) {
	env := sinktest.NewEnv(t)
	msgs := sinktest.Events("lim", 200)
	sinktest.Publish(t, env.JS, msgs)
	docSize := len(msgs[0].Data)

	rec := &recordingSink{Sink: newFileSink(t)}
	cfg := sinktest.RunnerConfig()
	cfg.Streams = []sink.Kind{sink.KindEvents}
	cfg.MaxBatchEvents = 30
	cfg.MaxBatchBytes = 5 * 1024 * 1024
	r, err := sink.New(env.JS, "limits", rec, cfg, sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitWritten(t, env, rec, "limits", 200)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range rec.sizes {
		if n > 30 {
			t.Errorf("batch of %d records, max_batch_events is 30", n)
		}
		total += n
	}
	if total != 200 {
		t.Errorf("%d records written, want 200", total)
	}
	if rec.closed != 1 {
		t.Errorf("sink closed %d times, want once", rec.closed)
	}

	// By bytes: 5 documents per batch at most.
	env2 := sinktest.NewEnv(t)
	sinktest.Publish(t, env2.JS, sinktest.Events("bytes", 40))
	rec2 := &recordingSink{Sink: newFileSink(t)}
	cfg.MaxBatchBytes = topology.ByteSize(5*docSize + docSize/2)
	r2, err := sink.New(env2.JS, "bytes", rec2, cfg, sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- r2.Run(ctx2) }()
	waitWritten(t, env2, rec2, "bytes", 40)
	cancel2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	for i, n := range rec2.bytes {
		if n > int(cfg.MaxBatchBytes) {
			t.Errorf("batch %d: %d bytes, max_batch_bytes is %d", i, n, cfg.MaxBatchBytes)
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				switch {
				case m.Counter != nil:
					sum += m.Counter.GetValue()
				case m.Histogram != nil:
					sum += float64(m.Histogram.GetSampleCount())
				case m.Gauge != nil:
					sum += m.Gauge.GetValue()
				}
			}
		}
	}
	return sum
}

func matches(m *dto.Metric, labels map[string]string) bool {
	for k, v := range labels {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func TestRunnerMetrics(t *testing.T) {
	env := sinktest.NewEnv(t)
	msgs := append(sinktest.Events("m", 100), sinktest.Message{Kind: sink.KindAlerts, ID: "m-bad", Data: []byte("{")})
	sinktest.Publish(t, env.JS, msgs)
	set := sinktest.Settings(t)
	reg := prometheus.NewRegistry()
	set.Metrics = reg
	r, err := sink.New(env.JS, "metrics", newFileSink(t), sinktest.RunnerConfig(), set)
	if err != nil {
		t.Fatal(err)
	}
	runUntilSettled(t, env, r, "metrics")

	comp := map[string]string{"component_kind": "sink", "component_id": "metrics"}
	if got := counter(t, reg, telemetry.MetricReceivedEvents, comp); got != 101 {
		t.Errorf("received = %v, want 101", got)
	}
	if got := counter(t, reg, telemetry.MetricSentEvents, comp); got != 100 {
		t.Errorf("sent = %v, want 100", got)
	}
	if got := counter(t, reg, telemetry.MetricDiscardedEvents, map[string]string{"component_id": "metrics", "intentional": "false"}); got != 1 {
		t.Errorf("discarded = %v, want 1 (the dead letter)", got)
	}
	if got := counter(t, reg, telemetry.MetricErrors, map[string]string{"component_id": "metrics", "error_type": "write_failed"}); got != 1 {
		t.Errorf("write_failed errors = %v, want 1", got)
	}
	if got := counter(t, reg, sink.MetricWrite, map[string]string{"sink": "metrics"}); got < 2 {
		t.Errorf("write latency observations = %v, want one per batch", got)
	}
	if got := counter(t, reg, sink.MetricBatchSize, map[string]string{"sink": "metrics"}); got < 2 {
		t.Errorf("batch size observations = %v", got)
	}
	// Two runners in one process share the registry.
	if _, err := sink.New(env.JS, "other", newFileSink(t), sinktest.RunnerConfig(), set); err != nil {
		t.Fatalf("second runner on the same registry: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	env := sinktest.NewEnv(t)
	s := newFileSink(t)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	set := sinktest.Settings(t)
	tests := []struct {
		name string
		do   func() error
		want string
	}{
		{"bad name", func() error { _, err := sink.New(env.JS, "a.b", s, sinktest.RunnerConfig(), set); return err }, "invalid subject token"},
		{"nil sink", func() error { _, err := sink.New(env.JS, "x", nil, sinktest.RunnerConfig(), set); return err }, "nil sink"},
		{"nil js", func() error { _, err := sink.New(nil, "x", s, sinktest.RunnerConfig(), set); return err }, "nil JetStream"},
		{"invalid config", func() error {
			c := sinktest.RunnerConfig()
			c.MaxBatchEvents = 0
			_, err := sink.New(env.JS, "x", s, c, set)
			return err
		}, "max_batch_events"},
		{"backoff step shorter than the keep-alive needs", func() error {
			set := sinktest.Settings(t)
			set.Consumer.Backoff = []time.Duration{500 * time.Millisecond}
			_, err := sink.New(env.JS, "x", s, sinktest.RunnerConfig(), set)
			return err
		}, "backoff[0] must be at least 1s"},
		{"batch too big for the consumer", func() error {
			c := sinktest.RunnerConfig()
			c.MaxBatchEvents = 900
			_, err := sink.New(env.JS, "x", s, c, set)
			return err
		}, "max_ack_pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	env := sinktest.NewEnv(t)
	r, err := sink.New(env.JS, "twice", newFileSink(t), sinktest.RunnerConfig(), sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Logf("first Run on a cancelled context: %v", err)
	}
	if err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("second Run = %v, want an error", err)
	}
}

// gateSink holds its first WriteBatch until open is closed.
type gateSink struct {
	sink.Sink
	open  chan struct{}
	first sync.Once
}

func (g *gateSink) WriteBatch(ctx context.Context, batch []sink.Record) error {
	var wait bool
	g.first.Do(func() { wait = true })
	if wait {
		select {
		case <-g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Sink.WriteBatch(ctx, batch)
}

// logWatch passes records to next and counts those whose message starts
// with prefix.
type logWatch struct {
	slog.Handler
	prefix string
	n      *atomic.Int64
}

func (w logWatch) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, w.prefix) {
		w.n.Add(1)
	}
	return w.Handler.Handle(ctx, r)
}

func (w logWatch) WithAttrs(as []slog.Attr) slog.Handler {
	return logWatch{w.Handler.WithAttrs(as), w.prefix, w.n}
}

func (w logWatch) WithGroup(g string) slog.Handler {
	return logWatch{w.Handler.WithGroup(g), w.prefix, w.n}
}

// A message redelivered while the runner still holds it (its ack wait ran
// out: here because the server's ack wait is shorter than the one the
// runner keeps alive for, as when a process stalls) must be held once and
// settled through its newest delivery. Settling the two deliveries apart
// Nak-s the stale one after the last one was dead-lettered and terminated:
// JetStream then redelivers past MaxDeliver, gives up on the message
// unacknowledged, and the consumer's ack floor never reaches the end.
func TestRedeliveryWhileHeldSettlesNewest(t *testing.T) {
	env := sinktest.NewEnv(t)
	const name = "held"
	var merged atomic.Int64
	set := sinktest.Settings(t)
	set.Logger = slog.New(logWatch{set.Logger.Handler(), "message redelivered while held", &merged})
	// The runner keeps messages alive for a 1-minute ack wait (every 12s);
	// the server is told 2s below, so it redelivers the batch the gate holds.
	set.Consumer = topology.ConsumerSettings{AckWait: time.Minute, MaxDeliver: 2, MaxAckPending: 1000}
	cfg := sinktest.RunnerConfig()
	cfg.Streams = []sink.Kind{sink.KindEvents}
	cfg.Retry.MaxAttempts = 1 // the gated write is the delivery's only attempt

	msgs := sinktest.Events("held", 3)
	bad := msgs[1]
	inner := sinktest.NewFaultInjectingSink(newFileSink(t)).FailRetryable(bad.ID, 1000)
	gate := &gateSink{Sink: inner, open: make(chan struct{})}
	r, err := sink.New(env.JS, name, gate, cfg, set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// Shorten the ack wait behind the runner's back, then publish.
	deadline := time.Now().Add(20 * time.Second)
	for env.ConsumerInfo(t, name, sink.KindEvents) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the runner did not create its consumer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	short := set.Consumer
	short.AckWait = 2 * time.Second
	cc, err := topology.SinkConsumerConfig(name, short)
	if err != nil {
		t.Fatal(err)
	}
	uctx, ucancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer ucancel()
	if _, err := env.JS.UpdateConsumer(uctx, sink.KindEvents.Stream(), cc); err != nil {
		t.Fatalf("shorten the ack wait: %v", err)
	}
	sinktest.Publish(t, env.JS, msgs)

	// The first delivery of all three is in the gated write; wait for the
	// second (the last: MaxDeliver 2) to reach the runner, then let the
	// write fail the bad record.
	for merged.Load() < int64(len(msgs)) {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			close(gate.open)
			t.Fatalf("%d of %d redeliveries merged into the held messages", merged.Load(), len(msgs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(gate.open)

	// Settled: the ack floor reaches the last message.
	for {
		info := env.ConsumerInfo(t, name, sink.KindEvents)
		if info.AckFloor.Stream == uint64(len(msgs)) && info.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("not settled: ack floor %d of %d, ack pending %d, redelivered %d",
				info.AckFloor.Stream, len(msgs), info.NumAckPending, info.NumRedelivered)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil // for the cleanup

	dl := env.DeadLetters(t)
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	if got := dl[0].Header.Get(headers.DeliveryCount); got != "2" {
		t.Errorf("dead letter delivery count = %q, want 2: the newest delivery decides", got)
	}
	if n := inner.Attempts(bad.ID); n != 1 {
		t.Errorf("bad record written %d times, want once: its redelivery is the held record, not a second one", n)
	}
	for _, m := range []sinktest.Message{msgs[0], msgs[2]} {
		if n := inner.Attempts(m.ID); n != 1 {
			t.Errorf("record %s written %d times, want once", m.ID, n)
		}
	}
}
