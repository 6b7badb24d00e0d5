package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/enrich"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// The bundled replay sample: 92 Kubernetes audit records (~970 B, request
// objects, annotations), the same file the detection benchmarks read.
const ratioSample = "../../collectors/replay/samples/k8s_audit.jsonl"

// ratioRecords is how many raw records each variant consumes per iteration.
const ratioRecords = 20000

// The raw ceiling's streams: copies of the raw work queue's and the events
// stream's configuration under other names, so both variants write to
// streams kept the same way (file storage, same limits and dedup window).
const (
	ceilingRawStream    = "BENCH_CEILING_RAW"
	ceilingRawSubject   = "bench.ceiling.raw"
	ceilingEventsStream = "BENCH_CEILING_EVENTS"
	ceilingEventSubject = "bench.ceiling.events.k8s_audit"
)

// BenchmarkProcessorVsRawJetStream compares the processor (consume,
// normalize, enrich, [detect,] publish the event with its Nats-Msg-Id, ack
// the input after the PubAck) with the raw ceiling of the same delivery
// contract: a pull consumer on a work queue that publishes one message per
// input with a msg id, async with bounded in flight, and acks the input once
// its PubAck is in. The ceiling runs twice: passing each input's bytes on
// (ratio, ratio_rules), and publishing for each input a message the size of
// the event the processor makes of it — that record's event, encoded before
// the timing (ratio_same_size, ratio_rules_same_size): the same work for
// JetStream, so that ratio is the processor's own cost, not the size of the
// event.original the events must keep. Each iteration runs both ceilings,
// then the pipeline without detection, then with the built-in rules, over
// ratioRecords fresh records each, so all share the machine's noise. Rates
// are events over the span between the first and the last output's stored
// timestamps (the pipeline's start-up, consumer set-up and membership claim
// excluded); ratios are of the rates summed over all iterations.
func BenchmarkProcessorVsRawJetStream(b *testing.B) {
	sample := readSample(b)
	ctx := context.Background()
	var asyncErrs atomic.Int64
	srv := natstest.Start(b) // file storage
	_, js := natstest.Connect(b, srv,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { asyncErrs.Add(1) }))

	tcfg := topology.NewDefaultConfig()
	tcfg.Partitions = 1 // one consumer per variant: the ceiling has one too
	tcfg.Raw.MaxBytes = 4 * topology.GiB
	tcfg.Events.MaxBytes = 4 * topology.GiB
	if err := topology.Ensure(ctx, js, tcfg); err != nil {
		b.Fatal(err)
	}
	ceilingCons := ensureCeilingStreams(b, js, tcfg)

	newRun := func(detect bool) func(context.Context) error {
		cfg := pipeline.NewDefaultConfig()
		cfg.Detect.Enabled = detect // the built-in pack, the default rules
		reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
		if err != nil {
			b.Fatal(err)
		}
		norm, err := normalize.New(cfg.Normalize, reg)
		if err != nil {
			b.Fatal(err)
		}
		p, err := pipeline.New(js, norm, deadletter.NewPublisher(js), cfg, pipeline.Settings{
			Sources:    []string{topology.SourceK8sAudit},
			Consumer:   tcfg.Consumers.Processor,
			Partitions: 1,
		})
		if err != nil {
			b.Fatal(err)
		}
		return p.Run
	}
	runPlain, runDetect := newRun(false), newRun(true)
	cfg := pipeline.NewDefaultConfig()
	events := sampleEvents(b, sample)
	passThrough := func(msg jetstream.Msg) ([]byte, error) { return msg.Data(), nil }
	sameSize := func(msg jetstream.Msg) ([]byte, error) {
		i, err := sampleIndex(msg.Headers().Get(headers.MsgID), len(events))
		return events[i], err
	}

	var ceil, ceilSized, plain, withRules throughput
	var alerts uint64
	b.ResetTimer()
	for iter := range b.N {
		// (a) the raw ceilings: the inputs' bytes, then events' sizes.
		for _, v := range []struct {
			payload func(jetstream.Msg) ([]byte, error)
			into    *throughput
			tag     string
		}{{passThrough, &ceil, "c"}, {sameSize, &ceilSized, "s"}} {
			preload(b, js, &asyncErrs, ceilingRawSubject, sample, fmt.Sprintf("%s%d", v.tag, iter))
			measureOutputs(b, js, ceilingEventsStream, v.into, func() {
				if err := relay(ctx, js, ceilingCons, ratioRecords, cfg.FetchBatch, cfg.MaxInFlight, v.payload); err != nil {
					b.Fatal(err)
				}
			})
		}
		// (b) the pipeline, detection off, then the built-in rules.
		rawSubj, err := topology.RawSubject(topology.SourceK8sAudit, "bench", topology.KeyToken("bench"))
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range []struct {
			run  func(context.Context) error
			into *throughput
			tag  string
		}{{runPlain, &plain, "p"}, {runDetect, &withRules, "d"}} {
			alertsBefore := streamState(b, js, topology.AlertsStream).Msgs
			preload(b, js, &asyncErrs, rawSubj, sample, fmt.Sprintf("%s%d", v.tag, iter))
			measureOutputs(b, js, topology.EventsStream, v.into, func() { runUntilDrained(b, v.run, js) })
			if v.tag == "d" {
				alerts += streamState(b, js, topology.AlertsStream).Msgs - alertsBefore
			}
		}
		if dl := streamState(b, js, topology.DeadLetterStream).Msgs; dl != 0 {
			b.Fatalf("%d records dead-lettered: the sample must normalize cleanly", dl)
		}
	}
	b.StopTimer()
	b.ReportMetric(ceil.rate(), "raw-events/s")
	b.ReportMetric(ceilSized.rate(), "raw-same-size-events/s")
	b.ReportMetric(plain.rate(), "pipeline-events/s")
	b.ReportMetric(withRules.rate(), "pipeline+rules-events/s")
	b.ReportMetric(plain.rate()/ceil.rate(), "ratio")
	b.ReportMetric(withRules.rate()/ceil.rate(), "ratio_rules")
	b.ReportMetric(plain.rate()/ceilSized.rate(), "ratio_same_size")
	b.ReportMetric(withRules.rate()/ceilSized.rate(), "ratio_rules_same_size")
	b.ReportMetric(float64(alerts)/float64(withRules.events), "alerts/event")
	b.ReportMetric(ceil.bytesPerEvent(), "raw-out-B/event")
	b.ReportMetric(ceilSized.bytesPerEvent(), "raw-same-size-out-B/event")
	b.ReportMetric(plain.bytesPerEvent(), "pipeline-out-B/event")
	// Process-wide (server included), per output, each variant's run only.
	b.ReportMetric(ceil.cpuPerEvent(), "raw-CPU-us/event")
	b.ReportMetric(ceilSized.cpuPerEvent(), "raw-same-size-CPU-us/event")
	b.ReportMetric(plain.cpuPerEvent(), "pipeline-CPU-us/event")
	b.ReportMetric(withRules.cpuPerEvent(), "pipeline+rules-CPU-us/event")
	b.ReportMetric(ceil.allocsPerEvent(), "raw-allocs/event")
	b.ReportMetric(ceilSized.allocsPerEvent(), "raw-same-size-allocs/event")
	b.ReportMetric(plain.allocsPerEvent(), "pipeline-allocs/event")
	b.ReportMetric(withRules.allocsPerEvent(), "pipeline+rules-allocs/event")
	b.ReportMetric(ceil.allocBytesPerEvent(), "raw-alloc-B/event")
	b.ReportMetric(ceilSized.allocBytesPerEvent(), "raw-same-size-alloc-B/event")
	b.ReportMetric(plain.allocBytesPerEvent(), "pipeline-alloc-B/event")
	b.ReportMetric(withRules.allocBytesPerEvent(), "pipeline+rules-alloc-B/event")
	b.ReportMetric(ceil.gcsPer10k(), "raw-GCs/10k-events")
	b.ReportMetric(plain.gcsPer10k(), "pipeline-GCs/10k-events")
	b.ReportMetric(0, "ns/op") // one op is three runs of unequal work: meaningless
}

