package harness

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// HoldProxy is a fault-injecting HTTP proxy in front of a real store. It
// forwards every request to the store and passes the answer back, except
// when armed: then the first request its match selects is forwarded, the
// store's whole answer is read (the write has happened), and the answer is
// held instead of sent. The test learns of it on the channel Arm returned
// and SIGKILLs the client, which therefore never sees that its write
// succeeded: a write stored but never acknowledged to JetStream, the window
// a sink's idempotence must cover.
type HoldProxy struct {
	// URL is where clients send their requests (http://127.0.0.1:port).
	URL string

	target *url.URL
	match  func(*http.Request) bool
	srv    *http.Server
	client *http.Client

	mu    sync.Mutex
	armed chan Held     // the next matching request reports here; nil when disarmed
	gone  chan struct{} // closed by Disarm: held answers are dropped
}

// Held describes a held answer: what was written and what the store said.
type Held struct {
	Method, Path, Query string
	RequestBytes        int
	Status              int
	Header              http.Header
	Response            []byte // as the store sent it (possibly compressed)
}

// Body is the store's answer, gunzipped when the store compressed it.
func (h Held) Body() ([]byte, error) {
	if h.Header.Get("Content-Encoding") != "gzip" {
		return h.Response, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(h.Response))
	if err != nil {
		return nil, fmt.Errorf("held answer: %w", err)
	}
	defer zr.Close()
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("held answer: %w", err)
	}
	return b, nil
}

// ElasticsearchBulk matches a bulk write.
func ElasticsearchBulk(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/_bulk")
}

// ClickHouseInsertInto matches an INSERT into one of tables (with or
// without a database: "events" matches "db.events") over the HTTP
// interface, which carries its statement in the query parameter and its
// rows in the body. Other INSERTs (the sink's schema_migrations) pass.
func ClickHouseInsertInto(tables ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		f := strings.Fields(r.URL.Query().Get("query"))
		if len(f) < 3 || !strings.EqualFold(f[0], "INSERT") || !strings.EqualFold(f[1], "INTO") {
			return false
		}
		name := strings.ReplaceAll(f[2], "`", "")
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		name, _, _ = strings.Cut(name, "(")
		return slices.Contains(tables, name)
	}
}

// StartHoldProxy starts a HoldProxy on a free loopback port in front of
// target; match selects the requests Arm may hold. Close stops it.
func StartHoldProxy(target string, match func(*http.Request) bool) (*HoldProxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("hold proxy: target %q: want http://host:port (%v)", target, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hold proxy: %w", err)
	}
	p := &HoldProxy{
		URL:    "http://" + l.Addr().String(),
		target: u,
		match:  match,
		// No timeout: a store's bulk write on a loaded machine can take
		// long, and the client's own timeout still applies to it.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

// Arm makes the proxy hold the answer to the next matching request; the
// returned channel receives that request's description once the store has
// answered it. The held answer is never sent: after Disarm (or once the
// client has gone) the connection is cut.
func (p *HoldProxy) Arm() <-chan Held {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan Held, 1)
	p.armed = ch
	if p.gone == nil {
		p.gone = make(chan struct{})
	}
	return ch
}

// Disarm stops holding: a request still armed for is forwarded normally, a
// held answer is dropped with its connection.
func (p *HoldProxy) Disarm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = nil
	if p.gone != nil {
		close(p.gone)
		p.gone = nil
	}
}

// Close stops the proxy and cuts its connections.
func (p *HoldProxy) Close() error {
	p.Disarm()
	return p.srv.Close()
}

// take returns the armed channel and disarms, when r is to be held.
func (p *HoldProxy) take(r *http.Request) (chan Held, chan struct{}) {
	if p.match == nil || !p.match(r) {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := p.armed
	p.armed = nil
	return ch, p.gone
}

func (p *HoldProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "hold proxy: read request: "+err.Error(), http.StatusBadGateway)
		return
	}
	held, gone := p.take(r)
	out := *p.target
	out.Path, out.RawPath, out.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	// Not the client's context: a held write must complete in the store
	// even though the client is killed while it waits for the answer.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, out.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "hold proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.Header.Del("Connection")
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, "hold proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	answer, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		http.Error(w, "hold proxy: read answer: "+err.Error(), http.StatusBadGateway)
		return
	}
	if held != nil {
		held <- Held{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, RequestBytes: len(body), Status: resp.StatusCode, Header: resp.Header, Response: answer}
		// Hold until the client is gone (killed) or the test disarms;
		// then cut the connection without an answer.
		select {
		case <-r.Context().Done():
		case <-gone:
		}
		panic(http.ErrAbortHandler)
	}
	for k, vs := range resp.Header {
		if k == "Content-Length" || k == "Connection" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	// A client gone meanwhile is no concern of the proxy's.
	_, _ = w.Write(answer)
}
