package clickhouse

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// The conversion alone, per document: the registry walk the sink uses
// (gjson, values straight into column buffers) against decoding into the
// generated struct with encoding/json, which would still leave the columns
// to fill. Run: go test -run XXX -bench 'RowBuilder|DecodeJSON' -benchmem.
func benchDocs(n int) [][]byte {
	docs := make([][]byte, n)
	for i := range docs {
		docs[i] = sinktest.EventDoc("bench-" + strconv.Itoa(i))
	}
	return docs
}

func BenchmarkRowBuilder(b *testing.B) {
	docs := benchDocs(500)
	m, err := newTableMap("events", schemas.Fields())
	if err != nil {
		b.Fatal(err)
	}
	rb := newRowBuilder(m)
	b.SetBytes(int64(len(docs[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%len(docs) == 0 {
			rb.Reset()
		}
		if err := rb.Add(docs[i%len(docs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	docs := benchDocs(500)
	b.SetBytes(int64(len(docs[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var a schemas.Alert
		if err := json.Unmarshal(docs[i%len(docs)], &a); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkBuildBlock is the client side of one insert of 1000 events:
// conversion plus clickhouse-go's column appends, without the network
// (an HTTP batch with known column types contacts the server only on Send).
func BenchmarkBuildBlock(b *testing.B) {
	url := os.Getenv("CROWSNEST_TEST_CLICKHOUSE_URL")
	if url == "" {
		b.Skip("CROWSNEST_TEST_CLICKHOUSE_URL is not set (PrepareBatch says hello to the server)")
	}
	docs := benchDocs(1000)
	cfg := NewDefaultConfig()
	cfg.URL, cfg.Database = url, "cn_bench_build"
	s, err := New(cfg, sink.Settings{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.EnsureSchema(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := s.conn.Exec(context.Background(), "DROP DATABASE cn_bench_build"); err != nil {
			b.Error(err)
		}
	}()
	w := s.writers[sink.KindEvents]
	recs := make([]sink.Record, len(docs))
	for i, d := range docs {
		recs[i] = sink.Record{Data: d, ID: strconv.Itoa(i), Kind: sink.KindEvents, Delivered: 1}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		w.convert(recs)
		w.recIdx, w.msgIDs = w.recIdx[:0], w.msgIDs[:0]
		for i := range recs {
			if w.errs[i] != nil {
				b.Fatal(w.errs[i])
			}
			w.recIdx = append(w.recIdx, i)
			w.msgIDs = append(w.msgIDs, recs[i].ID)
		}
		ictx := clickhouse.Context(ctx, clickhouse.WithColumnNamesAndTypes(w.cols))
		batch, err := s.conn.PrepareBatch(ictx, w.insert)
		if err != nil {
			b.Fatal(err)
		}
		if err := w.appendColumns(batch, 0, w.b.Rows()); err != nil {
			b.Fatal(err)
		}
		if err := batch.Abort(); err != nil {
			b.Fatal(err)
		}
	}
}
