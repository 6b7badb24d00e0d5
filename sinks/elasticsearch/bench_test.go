package elasticsearch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// BenchmarkThroughput writes the same documents, in batches of the runner's
// default size, through the sink and through _bulk with a plain net/http
// client, alternating, against the server in CROWSNEST_TEST_ELASTICSEARCH_URL,
// and reports docs/s of each and their ratio (goal: sink/plain ≥ 0.8).
//
//	go test ./sinks/elasticsearch -run '^$' -bench Throughput -benchtime 5x
func BenchmarkThroughput(b *testing.B) {
	base := serverURL(b)
	const docs, batchSize = 20_000, 500
	ns := testNamespace(b, base)
	nsSink, nsPlain := ns+"_sink", ns+"_plain"
	for _, ns := range []string{nsSink, nsPlain} {
		for _, p := range []string{"logs-crowsnest.events", "logs-crowsnest.alerts"} {
			emptyDataStream(b, base, p+"-"+ns)
		}
	}
	s := openSink(b, testConfig(base, nsSink))
	plainIndex := "logs-crowsnest.events-" + nsPlain
	// The plain client writes into a data stream with the same templates.
	if err := s.ensureSetup(context.Background()); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

	run := time.Now().UnixNano()
	var sinkTime, plainTime time.Duration
	var body bytes.Buffer
	b.ResetTimer()
	for iter := range b.N {
		recs := make([]sink.Record, docs)
		for i := range recs {
			id := fmt.Sprintf("bench-%d-%d-%d", run, iter, i)
			recs[i] = sink.Record{Kind: sink.KindEvents, ID: id, Data: sinktest.EventDoc(id)}
		}
		writeSink := func() {
			start := time.Now()
			for i := 0; i < docs; i += batchSize {
				if err := s.WriteBatch(context.Background(), recs[i:i+batchSize]); err != nil {
					b.Fatalf("sink: %v", err)
				}
			}
			sinkTime += time.Since(start)
		}
		writePlain := func() {
			start := time.Now()
			for i := 0; i < docs; i += batchSize {
				body.Reset()
				for _, r := range recs[i : i+batchSize] {
					fmt.Fprintf(&body, `{"create":{"_index":%q,"_id":%q}}`+"\n", plainIndex, r.ID)
					body.Write(r.Data)
					body.WriteByte('\n')
				}
				req, err := http.NewRequest(http.MethodPost, base+"/_bulk", bytes.NewReader(body.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-ndjson")
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				reply, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != http.StatusOK || gjson.GetBytes(reply, "errors").Bool() {
					b.Fatalf("plain bulk: %d %v %.300s", res.StatusCode, err, reply)
				}
			}
			plainTime += time.Since(start)
		}
		// Alternate who goes first, so neither always meets a fresher
		// merge state or a warmer JIT.
		if iter%2 == 0 {
			writeSink()
			writePlain()
		} else {
			writePlain()
			writeSink()
		}
	}
	b.StopTimer()
	total := float64(docs * b.N)
	sinkRate, plainRate := total/sinkTime.Seconds(), total/plainTime.Seconds()
	b.ReportMetric(sinkRate, "sink-docs/s")
	b.ReportMetric(plainRate, "plain-docs/s")
	b.ReportMetric(sinkRate/plainRate, "ratio")
	b.ReportMetric(0, "ns/op")
}
