package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
)

// Elasticsearch runs hunts as query DSL requests (filters and
// aggregations) on the data streams the sink writes. Each hunt builds its
// request in Go from typed parameters: a value the analyst gives is a JSON
// value in the request body, never part of a query string or script.
type Elasticsearch struct {
	s searcher
}

// NewElasticsearch returns a backend searching the events and alerts data
// streams (elasticsearch.DataStreamName) through client; where names the
// cluster in errors.
func NewElasticsearch(client *es.Client, events, alerts, where string) *Elasticsearch {
	return &Elasticsearch{s: searcher{client: client, events: events, alerts: alerts, where: where}}
}

// elasticHunt is one hunt for Elasticsearch: it returns the hunt's rows in
// the hunt's order, at least limit+1 of them when that many match.
type elasticHunt func(ctx context.Context, s *searcher, a Args, limit int) ([][]any, error)

// Run runs the hunt's Elasticsearch implementation.
func (e *Elasticsearch) Run(ctx context.Context, h Hunt, a Args, limit int) (Result, error) {
	rows, err := h.elastic(ctx, &e.s, a, limit)
	if err != nil {
		return Result{}, fmt.Errorf("hunt %s: %w", h.Name, err)
	}
	res := Result{Columns: h.Columns, Rows: rows}
	res.limit(limit)
	return res, res.check("elasticsearch", h.Name)
}

// searcher sends search requests and pages through their answers.
type searcher struct {
	client         *es.Client
	events, alerts string
	where          string
}

// Caps on what one hunt reads: past them the window is too wide for a
// terminal, and the analyst is told to narrow it rather than left waiting.
const (
	pageSize      = 1000
	maxHits       = 200_000
	maxBuckets    = 200_000
	maxReplyBytes = 64 << 20
)