// throughput sums events and spans over iterations.
type throughput struct {
	events uint64
	span   time.Duration
	bytes  uint64 // stored, headers included
	msgs   uint64
	// cpu and allocs are the whole process's (the embedded server's too)
	// while the variant ran, start-up and drain included.
	cpu    time.Duration
	allocs uint64
	// allocBytes and gcs: bytes allocated and GC cycles, likewise.
	allocBytes, gcs uint64
}

func (t *throughput) add(b *testing.B, events, bytes uint64, span time.Duration) {
	if events < ratioRecords {
		b.Fatalf("%d events for %d records", events, ratioRecords)
	}
	t.events += events - 1 // the span runs from the first output to the last
	t.span += span
	t.bytes += bytes
	t.msgs += events
}

func (t *throughput) cpuPerEvent() float64 { return float64(t.cpu.Microseconds()) / float64(t.msgs) }

func (t *throughput) allocsPerEvent() float64 { return float64(t.allocs) / float64(t.msgs) }

func (t *throughput) allocBytesPerEvent() float64 { return float64(t.allocBytes) / float64(t.msgs) }

// gcsPer10k is GC cycles per 10,000 outputs.
func (t *throughput) gcsPer10k() float64 { return float64(t.gcs) * 1e4 / float64(t.msgs) }

func (t *throughput) bytesPerEvent() float64 { return float64(t.bytes) / float64(t.msgs) }

