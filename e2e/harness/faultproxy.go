package harness

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// FaultProxy is a fault-injecting HTTP reverse proxy in front of a real
// store (Elasticsearch, the ClickHouse engine's HTTP interface). It injects
// what a real server cannot be made to do on demand: a 429 for a whole
// request, chosen documents of a _bulk request answered 429/500/503 while the
// others are really written, a connection reset before the request reaches
// the store or after the store executed it (the answer is lost), and an
// answer held back after the store answered ("written, not yet answered").
// Everything else passes through unchanged.
//
// What happens to each request is decided by a Rule, which may change while
// the proxy runs (SetRule). The proxy counts every outcome and, for _bulk
// requests, how often each document id arrived and how often it was
// answered with a failure, so a scenario can prove that only failed
// documents were sent again.
type FaultProxy struct {
	upstream *url.URL
	client   *http.Client
	srv      *http.Server
	ln       net.Listener
	served   chan struct{}

	mu      sync.Mutex
	rule    Rule
	seq     int
	counts  FaultCounts
	items   map[string]ItemCount
	product string // the store's X-Elastic-Product, repeated on made-up answers
}

// BulkItem is one document (action) of a _bulk request.
type BulkItem struct {
	Action string // create, index, update, delete
	Index  string
	ID     string
}

// ProxyRequest is what a Rule sees of a request.
type ProxyRequest struct {
	Seq      int // 1, 2, ... in arrival order
	Method   string
	Path     string
	RawQuery string
	// Body is the request body, gzip already undone. Read only.
	Body []byte
	// Bulk is set for a POST to .../_bulk whose body parsed; Items are its
	// documents in order.
	Bulk  bool
	Items []BulkItem
}

// Action is what the proxy does with a request.
type Action int

const (
	// Pass forwards the request and returns the store's answer.
	Pass Action = iota
	// Reject answers Status (default 429) without forwarding anything.
	Reject
	// FailItems answers the _bulk documents chosen by Decision.Fail with
	// Status (default 429) as the store would, without sending them to the
	// store; the other documents are forwarded and really written. On a
	// request that is not a _bulk it is Pass.
	FailItems
	// ResetBefore resets the connection before anything is forwarded.
	ResetBefore
	// ResetAfter forwards the request, lets the store execute it, then
	// resets the connection instead of answering.
	ResetAfter
)

func (a Action) String() string {
	switch a {
	case Pass:
		return "pass"
	case Reject:
		return "reject"
	case FailItems:
		return "fail-items"
	case ResetBefore:
		return "reset-before"
	case ResetAfter:
		return "reset-after"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Decision is a Rule's answer for one request.
type Decision struct {
	Action Action
	// Status is the status of a Reject or of each failed item (429 when 0).
	Status int
	// Fail chooses the documents FailItems fails (i is the index in
	// ProxyRequest.Items).
	Fail func(i int, item BulkItem) bool
	// Hold, when set, is called once the store has answered (its writes are
	// done) and before the answer goes back (or the connection is reset);
	// the answer waits until Hold returns. A scenario kills the client
	// there to crash it between a store write and its ack.
	Hold func(r *ProxyRequest)
}

// Rule decides what happens to a request. It runs on the request's
// goroutine, concurrently with other requests.
type Rule func(r *ProxyRequest) Decision

// PassAll is the Rule of a new proxy.
func PassAll(*ProxyRequest) Decision { return Decision{Action: Pass} }

// FaultCounts are a proxy's counters per outcome.
type FaultCounts struct {
	Requests       int // every request
	Passed         int // forwarded and answered with the store's answer as it was
	Rejected       int // answered Status whole, not forwarded
	ItemsRewritten int // _bulk requests with injected item failures
	ResetsBefore   int
	ResetsAfter    int
	Held           int // answers held back by Decision.Hold
	UpstreamErrors int // the store could not be reached: answered 502

	BulkRequests   int
	ItemsArrived   int // _bulk documents that arrived
	ItemsInjected  int // documents answered with an injected failure status
	ItemsLost      int // documents of requests rejected, reset or unreachable upstream
	ItemsStoreFail int // documents the store itself answered other than 200/201/409
}

// ItemCount is what happened to one document id across _bulk requests.
type ItemCount struct {
	Arrived int // times it arrived at the proxy
	// Failed is how often its sender was told (or left to conclude) that it
	// was not written: an injected or real failure status, its request
	// rejected, reset before or after, or the store unreachable.
	Failed int
}

// NewFaultProxy starts a proxy on a free loopback port in front of the
// store at upstream (scheme://host:port). It passes everything through
// until SetRule says otherwise. Close stops it.
func NewFaultProxy(upstream string) (*FaultProxy, error) {
	u, err := url.Parse(strings.TrimRight(upstream, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("fault proxy: upstream %q: want scheme://host:port", upstream)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: %w", err)
	}
	p := &FaultProxy{
		upstream: u,
		// DisableCompression: the answers are read and maybe rewritten, so
		// they must come back plain.
		client: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
			Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second,
		}},
		ln: ln, served: make(chan struct{}),
		rule: PassAll, items: map[string]ItemCount{},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln) // ErrServerClosed after Close
	}()
	return p, nil
}

