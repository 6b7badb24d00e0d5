package sink_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

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
