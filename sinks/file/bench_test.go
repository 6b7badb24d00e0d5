package file

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
	"github.com/nats-io/nats.go/jetstream"
)

const benchEvents = 20000

// BenchmarkFileSinkVsRawConsume measures, in the same run against the same
// embedded server and the same 20,000 stored 1 KB events, the file sink fed
// by the runner (batches of 500, one ack per message, fsync per batch)
// against the ceiling: a bare pull consumer acking each message and doing
// nothing else. It reports both rates and their ratio.
func BenchmarkFileSinkVsRawConsume(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		b.Run("fsync="+strconv.FormatBool(fsync), func(b *testing.B) {
			env := sinktest.NewEnv(b)
			sinktest.Publish(b, env.JS, sinktest.Events("bench", benchEvents))
			var raw, run time.Duration
			i := 0
			for b.Loop() {
				raw += rawConsume(b, env, "raw"+strconv.Itoa(i))
				run += runFileSink(b, env, "bench"+strconv.Itoa(i), fsync)
				i++
			}
			rawRate := float64(benchEvents*i) / raw.Seconds()
			sinkRate := float64(benchEvents*i) / run.Seconds()
			b.ReportMetric(rawRate, "raw_events/s")
			b.ReportMetric(sinkRate, "sink_events/s")
			b.ReportMetric(sinkRate/rawRate, "ratio")
			b.ReportMetric(0, "ns/op") // the rates say it; per-iteration time mixes both
		})
	}
}

// rawConsume reads the events stream with a fresh consumer, acking every
// message, and returns how long the whole stream took.
func rawConsume(b *testing.B, env *sinktest.Env, name string) time.Duration {
	b.Helper()
	ctx := context.Background()
	cfg, err := topology.SinkConsumerConfig(name, topology.NewDefaultConfig().Consumers.Sink)
	if err != nil {
		b.Fatal(err)
	}
	cons, err := env.JS.CreateOrUpdateConsumer(ctx, topology.EventsStream, cfg)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	it, err := cons.Messages(jetstream.PullMaxMessages(500))
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	for range benchEvents {
		m, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Ack(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// countingSink signals when the real sink has written n records.
type countingSink struct {
	sink.Sink
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *countingSink) WriteBatch(ctx context.Context, batch []sink.Record) error {
	err := c.Sink.WriteBatch(ctx, batch)
	if err == nil && c.n.Add(int64(len(batch))) == c.want {
		close(c.done)
	}
	return err
}

// runFileSink runs the file sink under a fresh name over the events stream
// and returns how long it took to write every event.
func runFileSink(b *testing.B, env *sinktest.Env, name string, fsync bool) time.Duration {
	b.Helper()
	cfg := NewDefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.Fsync = fsync
	fs, err := New(cfg, sink.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	cs := &countingSink{Sink: fs, want: benchEvents, done: make(chan struct{})}
	rc := sink.NewDefaultRunnerConfig()
	rc.Streams = []sink.Kind{sink.KindEvents}
	r, err := sink.New(env.JS, name, cs, rc, sink.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(ctx) }()
	select {
	case <-cs.done:
	case <-time.After(time.Minute):
		b.Fatal("file sink did not write every event within a minute")
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return elapsed
}