// URL is where clients send their requests instead of the store.
func (p *FaultProxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetRule replaces the rule; requests already decided keep their decision.
func (p *FaultProxy) SetRule(r Rule) {
	if r == nil {
		r = PassAll
	}
	p.mu.Lock()
	p.rule = r
	p.mu.Unlock()
}

// Counts returns the counters so far.
func (p *FaultProxy) Counts() FaultCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts
}

// Items returns a copy of the per-id counts of _bulk documents.
func (p *FaultProxy) Items() map[string]ItemCount {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]ItemCount, len(p.items))
	for k, v := range p.items {
		out[k] = v
	}
	return out
}

// Close stops the proxy and cuts the connections it holds (a held answer's
// Hold keeps running until it returns).
func (p *FaultProxy) Close() error {
	err := p.srv.Close()
	<-p.served
	p.client.CloseIdleConnections()
	return err
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		http.Error(w, "fault proxy: "+err.Error(), http.StatusBadRequest)
		return
	}
	req := &ProxyRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Body: body}
	if r.Method == http.MethodPost && (r.URL.Path == "/_bulk" || strings.HasSuffix(r.URL.Path, "/_bulk")) {
		if items, err := parseBulk(body); err == nil {
			req.Bulk, req.Items = true, items
		}
	}
	p.mu.Lock()
	p.seq++
	req.Seq = p.seq
	rule := p.rule
	p.counts.Requests++
	if req.Bulk {
		p.counts.BulkRequests++
		p.counts.ItemsArrived += len(req.Items)
		for _, it := range req.Items {
			c := p.items[it.ID]
			c.Arrived++
			p.items[it.ID] = c
		}
	}
	p.mu.Unlock()

	d := rule(req)
	status := d.Status
	if status == 0 {
		status = http.StatusTooManyRequests
	}
	switch d.Action {
	case Reject:
		p.count(func(c *FaultCounts) { c.Rejected++ })
		p.failAll(req)
		p.writeMadeUp(w, status, rejectBody(status))
		return
	case ResetBefore:
		p.count(func(c *FaultCounts) { c.ResetsBefore++ })
		p.failAll(req)
		resetConn(w)
		return
	}

	// What goes to the store: all of it, or the _bulk documents not failed.
	fwd := body
	var failed []bool
	if d.Action == FailItems && req.Bulk && d.Fail != nil {
		failed = make([]bool, len(req.Items))
		some := false
		for i, it := range req.Items {
			failed[i] = d.Fail(i, it)
			some = some || failed[i]
		}
		if some {
			fwd = keepBulk(body, req.Items, failed)
		} else {
			failed = nil
		}
	}

	var res *upstreamAnswer
	if len(req.Items) == 0 || len(fwd) > 0 {
		res, err = p.forward(r, req, fwd)
		if err != nil {
			p.count(func(c *FaultCounts) { c.UpstreamErrors++ })
			p.failAll(req)
			http.Error(w, "fault proxy: upstream: "+err.Error(), http.StatusBadGateway)
			return
		}
	}
	if failed != nil {
		merged, err := p.mergeBulk(req, failed, status, res)
		if err != nil {
			p.count(func(c *FaultCounts) { c.UpstreamErrors++ })
			p.failAll(req)
			http.Error(w, "fault proxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		res = merged
	} else if req.Bulk {
		p.noteStoreItems(req, res)
	}
	if d.Hold != nil {
		p.count(func(c *FaultCounts) { c.Held++ })
		d.Hold(req)
	}
	if d.Action == ResetAfter {
		p.count(func(c *FaultCounts) { c.ResetsAfter++ })
		p.failAll(req)
		resetConn(w)
		return
	}
	if failed != nil {
		p.count(func(c *FaultCounts) { c.ItemsRewritten++ })
	} else {
		p.count(func(c *FaultCounts) { c.Passed++ })
	}
	for k, v := range res.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(res.body)))
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body) // a client gone meanwhile is its own fault to handle
}

