package publish_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// benchPayload is ~1 KB, the size of a typical audit event.
var benchPayload = append(append([]byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","pad":"`), bytes.Repeat([]byte("a"), 960)...), `"}`...)

const benchInFlight = 1024

// rawPublish is the ceiling: nats.go's own async publish with a message id,
// the same in-flight bound, waiting for every ack.
func rawPublish(b *testing.B, js jetstream.JetStream, subject, prefix string, n int, allHeaders bool) {
	for i := range n {
		m := &nats.Msg{Subject: subject, Data: benchPayload, Header: nats.Header{}}
		m.Header.Set(headers.MsgID, prefix+strconv.Itoa(i))
		if allHeaders {
			m.Header.Set(headers.Source, topology.SourceK8sAudit)
			m.Header.Set(headers.Collector, "raw-bench")
			m.Header.Set(headers.Node, "node-a")
			m.Header.Set(headers.Observed, headers.FormatTime(time.Now()))
		}
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		b.Fatal("raw publish: acks did not arrive")
	}
}

func publisherPublish(b *testing.B, pub *publish.Publisher, prefix string, n int) {
	ctx := context.Background()
	batch := pub.NewBatch()
	for i := range n {
		if err := batch.Add(ctx, publish.Record{Source: topology.SourceK8sAudit, Data: benchPayload, ID: prefix + strconv.Itoa(i)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Wait(ctx); err != nil {
		b.Fatal(err)
	}
}

type benchEnv struct {
	bus   *bus
	rawJS jetstream.JetStream
	pub   *publish.Publisher
	subj  string
	run   int
}

func newBenchEnv(b *testing.B) *benchEnv {
	bs := startBus(b)
	rawJS, err := jetstream.New(bs.nc, jetstream.WithPublishAsyncMaxPending(benchInFlight))
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	cfg.MaxInFlight = benchInFlight
	f := newFixtureOn(b, bs, bs.nc, cfg)
	subj, _ := topology.RawSubject(topology.SourceK8sAudit, "raw-bench", topology.KeyToken("raw-bench"))
	return &benchEnv{bus: bs, rawJS: rawJS, pub: f.pub, subj: subj}
}

// purge keeps the raw stream under its byte limit between rounds.
func (e *benchEnv) purge(b *testing.B) {
	s, err := e.bus.js.Stream(context.Background(), "CROWSNEST_RAW_K8S_AUDIT")
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Purge(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func (e *benchEnv) prefix(kind string) string {
	e.run++
	return kind + "-" + strconv.Itoa(e.run) + "-"
}

// BenchmarkPublish: one op is one ~1 KB record published and acknowledged.
func BenchmarkPublish(b *testing.B) {
	e := newBenchEnv(b)
	b.Run("raw-jetstream", func(b *testing.B) {
		e.purge(b)
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		b.ResetTimer()
		rawPublish(b, e.rawJS, e.subj, e.prefix("raw"), b.N, false)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	// The same with crowsnest's five headers: what the headers alone cost.
	b.Run("raw-jetstream-all-headers", func(b *testing.B) {
		e.purge(b)
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		b.ResetTimer()
		rawPublish(b, e.rawJS, e.subj, e.prefix("rawh"), b.N, true)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("publisher", func(b *testing.B) {
		e.purge(b)
		b.SetBytes(int64(len(benchPayload)))
		b.ReportAllocs()
		b.ResetTimer()
		publisherPublish(b, e.pub, e.prefix("pub"), b.N)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkPublishRatio runs raw JetStream (message id only), raw JetStream
// with the same five headers, and the publisher in each round, alternating,
// on one server, and reports the publisher's throughput as a fraction of
// each (goal >= 0.8 against the first).
func BenchmarkPublishRatio(b *testing.B) {
	const n = 20000
	e := newBenchEnv(b)
	var rawDur, rawHdrDur, pubDur time.Duration
	for b.Loop() {
		e.purge(b)
		start := time.Now()
		rawPublish(b, e.rawJS, e.subj, e.prefix("raw"), n, false)
		rawDur += time.Since(start)
		e.purge(b)
		start = time.Now()
		rawPublish(b, e.rawJS, e.subj, e.prefix("rawh"), n, true)
		rawHdrDur += time.Since(start)
		e.purge(b)
		start = time.Now()
		publisherPublish(b, e.pub, e.prefix("pub"), n)
		pubDur += time.Since(start)
	}
	rounds := float64(b.N)
	b.ReportMetric(rounds*n/rawDur.Seconds(), "raw_msgs/s")
	b.ReportMetric(rounds*n/pubDur.Seconds(), "publisher_msgs/s")
	b.ReportMetric(rawDur.Seconds()/pubDur.Seconds(), "ratio")
	// The same, against raw publishes carrying crowsnest's five headers: the
	// publisher's own overhead, without the cost of the headers the
	// contract requires.
	b.ReportMetric(rawHdrDur.Seconds()/pubDur.Seconds(), "ratio_same_headers")
}
