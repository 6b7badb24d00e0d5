package elasticsearch

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// faultInjectingProxy stands between the sink and the real server and
// injects what the server cannot be made to do on demand: per-document 429s
// inside an otherwise successful bulk reply, and connections reset before a
// bulk request reaches the server or after the server executed it (the reply
// is lost). Everything else is passed through. It counts how often each
// document id arrived, so a test can prove what was retried.
type faultInjectingProxy struct {
	target *url.URL
	pass   *httputil.ReverseProxy
	srv    *httptest.Server

	mu          sync.Mutex
	tooMany     map[string]int // id → 429s still to inject
	resetBefore map[int]bool   // bulk request numbers cut before forwarding
	resetAfter  map[int]bool   // bulk request numbers cut after the server replied
	bulks       int
	received    map[string]int // id → times it arrived
	injected    map[string]int // id → 429s injected
	reset       map[string]int // id → times it was in a reset request
	maxBody     int
}

func newFaultInjectingProxy(tb testing.TB, base string) *faultInjectingProxy {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	p := &faultInjectingProxy{
		target: u, pass: httputil.NewSingleHostReverseProxy(u),
		tooMany: map[string]int{}, resetBefore: map[int]bool{}, resetAfter: map[int]bool{},
		received: map[string]int{}, injected: map[string]int{}, reset: map[string]int{},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	tb.Cleanup(p.srv.Close)
	return p
}

func (p *faultInjectingProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/_bulk") {
		p.pass.ServeHTTP(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))

	p.mu.Lock()
	p.bulks++
	n := p.bulks
	p.maxBody = max(p.maxBody, len(data))
	cutBefore, cutAfter := p.resetBefore[n], p.resetAfter[n]
	var forward bytes.Buffer
	inject := make([]bool, len(lines)/2)
	for i := 0; i+1 < len(lines); i += 2 {
		id := gjson.GetBytes(lines[i], "create._id").String()
		p.received[id]++
		if cutBefore || cutAfter {
			p.reset[id]++
		}
		if !cutBefore && p.tooMany[id] > 0 {
			p.tooMany[id]--
			p.injected[id]++
			inject[i/2] = true
			continue
		}
		forward.Write(lines[i])
		forward.WriteByte('\n')
		forward.Write(lines[i+1])
		forward.WriteByte('\n')
	}
	p.mu.Unlock()

	if cutBefore {
		resetConn(w)
		return
	}
	var items []string
	errorsSeen := false
	if forward.Len() > 0 {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.target.String()+"/_bulk?"+r.URL.RawQuery, &forward)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		reply, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("upstream: %d %v %s", res.StatusCode, err, reply), http.StatusBadGateway)
			return
		}
		errorsSeen = gjson.GetBytes(reply, "errors").Bool()
		for _, it := range gjson.GetBytes(reply, "items").Array() {
			items = append(items, it.Raw)
		}
	}
	if cutAfter {
		resetConn(w) // the server wrote the documents; the sink never learns it
		return
	}
	var out strings.Builder
	anyInjected := false
	for _, inj := range inject {
		anyInjected = anyInjected || inj
	}
	fmt.Fprintf(&out, `{"errors":%t,"items":[`, errorsSeen || anyInjected)
	next := 0
	for j, inj := range inject {
		if j > 0 {
			out.WriteByte(',')
		}
		if inj {
			out.WriteString(`{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"injected by faultInjectingProxy"}}}`)
			continue
		}
		out.WriteString(items[next])
		next++
	}
	out.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	_, _ = io.WriteString(w, out.String())
}

// resetConn drops the client's connection with a TCP reset.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot reset: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// Through the runner, with 429s on single documents and connections reset
// before and after the server executed a request: every document ends up
// stored exactly once, nothing is dead-lettered, and only what failed is
// sent again.
func TestFaultInjectingProxy(t *testing.T) {
	base := serverURL(t)
	ns := testNamespace(t, base)
	proxy := newFaultInjectingProxy(t, base)
	proxy.tooMany["proxy-e10"] = 1  // written on the next in-process attempt
	proxy.tooMany["proxy-e150"] = 2 // on the third
	proxy.tooMany["proxy-e290"] = 5 // outlasts three attempts: nak, redelivered
	proxy.resetAfter[3] = true
	proxy.resetBefore[5] = true

	cfg := testConfig(proxy.srv.URL, ns)
	cfg.MaxRequestBytes = 64 * topology.KiB // a batch takes several requests
	cfg.Compression = CompressionGzip
	s := openSink(t, cfg)

	env := sinktest.NewEnv(t)
	msgs := append(sinktest.Events("proxy", 300), sinktest.Alerts("proxy", 20)...)
	sinktest.Publish(t, env.JS, msgs)
	rc := sinktest.RunnerConfig()
	rc.MaxBatchEvents = 200
	r, err := sink.New(env.JS, Type, s, rc, sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	env.WaitSettled(t, Type, 30*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	if dl := env.DeadLetters(t); len(dl) != 0 {
		t.Errorf("%d dead letters, want none", len(dl))
	}
	_, counts := hits(t, base, ns)
	if len(counts) != len(msgs) {
		t.Errorf("%d documents stored, want %d", len(counts), len(msgs))
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	resets := 0
	for _, m := range msgs {
		if counts[m.ID] != 1 {
			t.Errorf("%s stored %d times", m.ID, counts[m.ID])
		}
		want := 1 + proxy.injected[m.ID] + proxy.reset[m.ID]
		if got := proxy.received[m.ID]; got != want {
			t.Errorf("%s sent %d times, want %d (1 + %d injected 429s + %d reset requests): only failed documents may be sent again",
				m.ID, got, want, proxy.injected[m.ID], proxy.reset[m.ID])
		}
		resets += proxy.reset[m.ID]
	}
	for id, left := range proxy.tooMany {
		if left != 0 {
			t.Errorf("%s: %d injected 429s never met", id, left)
		}
	}
	if resets == 0 {
		t.Error("no request was reset: the test proves nothing about lost replies")
	}
	if proxy.maxBody > int(cfg.MaxRequestBytes) {
		t.Errorf("a bulk body of %d bytes, the limit is %d", proxy.maxBody, cfg.MaxRequestBytes)
	}
	t.Logf("%d bulk requests, %d documents in reset requests", proxy.bulks, resets)
}
