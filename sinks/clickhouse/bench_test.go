package clickhouse_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/internal/chtest"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
	"github.com/tidwall/gjson"
)

// BenchmarkSinkVsJSONEachRow measures rows/s through the sink (WriteBatch:
// JSON documents converted to columns, sent as Native blocks by
// clickhouse-go) against the server's own bulk path — INSERT … FORMAT
// JSONEachRow over plain HTTP with the same rows, already flattened to
// columns — in the same run, batch for batch, alternating which goes first.
// It reports both rates and their ratio (goal ≥ 0.8):
//
//	eval "$(bash deploy/dev/services.sh env)"
//	go test ./sinks/clickhouse/ -run XXX -bench SinkVsJSONEachRow -benchtime 20x
func BenchmarkSinkVsJSONEachRow(b *testing.B) {
	for _, comp := range []string{"lz4", "none"} {
		b.Run("compression="+comp, func(b *testing.B) {
			cfg := chtest.Config(b)
			cfg.Compression = comp
			benchInsert(b, cfg)
		})
	}
}

const (
	benchBatch   = 1000 // records per WriteBatch and per JSONEachRow POST
	benchBatches = 5    // batches per path per iteration
)

func benchInsert(b *testing.B, cfg chsink.Config) {
	s, err := chsink.New(cfg, sinktest.Settings(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	if err := s.EnsureSchema(ctx); err != nil {
		b.Fatal(err)
	}
	bulk := newBulkPath(b, cfg)
	var sinkTime, bulkTime time.Duration
	rows := 0
	iter := 0
	for b.Loop() {
		b.StopTimer()
		// Fresh ids every time: the tables deduplicate repeated blocks.
		recs := make([][]sink.Record, benchBatches)
		flat := make([][]byte, benchBatches)
		for j := range benchBatches {
			recs[j] = benchRecords(fmt.Sprintf("s%d-%d", iter, j))
			flat[j] = flatRows(benchRecords(fmt.Sprintf("j%d-%d", iter, j)))
		}
		runtime.GC() // the preparation's garbage is not either path's cost
		b.StartTimer()
		// Batch by batch, alternating which path goes first, so both meet
		// the same load on a shared machine.
		for j := range benchBatches {
			runSink := func() {
				start := time.Now()
				if err := s.WriteBatch(ctx, recs[j]); err != nil {
					b.Fatal(err)
				}
				sinkTime += time.Since(start)
			}
			runBulk := func() {
				start := time.Now()
				bulk.insert(b, flat[j])
				bulkTime += time.Since(start)
			}
			if (iter+j)%2 == 0 {
				runSink()
				runBulk()
			} else {
				runBulk()
				runSink()
			}
		}
		rows += benchBatch * benchBatches
		iter++
	}
	conn := chtest.Conn(b, cfg)
	if n := count(b, conn, "SELECT count() FROM events"); n != uint64(2*rows) {
		b.Fatalf("events holds %d rows, want %d", n, 2*rows)
	}
	sinkRate := float64(rows) / sinkTime.Seconds()
	bulkRate := float64(rows) / bulkTime.Seconds()
	b.ReportMetric(sinkRate, "sink_rows/s")
	b.ReportMetric(bulkRate, "jsoneachrow_rows/s")
	b.ReportMetric(sinkRate/bulkRate, "ratio")
}

var benchStart = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

// benchRecords is one batch of realistic audit events (sinktest.EventDoc,
// about 1.4 KB each) spread over a day and a few namespaces.
func benchRecords(prefix string) []sink.Record {
	out := make([]sink.Record, benchBatch)
	for i := range out {
		id := prefix + "-" + strconv.Itoa(i)
		doc := sinktest.EventDoc(id)
		ts := benchStart.Add(time.Duration(i%1440) * time.Minute).Format(schemas.TimeLayout)
		doc = bytes.Replace(doc, []byte(`"@timestamp":"2026-11-26T10:15:00.000Z"`), []byte(`"@timestamp":"`+ts+`"`), 1)
		doc = bytes.Replace(doc, []byte(`"namespace":"payments"`), []byte(`"namespace":"ns-`+strconv.Itoa(i%7)+`"`), 1)
		out[i] = sink.Record{Data: doc, ID: id, Kind: sink.KindEvents, Seq: uint64(i + 1), Delivered: 1}
	}
	return out
}

// flatRows turns documents into JSONEachRow lines: one key per registry
// column present in the document, values as ClickHouse reads them.
func flatRows(recs []sink.Record) []byte {
	fields := tableFields("events")
	var buf bytes.Buffer
	for _, r := range recs {
		buf.WriteByte('{')
		first := true
		for _, f := range fields {
			v := gjson.GetBytes(r.Data, f.Name)
			if !v.Exists() {
				continue
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			buf.WriteString(strconv.Quote(f.Column))
			buf.WriteByte(':')
			switch f.Type {
			case "date":
				t, _ := time.Parse(time.RFC3339Nano, v.String())
				buf.WriteString(strconv.Quote(t.UTC().Format("2006-01-02 15:04:05.000")))
			case "json":
				buf.WriteString(strconv.Quote(v.Raw))
			default:
				buf.WriteString(v.Raw)
			}
		}
		buf.WriteString("}\n")
	}
	return buf.Bytes()
}

// bulkPath is the server's own bulk insert over plain HTTP.
type bulkPath struct {
	client *http.Client
	url    string
}

func newBulkPath(b *testing.B, cfg chsink.Config) *bulkPath {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		b.Skipf("the JSONEachRow comparison needs an http(s) URL, got %q", cfg.URL)
	}
	q := url.Values{}
	q.Set("query", "INSERT INTO "+cfg.Database+".events FORMAT JSONEachRow")
	q.Set("user", cfg.Username)
	if cfg.Password.IsSet() {
		q.Set("password", cfg.Password.Value())
	}
	u.RawQuery = q.Encode()
	return &bulkPath{client: &http.Client{Timeout: time.Minute}, url: u.String()}
}

func (p *bulkPath) insert(b *testing.B, body []byte) {
	resp, err := p.client.Post(p.url, "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("JSONEachRow insert: %s: %s", resp.Status, msg)
	}
}