func (t *throughput) rate() float64 { return float64(t.events) / t.span.Seconds() }

// readSample returns the sample's records, one per line.
func readSample(b *testing.B) [][]byte {
	b.Helper()
	f, err := os.Open(ratioSample)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 4<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, bytes.Clone(line))
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	if len(out) == 0 {
		b.Fatalf("%s: no records", ratioSample)
	}
	return out
}

// sampleEvents returns, for each sample record, the event the processor
// publishes for it (normalized, enriched, encoded as the pipeline does): what
// the same-size ceiling publishes. Only the id and ingest time differ from
// the pipeline's, not the size (both are checked: *-out-B/event).
func sampleEvents(b *testing.B, sample [][]byte) [][]byte {
	b.Helper()
	cfg := pipeline.NewDefaultConfig()
	reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
	if err != nil {
		b.Fatal(err)
	}
	norm, err := normalize.New(cfg.Normalize, reg)
	if err != nil {
		b.Fatal(err)
	}
	enr, err := enrich.New(cfg.Enrich)
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, len(sample))
	for i, raw := range sample {
		var ev schemas.Event
		// The id the preload gives: same length as in the timed runs.
		data, id := withAuditID(b, raw, fmt.Sprintf("s0-%d", i))
		rec := normalize.Record{Source: topology.SourceK8sAudit, Data: data, ID: id, Node: "node-1", Collector: "bench", Observed: time.Now()}
		if err := norm.Normalize(&rec, &ev); err != nil {
			b.Fatalf("sample record %d: %v", i, err)
		}
		enr.Enrich(&ev)
		out[i] = ev.AppendJSON(nil)
	}
	return out
}

// sampleIndex reads which sample record a preloaded message is from its id
// (<auditID>-<tag>-<i>, record i mod n).
func sampleIndex(id string, n int) (int, error) {
	cut := strings.LastIndexByte(id, '-')
	i, err := strconv.Atoi(id[cut+1:])
	if cut < 0 || err != nil || i < 0 {
		return 0, fmt.Errorf("msg id %q: not a preloaded record's", id)
	}
	return i % n, nil
}

// withAuditID returns rec with its auditID made <auditID>-<suffix>, and that id.
func withAuditID(b *testing.B, rec []byte, suffix string) ([]byte, string) {
	b.Helper()
	old := gjson.GetBytes(rec, "auditID")
	if !old.Exists() || old.Index == 0 {
		b.Fatal("sample record without auditID")
	}
	id := old.Str + "-" + suffix
	data := make([]byte, 0, len(rec)+len(id))
	data = append(data, rec[:old.Index]...)
	data = fmt.Appendf(data, "%q", id)
	data = append(data, rec[old.Index+len(old.Raw):]...)
	return data, id
}

// preload publishes ratioRecords records cycled from sample, each with a
// fresh auditID (prefix tag) so neither stream's dedup drops any, and waits
// for every PubAck.
func preload(b *testing.B, js jetstream.JetStream, asyncErrs *atomic.Int64, subject string, sample [][]byte, tag string) {
	b.Helper()
	for i := range ratioRecords {
		data, id := withAuditID(b, sample[i%len(sample)], fmt.Sprintf("%s-%d", tag, i))
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(headers.MsgID, id)
		m.Header.Set(headers.Node, "node-1")
		m.Header.Set(headers.Observed, headers.FormatTime(time.Now()))
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second)); err != nil {
			b.Fatalf("preload %d: %v", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("preload not acknowledged within 2m")
	}
	if n := asyncErrs.Load(); n > 0 {
		b.Fatalf("%d async publishes failed", n)
	}
}

func ensureCeilingStreams(b *testing.B, js jetstream.JetStream, tcfg topology.Config) jetstream.Consumer {
	b.Helper()
	ctx := context.Background()
	rawName, err := topology.RawStream(topology.SourceK8sAudit)
	if err != nil {
		b.Fatal(err)
	}
	var raw, events jetstream.StreamConfig
	for _, sc := range topology.Streams(tcfg) {
		switch sc.Name {
		case rawName:
			raw = sc
		case topology.EventsStream:
			events = sc
		}
	}
	raw.Name, raw.Subjects, raw.SubjectTransform = ceilingRawStream, []string{ceilingRawSubject}, nil
	events.Name, events.Subjects = ceilingEventsStream, []string{ceilingEventSubject}
	for _, sc := range []jetstream.StreamConfig{raw, events} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			b.Fatalf("stream %s: %v", sc.Name, err)
		}
	}
	// The processor's consumer settings, without partitions or pinning.
	cc, err := topology.ProcessorConsumerConfig(topology.SourceK8sAudit, 0, tcfg.Consumers.Processor)
	if err != nil {
		b.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, ceilingRawStream, jetstream.ConsumerConfig{
		Durable:       "ceiling",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cc.AckWait,
		MaxAckPending: cc.MaxAckPending,
		MaxDeliver:    cc.MaxDeliver,
	})
	if err != nil {
		b.Fatal(err)
	}
	return cons
}