type upstreamAnswer struct {
	status int
	header http.Header
	body   []byte
}

// hopHeaders are not forwarded either way; bodies are sent plain, so their
// encoding and length are the proxy's own.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length", "Content-Encoding", "Accept-Encoding"}

func (p *FaultProxy) forward(in *http.Request, req *ProxyRequest, body []byte) (*upstreamAnswer, error) {
	u := *p.upstream
	u.Path = strings.TrimRight(p.upstream.Path, "/") + req.Path
	u.RawQuery = req.RawQuery
	// Not the client's context: a client that gives up must not stop a
	// write half way, which is exactly the case "written, not answered".
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, req.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out.Header = in.Header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	out.ContentLength = int64(len(body))
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	h := resp.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	if v := resp.Header.Get("X-Elastic-Product"); v != "" {
		p.mu.Lock()
		p.product = v
		p.mu.Unlock()
	}
	return &upstreamAnswer{status: resp.StatusCode, header: h, body: b}, nil
}

// mergeBulk builds the answer to a _bulk whose failed documents were held
// back: the store's item results for the forwarded ones, in order, and a
// made-up failure of status for each held-back one.
func (p *FaultProxy) mergeBulk(req *ProxyRequest, failed []bool, status int, res *upstreamAnswer) (*upstreamAnswer, error) {
	top := map[string]json.RawMessage{}
	var real []json.RawMessage
	if res != nil {
		if res.status != http.StatusOK {
			// The store refused the forwarded part whole: pass that on; every
			// document of the request failed.
			p.failAll(req)
			return res, nil
		}
		if err := json.Unmarshal(res.body, &top); err != nil {
			return nil, fmt.Errorf("bulk answer is not JSON: %w", err)
		}
		if err := json.Unmarshal(top["items"], &real); err != nil {
			return nil, fmt.Errorf("bulk answer items: %w", err)
		}
	} else {
		top["took"] = json.RawMessage("0")
		p.mu.Lock()
		product := p.product
		p.mu.Unlock()
		if product == "" {
			product = "Elasticsearch"
		}
		res = &upstreamAnswer{status: http.StatusOK, header: http.Header{"Content-Type": {"application/json"}, "X-Elastic-Product": {product}}}
	}
	items := make([]json.RawMessage, 0, len(req.Items))
	var fwdItems []BulkItem
	k := 0
	for i, it := range req.Items {
		if failed[i] {
			items = append(items, injectedItem(it, status))
			continue
		}
		if k >= len(real) {
			return nil, fmt.Errorf("bulk answer has %d items for %d forwarded documents", len(real), k+1)
		}
		items = append(items, real[k])
		fwdItems = append(fwdItems, it)
		k++
	}
	if k != len(real) {
		return nil, fmt.Errorf("bulk answer has %d items for %d forwarded documents", len(real), k)
	}
	p.mu.Lock()
	for i, it := range req.Items {
		if failed[i] {
			c := p.items[it.ID]
			c.Failed++
			p.items[it.ID] = c
			p.counts.ItemsInjected++
		}
	}
	p.mu.Unlock()
	p.noteItemStatuses(fwdItems, real)
	b, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	top["items"] = b
	top["errors"] = json.RawMessage("true")
	body, err := json.Marshal(top)
	if err != nil {
		return nil, err
	}
	return &upstreamAnswer{status: http.StatusOK, header: res.header, body: body}, nil
}

