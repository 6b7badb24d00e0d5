package detect

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// normalizedEvents normalizes recs once, each into its own Event, so the
// latency benchmark times detection alone.
func normalizedEvents(b *testing.B, recs []rawRecord) []schemas.Event {
	norm := benchNormalizer(b)
	var out []schemas.Event
	for _, r := range recs {
		rec := normalize.Record{Source: r.source, Data: r.data}
		ev := new(schemas.Event)
		_ = norm.NormalizeEach(&rec, ev, func(e *schemas.Event, err error) error {
			if err == nil {
				out = append(out, *e)
			}
			return nil
		})
	}
	if len(out) == 0 {
		b.Fatal("no event normalized")
	}
	return out
}

// eventFeed hands out the events in a loop, each pass shifted later in
// event time by the span of the events plus an hour, so the watermark keeps
// moving, windows keep closing and nothing is late because of the loop.
type eventFeed struct {
	events []schemas.Event
	span   time.Duration
	i      int
	ev     schemas.Event
}

func newEventFeed(events []schemas.Event) *eventFeed {
	lo, hi := events[0].Timestamp, events[0].Timestamp
	for _, e := range events {
		if e.Timestamp.Before(lo) {
			lo = e.Timestamp
		}
		if e.Timestamp.After(hi) {
			hi = e.Timestamp
		}
	}
	return &eventFeed{events: events, span: hi.Sub(lo) + time.Hour}
}

func (f *eventFeed) next() *schemas.Event {
	pass := f.i / len(f.events)
	f.ev = f.events[f.i%len(f.events)]
	f.ev.Timestamp = f.ev.Timestamp.Add(time.Duration(pass) * f.span)
	f.i++
	return &f.ev
}

// BenchmarkDetectLatencyHalfLoad measures the latency detection adds to an
// event when events arrive at half the rate one core can detect. Time is
// the CPU clock of the thread running detection (the goroutine is locked to
// it), not the wall clock: on a machine shared with other work (this one: 2
// cores, load 20) a wall-clock schedule measures the scheduler, not the
// engine. Each event's service time — Process with its alerts built and
// encoded, as the pipeline does, GC assists included — is measured on that
// clock; a first pass gives the mean, so the maximum rate; then events are
// fed on a fixed schedule at half that rate and each event's latency is its
// wait behind the previous ones (a queue on one dedicated core, Lindley's
// recursion) plus its own service time, so a slow event delays the ones
// behind it as it would in the processor. With GOMAXPROCS ≥ 2 (-cpu 2) the
// background GC runs on another core, as in a processor given two; with
// -cpu 1 it runs on this thread and its cycles show in the tail. The engine
// runs as in the processor: watermark, allowed lateness, windows closing
// (no state store: its write is a network round trip the pipeline pays per
// correlation match, not CPU).
func BenchmarkDetectLatencyHalfLoad(b *testing.B) {
	if cpuClock() == 0 {
		b.Skip("no process CPU clock on this platform")
	}
	workloads := benchWorkloads(b)
	for _, name := range []string{"hkerma", "sample"} {
		for _, mode := range []string{"builtin", "builtin+sigmahq"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				runtime.LockOSThread() // the thread CPU clock must be this goroutine's
				defer runtime.UnlockOSThread()
				events := normalizedEvents(b, workloads[name])
				clock := events[0].Timestamp.Add(24 * time.Hour)
				eng := benchEngineClock(b, mode == "builtin+sigmahq", func() time.Time { return clock })
				feed := newEventFeed(events)
				var buf []byte
				emit := func(a *schemas.Alert) error {
					buf = a.AppendJSON(buf[:0])
					return nil
				}
				ctx := context.Background()
				// process runs one event and returns its service time.
				process := func() time.Duration {
					start := cpuClock()
					if err := eng.Process(ctx, feed.next(), emit); err != nil {
						b.Fatal(err)
					}
					if feed.i%len(events) == 0 {
						// The processor clock follows the (shifted) event
						// time: no source looks idle or ahead of it.
						clock = clock.Add(feed.span)
					}
					return cpuClock() - start
				}
				// The watermark's warm-up passes on the processor clock.
				process()
				clock = clock.Add(idleSourceAfter)
				// The maximum rate: the mean service time over at least a
				// full pass of the workload and 20 000 events.
				var busy time.Duration
				n := max(len(events), 20_000)
				for range n {
					busy += process()
				}
				interval := 2 * busy / time.Duration(n) // half load
				var (
					lat  = make([]time.Duration, 0, 1<<16)
					svc  = make([]time.Duration, 0, 1<<16)
					wait time.Duration // behind the previous events
				)
				for b.Loop() {
					s := process()
					svc = append(svc, s)
					lat = append(lat, wait+s)
					// Lindley: the next event, due one interval later,
					// waits for what this one left unfinished.
					wait = max(0, wait+s-interval)
				}
				slices.Sort(lat)
				slices.Sort(svc)
				q := func(d []time.Duration, p float64) float64 {
					return float64(d[int(p*float64(len(d)-1))].Nanoseconds()) / 1e3
				}
				b.ReportMetric(float64(n)/busy.Seconds(), "max-events/CPU-s")
				b.ReportMetric(q(lat, 0.50), "p50-µs")
				b.ReportMetric(q(lat, 0.99), "p99-µs")
				b.ReportMetric(q(lat, 0.999), "p99.9-µs")
				// The service time alone (no queueing): the tail above is
				// rare slow events (a GC assist, a cold cache after the
				// thread was descheduled) and the queue they leave.
				b.ReportMetric(q(svc, 0.99), "service-p99-µs")
			})
		}
	}
}