// searchReply is the part of a search answer the hunts read.
type searchReply struct {
	TimedOut bool `json:"timed_out"`
	Shards   struct {
		Failed   int               `json:"failed"`
		Failures []json.RawMessage `json:"failures"`
	} `json:"_shards"`
	Hits struct {
		Hits []struct {
			Fields map[string][]any `json:"fields"`
			Sort   []any            `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
	Aggregations map[string]json.RawMessage `json:"aggregations"`
}

// search sends body to index's _search and decodes the answer (numbers as
// json.Number). A missing data stream, a partial answer (failed shards, a
// timeout) and an unreachable cluster are errors.
func (s *searcher) search(ctx context.Context, index string, body map[string]any) (*searchReply, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	res, err := s.client.Search(
		s.client.Search.WithContext(ctx),
		s.client.Search.WithIndex(index),
		s.client.Search.WithBody(bytes.NewReader(buf)),
	)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch at %s: %w", s.where, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxReplyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("elasticsearch at %s: read answer: %w", s.where, err)
	}
	if len(data) > maxReplyBytes {
		return nil, fmt.Errorf("elasticsearch at %s: answer larger than %d bytes", s.where, maxReplyBytes)
	}
	if res.IsError() {
		var e struct {
			Error struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &e) // an unreadable error body is reported raw below
		if e.Error.Type == "index_not_found_exception" {
			return nil, fmt.Errorf("elasticsearch at %s: no data stream %s: nothing was written there, or the sink writes another namespace (sinks.elasticsearch.namespace, --es-namespace)", s.where, index)
		}
		if e.Error.Reason != "" {
			return nil, fmt.Errorf("elasticsearch at %s: search %s: HTTP %d: %s: %s", s.where, index, res.StatusCode, e.Error.Type, e.Error.Reason)
		}
		return nil, fmt.Errorf("elasticsearch at %s: search %s: HTTP %d: %s", s.where, index, res.StatusCode, bytes.TrimSpace(data[:min(len(data), 512)]))
	}
	var r searchReply
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("elasticsearch at %s: decode answer: %w", s.where, err)
	}
	if r.TimedOut || r.Shards.Failed > 0 {
		first := ""
		if len(r.Shards.Failures) > 0 {
			first = ": " + string(r.Shards.Failures[0])
		}
		return nil, fmt.Errorf("elasticsearch at %s: search %s: partial answer (timed out: %t, %d shards failed)%s", s.where, index, r.TimedOut, r.Shards.Failed, first)
	}
	return &r, nil
}

// doc is the fields of one matching document, as the fields API returns
// them: every field an array of values.
type doc map[string][]any

func (d doc) str(name string) string {
	if v := d[name]; len(v) > 0 {
		return scalarString(v[0])
	}
	return ""
}

func (d doc) strs(name string) []string {
	out := make([]string, 0, len(d[name]))
	for _, v := range d[name] {
		out = append(out, scalarString(v))
	}
	return out
}

func (d doc) int(name string) int64 {
	if v := d[name]; len(v) > 0 {
		return scalarInt(v[0])
	}
	return 0
}

func (d doc) bool(name string) bool {
	if v := d[name]; len(v) > 0 {
		b, _ := v[0].(bool)
		return b
	}
	return false
}

func (d doc) time(name string) (time.Time, error) {
	s := d.str(name)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("field %s: %q is not an RFC 3339 time", name, s)
	}
	return t.UTC(), nil
}

func scalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}

func scalarInt(v any) int64 {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		if f, err := x.Float64(); err == nil {
			return int64(f)
		}
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// hits calls fn for every document of index matching query, in
// @timestamp then event.id order, paging with search_after; only fields
// are fetched (the fields API: values as mapped, times as RFC 3339).
func (s *searcher) hits(ctx context.Context, index string, query any, fields []string, fn func(doc) error) error {
	want := make([]any, 0, len(fields))
	for _, f := range fields {
		if f == "@timestamp" {
			want = append(want, map[string]any{"field": f, "format": "strict_date_optional_time"})
			continue
		}
		want = append(want, f)
	}
	var after []any
	for n := 0; ; {
		body := map[string]any{
			"size":             pageSize,
			"query":            query,
			"_source":          false,
			"fields":           want,
			"sort":             []any{map[string]any{"@timestamp": "asc"}, map[string]any{"event.id": "asc"}},
			"track_total_hits": false,
		}
		if after != nil {
			body["search_after"] = after
		}
		r, err := s.search(ctx, index, body)
		if err != nil {
			return err
		}
		for _, h := range r.Hits.Hits {
			if n++; n > maxHits {
				return fmt.Errorf("more than %d documents match: narrow the window (--from, --to)", maxHits)
			}
			if err := fn(doc(h.Fields)); err != nil {
				return err
			}
		}
		if len(r.Hits.Hits) < pageSize {
			return nil
		}
		after = r.Hits.Hits[len(r.Hits.Hits)-1].Sort
	}
}

// bucket is one group of a composite aggregation: its key (source name →
// value, nil where the document had none), document count and the
// sub-aggregations' answers by name.
type bucket struct {
	key      map[string]any
	docCount int64
	aggs     map[string]json.RawMessage
}

// keyString is the bucket's key source name as text, "" when missing.
func (b bucket) keyString(name string) string { return scalarString(b.key[name]) }

// keyInt is the key as a whole number, 0 when missing.
func (b bucket) keyInt(name string) int64 { return scalarInt(b.key[name]) }

// groups calls fn for every bucket of a composite aggregation over index
// (documents matching query, grouped by sources, each bucket with the
// sub-aggregations aggs), paging with after_key.
func (s *searcher) groups(ctx context.Context, index string, query any, sources []any, aggs map[string]any, fn func(bucket) error) error {
	var after any
	for n := 0; ; {
		composite := map[string]any{"size": pageSize, "sources": sources}
		if after != nil {
			composite["after"] = after
		}
		agg := map[string]any{"composite": composite}
		if len(aggs) > 0 {
			agg["aggs"] = aggs
		}
		r, err := s.search(ctx, index, map[string]any{
			"size":             0,
			"query":            query,
			"track_total_hits": false,
			"aggs":             map[string]any{"groups": agg},
		})
		if err != nil {
			return err
		}
		var page struct {
			AfterKey any                          `json:"after_key"`
			Buckets  []map[string]json.RawMessage `json:"buckets"`
		}
		if err := unmarshal(r.Aggregations["groups"], &page); err != nil {
			return fmt.Errorf("composite aggregation: %w", err)
		}
		for _, raw := range page.Buckets {
			if n++; n > maxBuckets {
				return fmt.Errorf("more than %d groups: narrow the window (--from, --to)", maxBuckets)
			}
			b := bucket{aggs: raw}
			if err := unmarshal(raw["key"], &b.key); err != nil {
				return fmt.Errorf("composite key: %w", err)
			}
			if err := unmarshal(raw["doc_count"], &b.docCount); err != nil {
				return fmt.Errorf("composite doc_count: %w", err)
			}
			if err := fn(b); err != nil {
				return err
			}
		}
		if len(page.Buckets) < pageSize || page.AfterKey == nil {
			return nil
		}
		after = page.AfterKey
	}
}

// unmarshal decodes with numbers as json.Number.
func unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New("missing from the answer")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

// metric reads a single-value metric aggregation (cardinality, min, max):
// its value, and false when it has none (no document had the field).
func (b bucket) metric(name string) (float64, bool, error) {
	var m struct {
		Value *json.Number `json:"value"`
	}
	if err := unmarshal(b.aggs[name], &m); err != nil {
		return 0, false, fmt.Errorf("aggregation %s: %w", name, err)
	}
	if m.Value == nil {
		return 0, false, nil
	}
	f, err := m.Value.Float64()
	return f, err == nil, err
}

// count reads a cardinality aggregation.
func (b bucket) count(name string) (int64, error) {
	f, _, err := b.metric(name)
	return int64(f), err
}

// millis reads a min or max aggregation over a date as a time.
func (b bucket) millis(name string) (time.Time, error) {
	f, ok, err := b.metric(name)
	if err != nil || !ok {
		return time.Time{}, errors.Join(err, fmt.Errorf("aggregation %s: no value", name))
	}
	return time.UnixMilli(int64(f)).UTC(), nil
}

// termBuckets is a terms aggregation's answer.
type termBuckets struct {
	SumOtherDocCount int64                        `json:"sum_other_doc_count"`
	Buckets          []map[string]json.RawMessage `json:"buckets"`
}

// terms reads terms aggregation name of raw (a bucket's aggregations): the
// keys as text, and each bucket's own aggregations. A terms aggregation
// that left values out (sum_other_doc_count) is an error: a hunt never
// shows a list it cut short without saying so.
func terms(raw map[string]json.RawMessage, name string) ([]string, []map[string]json.RawMessage, error) {
	var t termBuckets
	if err := unmarshal(raw[name], &t); err != nil {
		return nil, nil, fmt.Errorf("aggregation %s: %w", name, err)
	}
	if t.SumOtherDocCount > 0 {
		return nil, nil, fmt.Errorf("aggregation %s: more than %d values: narrow the window (--from, --to)", name, maxTerms)
	}
	keys := make([]string, len(t.Buckets))
	for i, b := range t.Buckets {
		var k any
		if err := unmarshal(b["key"], &k); err != nil {
			return nil, nil, fmt.Errorf("aggregation %s: key: %w", name, err)
		}
		keys[i] = scalarString(k)
	}
	return keys, t.Buckets, nil
}

// maxTerms is the size of every terms aggregation: the longest list a
// cell holds.
const maxTerms = 1000

// Query DSL pieces. Each takes values, which go into the request as JSON
// values.

func term(field string, value any) map[string]any {
	return map[string]any{"term": map[string]any{field: value}}
}

func termsQuery(field string, values ...string) map[string]any {
	return map[string]any{"terms": map[string]any{field: values}}
}

func exists(field string) map[string]any {
	return map[string]any{"exists": map[string]any{"field": field}}
}

// window is [from, to) on @timestamp, to the millisecond.
func window(from, to time.Time) map[string]any {
	return map[string]any{"range": map[string]any{"@timestamp": map[string]any{
		"gte": from.UTC().Format(TimeLayout), "lt": to.UTC().Format(TimeLayout),
		"format": "strict_date_optional_time",
	}}}
}

func filter(clauses ...map[string]any) map[string]any {
	return map[string]any{"bool": map[string]any{"filter": clauses}}
}

// termsSource is a composite source grouping by a keyword (or ip, number)
// field; documents without it form their own group (key null).
func termsSource(name, field string) map[string]any {
	return map[string]any{name: map[string]any{"terms": map[string]any{"field": field, "missing_bucket": true}}}
}

// distinct counts a field's distinct values; a document without the field
// counts as the value "", as ClickHouse's uniqExact counts an empty
// column. Below the precision threshold the count is exact.
func distinct(field string) map[string]any {
	return map[string]any{"cardinality": map[string]any{"field": field, "precision_threshold": 40000, "missing": ""}}
}

// keys lists a field's values, sorted, up to maxTerms.
func keys(field string) map[string]any {
	return map[string]any{"terms": map[string]any{"field": field, "size": maxTerms, "order": map[string]any{"_key": "asc"}}}
}