// noteStoreItems counts the documents the store itself did not write.
func (p *FaultProxy) noteStoreItems(req *ProxyRequest, res *upstreamAnswer) {
	if res.status != http.StatusOK {
		p.failAll(req)
		return
	}
	var top struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(res.body, &top); err != nil || len(top.Items) != len(req.Items) {
		return // the client will see the same and fail the request
	}
	p.noteItemStatuses(req.Items, top.Items)
}

func (p *FaultProxy) noteItemStatuses(items []BulkItem, results []json.RawMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, raw := range results {
		var one map[string]struct {
			Status int `json:"status"`
		}
		if json.Unmarshal(raw, &one) != nil {
			continue
		}
		for _, r := range one {
			if r.Status != http.StatusOK && r.Status != http.StatusCreated && r.Status != http.StatusConflict {
				c := p.items[items[i].ID]
				c.Failed++
				p.items[items[i].ID] = c
				p.counts.ItemsStoreFail++
			}
		}
	}
}

// failAll counts every document of req as failed: its request was rejected,
// reset or could not reach the store.
func (p *FaultProxy) failAll(req *ProxyRequest) {
	if !req.Bulk {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts.ItemsLost += len(req.Items)
	for _, it := range req.Items {
		c := p.items[it.ID]
		c.Failed++
		p.items[it.ID] = c
	}
}

func (p *FaultProxy) count(f func(*FaultCounts)) {
	p.mu.Lock()
	f(&p.counts)
	p.mu.Unlock()
}

func (p *FaultProxy) writeMadeUp(w http.ResponseWriter, status int, body []byte) {
	p.mu.Lock()
	product := p.product
	p.mu.Unlock()
	if product != "" {
		w.Header().Set("X-Elastic-Product", product)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func rejectBody(status int) []byte {
	b, _ := json.Marshal(map[string]any{
		"error":  map[string]string{"type": errorType(status), "reason": "injected by the fault proxy"},
		"status": status,
	})
	return b
}

func injectedItem(it BulkItem, status int) json.RawMessage {
	b, _ := json.Marshal(map[string]any{it.Action: map[string]any{
		"_index": it.Index, "_id": it.ID, "status": status,
		"error": map[string]string{"type": errorType(status), "reason": "injected by the fault proxy"},
	}})
	return b
}

// errorType is what Elasticsearch names the failure of status.
func errorType(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "es_rejected_execution_exception"
	case http.StatusServiceUnavailable:
		return "unavailable_shards_exception"
	}
	return "fault_proxy_injected_exception"
}

// resetConn hijacks the connection and closes it with SO_LINGER 0, so the
// client sees a reset (ECONNRESET), not a clean end of stream.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): the closest is to abort the handler.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		rd = zr
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return b, nil
}

// parseBulk reads the actions of a _bulk body: one action line, then a
// document line unless the action is delete.
func parseBulk(body []byte) ([]BulkItem, error) {
	var items []BulkItem
	lines := bytes.Split(bytes.TrimRight(body, "\r\n"), []byte("\n"))
	for i := 0; i < len(lines); i++ {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 {
			continue
		}
		var act map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(line, &act); err != nil || len(act) != 1 {
			return nil, fmt.Errorf("bulk line %d: not an action", i+1)
		}
		for name, meta := range act {
			items = append(items, BulkItem{Action: name, Index: meta.Index, ID: meta.ID})
			if name != "delete" {
				i++
				if i >= len(lines) || len(bytes.TrimSpace(lines[i])) == 0 {
					return nil, fmt.Errorf("bulk line %d: action without a document", i)
				}
			}
		}
	}
	return items, nil
}

// keepBulk returns the _bulk body of items without the documents marked in
// drop (empty when none is left).
func keepBulk(body []byte, items []BulkItem, drop []bool) []byte {
	var out bytes.Buffer
	lines := bytes.Split(bytes.TrimRight(body, "\r\n"), []byte("\n"))
	k := 0
	for i := 0; i < len(lines) && k < len(items); i++ {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 {
			continue
		}
		keep := !drop[k]
		if keep {
			out.Write(line)
			out.WriteByte('\n')
		}
		if items[k].Action != "delete" && i+1 < len(lines) {
			i++
			if keep {
				out.Write(lines[i])
				out.WriteByte('\n')
			}
		}
		k++
	}
	return out.Bytes()
}
