//go:build unix

package busbench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

const (
	eventSize  = 1024 // a typical audit or Falco event, bytes
	maxPending = 4096 // bounded in-flight async publishes, as collectors/publish should use
	fetchBatch = 500  // pull batch for consumption
)

// env is a server with the crowsnest topology and a JetStream handle whose
// async publishing is bounded and counts failures.
type env struct {
	js      jetstream.JetStream
	asyncEr *atomic.Int64
}

func newEnv(b *testing.B) env {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := new(atomic.Int64)
	opts := []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { errs.Add(1) }),
	}
	var js jetstream.JetStream
	if url := os.Getenv("CROWSNEST_BENCH_NATS_URL"); url != "" {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		if js, err = jetstream.New(nc, opts...); err != nil {
			b.Fatal(err)
		}
		for _, s := range topology.Streams(topology.NewDefaultConfig()) {
			if err := js.DeleteStream(ctx, s.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				b.Fatal(err)
			}
		}
	} else {
		_, js = natstest.Connect(b, natstest.Start(b), opts...)
	}
	cfg := topology.NewDefaultConfig()
	// Room for the largest run without discard=new refusing publishes.
	cfg.Raw.MaxBytes = 4 * topology.GiB
	cfg.Events.MaxBytes = 4 * topology.GiB
	cfg.Partitions = 1 // one consumer reads the raw stream
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		b.Fatal(err)
	}
	return env{js: js, asyncEr: errs}
}

func payload(n int) []byte {
	p := bytes.Repeat([]byte("x"), n)
	p[0] = '{'
	p[n-1] = '}'
	return p
}

// publishAsync publishes msgs messages built by mk with bounded in-flight and
// waits until every one is acked.
func (e env) publishAsync(b *testing.B, msgs int, mk func(i int) *nats.Msg) {
	b.Helper()
	stall := jetstream.WithStallWait(10 * time.Second)
	for i := range msgs {
		if _, err := e.js.PublishMsgAsync(mk(i), stall); err != nil {
			b.Fatalf("publish %d: %v", i, err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatal("async publishes not acked within 60s")
	}
	if n := e.asyncEr.Load(); n > 0 {
		b.Fatalf("%d async publishes failed", n)
	}
}

// cpuClock measures the process's CPU time (user + system), which includes
// the embedded server. Events per CPU-second is steadier than events per
// second on a shared machine, and it is what decides how many cores a
// deployment needs.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{start: cpuTime()} }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report records events/s over the timed section and, when measurable,
// events per CPU-second.
func report(b *testing.B, events int, cpu cpuClock) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if used := cpuTime() - cpu.start; used > 0 {
		b.ReportMetric(float64(events)/used.Seconds(), "events/cpu-s")
	}
}

// (a) One event per message, the natural identity as Nats-Msg-Id: what the
// contracts rely on. "no-msg-id" shows what the dedup bookkeeping costs.
func BenchmarkPublishPerEvent(b *testing.B) {
	for _, withID := range []bool{true, false} {
		name := "msg-id"
		if !withID {
			name = "no-msg-id"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			subj, _ := topology.RawSubject(topology.SourceK8sAudit, "bench", topology.KeyToken("bench"))
			data := payload(eventSize)
			b.SetBytes(eventSize)
			b.ResetTimer()
			cpu := startCPU()
			e.publishAsync(b, b.N, func(i int) *nats.Msg {
				m := nats.NewMsg(subj)
				m.Data = data
				if withID {
					m.Header.Set(headers.MsgID, "ev-"+strconv.Itoa(i))
				}
				return m
			})
			b.StopTimer()
			report(b, b.N, cpu)
		})
	}
}

// (b) N events per message, newline-joined, one id per batch. b.N counts
// events.
func BenchmarkPublishBatched(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		b.Run("events-per-msg="+strconv.Itoa(n), func(b *testing.B) {
			e := newEnv(b)
			subj, _ := topology.RawSubject(topology.SourceK8sAudit, "bench", topology.KeyToken("bench"))
			ev := payload(eventSize - 1)
			batch := bytes.Join(repeat(ev, n), []byte("\n"))
			msgs := (b.N + n - 1) / n
			b.SetBytes(eventSize)
			b.ResetTimer()
			cpu := startCPU()
			e.publishAsync(b, msgs, func(i int) *nats.Msg {
				m := nats.NewMsg(subj)
				m.Data = batch
				m.Header.Set(headers.MsgID, "batch-"+strconv.Itoa(i))
				return m
			})
			b.StopTimer()
			report(b, msgs*n, cpu)
		})
	}
}