// relay is the ceiling: the pipeline's delivery contract minus
// normalization. It fetches n messages, publishes payload(input) for each
// with its msg id, at most maxInFlight awaiting their PubAck, and acks each
// input once its output's PubAck is in (in order, on another goroutine, as
// the pipeline's acker does).
func relay(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, n, fetchBatch, maxInFlight int, payload func(jetstream.Msg) ([]byte, error)) error {
	type pend struct {
		msg jetstream.Msg
		fut jetstream.PubAckFuture
	}
	inflight := make(chan pend, maxInFlight)
	ackErr := make(chan error, 1)
	go func() {
		var first error
		for p := range inflight {
			select {
			case <-p.fut.Ok():
				if err := p.msg.Ack(); err != nil && first == nil {
					first = fmt.Errorf("ack: %w", err)
				}
			case err := <-p.fut.Err():
				if first == nil {
					first = fmt.Errorf("publish: %w", err)
				}
			}
		}
		ackErr <- first
	}()
	var err error
	for done := 0; done < n && err == nil && ctx.Err() == nil; {
		var batch jetstream.MessageBatch
		batch, err = cons.Fetch(fetchBatch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break
		}
		for msg := range batch.Messages() {
			data, perr := payload(msg)
			if perr != nil {
				err = perr
				break
			}
			out := &nats.Msg{Subject: ceilingEventSubject, Data: data, Header: nats.Header{}}
			out.Header.Set(headers.MsgID, msg.Headers().Get(headers.MsgID))
			out.Header.Set(headers.Source, topology.SourceK8sAudit)
			fut, perr := js.PublishMsgAsync(out)
			if perr != nil {
				err = fmt.Errorf("publish: %w", perr)
				break
			}
			inflight <- pend{msg, fut}
			done++
		}
		if berr := batch.Error(); berr != nil && !errors.Is(berr, nats.ErrTimeout) && err == nil {
			err = fmt.Errorf("fetch: %w", berr)
		}
	}
	close(inflight)
	return errors.Join(err, <-ackErr)
}

// runUntilDrained runs the pipeline until the raw work queue is empty — every
// input acked, so every output stored — then stops it.
func runUntilDrained(b *testing.B, run func(context.Context) error, js jetstream.JetStream) {
	b.Helper()
	rawName, _ := topology.RawStream(topology.SourceK8sAudit)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	deadline := time.Now().Add(3 * time.Minute)
	for streamState(b, js, rawName).Msgs != 0 {
		if time.Now().After(deadline) {
			cancel()
			b.Fatalf("raw stream not drained within 3m: %d left", streamState(b, js, rawName).Msgs)
		}
		select {
		case err := <-done:
			b.Fatalf("pipeline stopped early: %v", err)
		case <-time.After(50 * time.Millisecond):
			// Not more often: each look is a JetStream API request, CPU
			// taken from the pipeline being measured (the rate comes from
			// the outputs' stored timestamps, so a later look costs nothing).
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			b.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		b.Fatal("Run did not return after cancel")
	}
}

// measureOutputs runs f and adds to into how many messages it added to
// stream and the span between the first and the last one's stored timestamps.
func measureOutputs(b *testing.B, js jetstream.JetStream, stream string, into *throughput, f func()) {
	b.Helper()
	before := streamState(b, js, stream)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cpu0, allocs0, allocBytes0, gc0 := cpuTime(), ms.Mallocs, ms.TotalAlloc, ms.NumGC
	f()
	runtime.ReadMemStats(&ms)
	into.cpu += cpuTime() - cpu0
	into.allocs += ms.Mallocs - allocs0
	into.allocBytes += ms.TotalAlloc - allocBytes0
	into.gcs += uint64(ms.NumGC - gc0)
	after := streamState(b, js, stream)
	if after.LastSeq <= before.LastSeq+1 {
		b.Fatalf("%s: %d messages added", stream, after.LastSeq-before.LastSeq)
	}
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		b.Fatal(err)
	}
	first, err := s.GetMsg(context.Background(), before.LastSeq+1)
	if err != nil {
		b.Fatal(err)
	}
	last, err := s.GetMsg(context.Background(), after.LastSeq)
	if err != nil {
		b.Fatal(err)
	}
	into.add(b, after.LastSeq-before.LastSeq, after.Bytes-before.Bytes, last.Time.Sub(first.Time))
}

func streamState(b *testing.B, js jetstream.JetStream, stream string) jetstream.StreamState {
	b.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return info.State
}
