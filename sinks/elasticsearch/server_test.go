package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/tidwall/gjson"
)

// The helpers of the tests that need a real Elasticsearch.

// serverURL returns the test server's URL, or skips the test.
func serverURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("CROWSNEST_TEST_ELASTICSEARCH_URL")
	if u == "" {
		tb.Skip("CROWSNEST_TEST_ELASTICSEARCH_URL is not set: start Elasticsearch with `make services-up` and " +
			"`eval \"$(bash deploy/dev/services.sh env)\"` (make test does both), or point it at any Elasticsearch 8.x")
	}
	return strings.TrimSuffix(u, "/")
}

var nonNamespace = regexp.MustCompile(`[^a-z0-9]+`)

// testNamespace returns a namespace named after the test and empties its
// data streams. The names are fixed, not random: a data stream cannot be
// deleted on the development server (no data-streams module), so each test
// reuses its own and rolls it over to start empty.
func testNamespace(tb testing.TB, base string) string {
	tb.Helper()
	ns := "crowsnest_test." + strings.Trim(nonNamespace.ReplaceAllString(strings.ToLower(tb.Name()), "_"), "_")
	if len(ns) > 90 {
		ns = ns[:90]
	}
	for _, prefix := range []string{"logs-crowsnest.events", "logs-crowsnest.alerts"} {
		emptyDataStream(tb, base, prefix+"-"+ns)
	}
	return ns
}

// emptyDataStream rolls ds over and deletes its older backing indices.
func emptyDataStream(tb testing.TB, base, ds string) {
	tb.Helper()
	status, body := esRequest(tb, base, http.MethodGet, "/_resolve/index/"+ds, nil)
	if status == http.StatusNotFound {
		return // not created yet
	}
	if status != http.StatusOK {
		tb.Fatalf("resolve %s: %d %s", ds, status, body)
	}
	old := gjson.GetBytes(body, "data_streams.0.backing_indices").Array()
	if len(old) == 0 {
		return
	}
	if status, body := esRequest(tb, base, http.MethodPost, "/"+ds+"/_rollover", nil); status != http.StatusOK {
		tb.Fatalf("rollover %s: %d %s", ds, status, body)
	}
	for _, idx := range old {
		if status, body := esRequest(tb, base, http.MethodDelete, "/"+idx.String(), nil); status != http.StatusOK {
			tb.Fatalf("delete %s: %d %s", idx, status, body)
		}
	}
}

// esRequest sends a request with a plain HTTP client.
func esRequest(tb testing.TB, base, method, path string, body []byte) (int, []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if strings.Contains(path, "_bulk") {
			req.Header.Set("Content-Type", "application/x-ndjson")
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return res.StatusCode, out
}

// testConfig is the sink config for a test namespace on the test server.
func testConfig(base, ns string) Config {
	c := NewDefaultConfig()
	c.Addresses = []string{base}
	c.Namespace = ns
	c.RequestTimeout = 30 * time.Second
	return c
}

// openSink opens a sink and closes it when the test ends.
func openSink(tb testing.TB, cfg Config) *Sink {
	tb.Helper()
	s, err := New(cfg, sink.Settings{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// hits returns every document in the namespace's data streams, as _id →
// _source, with a count per _id in counts.
func hits(tb testing.TB, base, ns string) (sources map[string]json.RawMessage, counts map[string]int) {
	tb.Helper()
	streams := "logs-crowsnest.events-" + ns + ",logs-crowsnest.alerts-" + ns
	if status, body := esRequest(tb, base, http.MethodPost, "/"+streams+"/_refresh?ignore_unavailable=true&allow_no_indices=true", nil); status != http.StatusOK {
		tb.Fatalf("refresh: %d %s", status, body)
	}
	sources, counts = map[string]json.RawMessage{}, map[string]int{}
	status, body := esRequest(tb, base, http.MethodPost, "/"+streams+"/_search?ignore_unavailable=true&allow_no_indices=true",
		[]byte(`{"size":10000,"track_total_hits":true,"query":{"match_all":{}}}`))
	if status != http.StatusOK {
		tb.Fatalf("search: %d %s", status, body)
	}
	if total := gjson.GetBytes(body, "hits.total.value").Int(); total > 10000 {
		tb.Fatalf("%d documents: more than one page", total)
	}
	for _, h := range gjson.GetBytes(body, "hits.hits").Array() {
		id := h.Get("_id").String()
		counts[id]++
		sources[id] = json.RawMessage(h.Get("_source").Raw)
	}
	return sources, counts
}