func repeat(p []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = p
	}
	return out
}

// (c) Pull consumption of prefilled streams, fetch batches of 500:
//   - explicit-ack: one Ack per message (the processor's and sinks' contract:
//     per-record outcomes), on the events stream and on a raw work queue
//     (where the ack also deletes);
//   - ack-all: one cumulative Ack per fetched batch (AckAll policy; events
//     stream only, JetStream refuses AckAll on a work queue);
//   - explicit-ack with 100 events per message;
//   - the raw work queue through a pinned priority group (pinned_ttl set):
//     what pinning costs the processor's consumption.
func BenchmarkConsume(b *testing.B) {
	cases := []struct {
		name   string
		raw    bool
		ackAll bool
		perMsg int
		pinned bool
	}{
		{"explicit-ack/events", false, false, 1, false},
		{"explicit-ack/raw-workqueue", true, false, 1, false},
		{"explicit-ack/raw-workqueue/pinned", true, false, 1, true},
		{"ack-all-per-batch/events", false, true, 1, false},
		{"explicit-ack/events/events-per-msg=100", false, false, 100, false},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			var subj, stream string
			if tc.raw {
				subj, _ = topology.RawSubject(topology.SourceFalco, "bench", topology.KeyToken("bench"))
				stream, _ = topology.RawStream(topology.SourceFalco)
			} else {
				subj, _ = topology.EventSubject(topology.SourceFalco)
				stream = topology.EventsStream
			}
			data := payload(eventSize)
			if tc.perMsg > 1 {
				data = bytes.Join(repeat(payload(eventSize-1), tc.perMsg), []byte("\n"))
			}
			msgs := (b.N + tc.perMsg - 1) / tc.perMsg
			e.publishAsync(b, msgs, func(i int) *nats.Msg {
				m := nats.NewMsg(subj)
				m.Data = data
				m.Header.Set(headers.MsgID, "c-"+strconv.Itoa(i))
				return m
			})

			settings := topology.NewDefaultConfig().Consumers.Processor
			settings.MaxAckPending = 10 * fetchBatch
			settings.PinnedTTL = 0
			fetchOpts := []jetstream.FetchOpt{jetstream.FetchMaxWait(5 * time.Second), jetstream.FetchHeartbeat(time.Second)}
			if tc.pinned {
				settings.PinnedTTL = 10 * time.Second
				fetchOpts = append(fetchOpts, jetstream.FetchPriorityGroup(topology.ProcessorPriorityGroup))
			}
			// Every record has one key: partition 0 of a one-partition stream
			// is where the consumer finds them (newEnv ensures one partition).
			cc, _ := topology.ProcessorConsumerConfig(topology.SourceFalco, 0, settings)
			if !tc.raw {
				cc.FilterSubject = ""
			}
			if tc.ackAll {
				cc.AckPolicy = jetstream.AckAllPolicy
			}
			cons, err := topology.EnsureConsumer(ctx, e.js, topology.ConsumerDecl{Stream: stream, Config: cc})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(eventSize)
			b.ResetTimer()
			cpu := startCPU()
			got := 0
			for got < msgs {
				// Ask for no more than remain: Fetch waits out FetchMaxWait for a
				// short batch. The heartbeat ends a fetch whose request or expiry
				// notice the server lost (seen on a starved standalone server);
				// without it the batch can wait forever.
				batch, err := cons.Fetch(min(fetchBatch, msgs-got), fetchOpts...)
				if err != nil {
					b.Fatal(err)
				}
				var last jetstream.Msg
				for m := range batch.Messages() {
					got++
					if tc.ackAll {
						last = m
						continue
					}
					if err := m.Ack(); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoHeartbeat) {
					b.Fatal(err)
				}
				if last != nil {
					if err := last.Ack(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			report(b, msgs*tc.perMsg, cpu)
		})
	}
}
