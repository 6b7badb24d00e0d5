package webhook

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func secretURL(s string) config.Secret { return config.Secret(s) }

// One POST per record; the sink refuses a body that is not JSON.
func TestConformanceRecordMode(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		Name: Type,
		NewStore: func(tb testing.TB) sinktest.Store {
			rc := newReceiver(tb)
			return &receiverStore{receiver: rc, cfg: rc.config()}
		},
		Reject: []byte(`{"event": {"id": "not closed"`),
	})
}

// One POST per batch; the endpoint refuses (422) a record, which the sink
// must isolate from the rest of its batch.
func TestConformanceBatchMode(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		Name: Type,
		NewStore: func(tb testing.TB) sinktest.Store {
			rc := newReceiver(tb)
			rc.refuse = []byte("refuse-me")
			cfg := rc.config()
			cfg.Mode = ModeBatch
			return &receiverStore{receiver: rc, cfg: cfg}
		},
		Reject: []byte(`{"event":{"id":"refuse-me","kind":"event"},"message":"the endpoint refuses this one"}`),
	})
}

func openTest(tb testing.TB, cfg Config) *Sink {
	tb.Helper()
	s, err := New(cfg, sink.Settings{Metrics: prometheus.NewRegistry()})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func alerts(ids ...string) []sink.Record {
	out := make([]sink.Record, len(ids))
	for i, id := range ids {
		out[i] = sink.Record{Data: sinktest.AlertDoc(id), ID: id, Kind: sink.KindAlerts, Seq: uint64(i + 1), Delivered: 1}
	}
	return out
}

// outcome names what WriteBatch made of one record.
func outcome(err error, i int) string {
	if err == nil {
		return "ok"
	}
	var be *sink.BatchError
	if errors.As(err, &be) {
		for _, it := range be.Items() {
			if it.Index == i {
				if sink.IsPermanent(it.Err) {
					return "permanent"
				}
				return "retryable"
			}
		}
		return "ok"
	}
	if sink.IsPermanent(err) {
		return "permanent"
	}
	return "retryable"
}

func TestStatusClassification(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{
		{200, "ok"}, {201, "ok"}, {202, "ok"}, {204, "ok"},
		{301, "permanent"}, {302, "permanent"}, {307, "permanent"},
		{400, "permanent"}, {401, "permanent"}, {403, "permanent"}, {404, "permanent"}, {413, "permanent"}, {422, "permanent"},
		{408, "retryable"}, {425, "retryable"}, {429, "retryable"},
		{500, "retryable"}, {502, "retryable"}, {503, "retryable"}, {504, "retryable"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			rc := newReceiver(t)
			rc.answer = func(w http.ResponseWriter, _ *http.Request, _ []byte) int {
				if tt.code >= 300 && tt.code < 400 {
					w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
				}
				return tt.code
			}
			s := openTest(t, rc.config())
			err := s.WriteBatch(context.Background(), alerts("a1"))
			if got := outcome(err, 0); got != tt.want {
				t.Errorf("status %d: outcome %s (%v), want %s", tt.code, got, err, tt.want)
			}
			if rc.count() != 1 {
				t.Errorf("%d requests, want 1 (no redirect followed, no retry inside the sink)", rc.count())
			}
		})
	}
}

func TestNetworkErrorsAreRetryable(t *testing.T) {
	rc := newReceiver(t)
	cfg := rc.config()
	rc.srv.Close() // nothing listens any more
	s := openTest(t, cfg)
	err := s.WriteBatch(context.Background(), alerts("a1", "a2"))
	for i := range 2 {
		if got := outcome(err, i); got != "retryable" {
			t.Errorf("record %d: %s (%v), want retryable", i, got, err)
		}
	}
	if strings.Contains(err.Error(), "s3cr3t-token") {
		t.Errorf("error reveals the URL's token: %v", err)
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	rc := newReceiver(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rc.answer = func(http.ResponseWriter, *http.Request, []byte) int {
		<-release
		return 200
	}
	cfg := rc.config()
	cfg.Timeout = 100 * time.Millisecond
	s := openTest(t, cfg)
	start := time.Now()
	err := s.WriteBatch(context.Background(), alerts("a1"))
	if got := outcome(err, 0); got != "retryable" {
		t.Fatalf("outcome %s (%v), want retryable", got, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed out after %s, want about 100ms", d)
	}
}

// After a retryable failure the rest of the batch is not sent.
func TestStopsSendingAfterRetryableFailure(t *testing.T) {
	rc := newReceiver(t)
	rc.answer = func(http.ResponseWriter, *http.Request, []byte) int { return 503 }
	cfg := rc.config()
	cfg.MaxConcurrentRequests = 1
	s := openTest(t, cfg)
	err := s.WriteBatch(context.Background(), alerts("a1", "a2", "a3", "a4"))
	for i := range 4 {
		if got := outcome(err, i); got != "retryable" {
			t.Errorf("record %d: %s, want retryable", i, got)
		}
	}
	if n := rc.count(); n != 1 {
		t.Errorf("%d requests to an endpoint answering 503, want 1", n)
	}
}

func TestRetryAfter(t *testing.T) {
	rc := newReceiver(t)
	first := true
	rc.answer = func(w http.ResponseWriter, _ *http.Request, _ []byte) int {
		if first {
			first = false
			w.Header().Set("Retry-After", "1")
			return http.StatusTooManyRequests
		}
		return 0
	}
	s := openTest(t, rc.config())
	if got := outcome(s.WriteBatch(context.Background(), alerts("a1")), 0); got != "retryable" {
		t.Fatalf("429: %s, want retryable", got)
	}
	held := time.Now()
	// A write whose deadline comes before the Retry-After fails at once,
	// without a request.
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.WriteBatch(short, alerts("a1"))
	if !errors.Is(err, errHeldOff) || sink.IsPermanent(err) {
		t.Fatalf("write during Retry-After: %v, want a retryable errHeldOff", err)
	}
	if n := rc.count(); n != 1 {
		t.Fatalf("%d requests, want 1: the endpoint asked to wait", n)
	}
	// A write that may wait, waits, then succeeds.
	long, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := s.WriteBatch(long, alerts("a1")); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
	if d := time.Since(held); d < 700*time.Millisecond {
		t.Errorf("sent again after %s, want about 1s", d)
	}
	if got := rc.Stored(t)["a1"]; got != 1 {
		t.Errorf("a1 stored %d times, want 1", got)
	}
}

func TestRetryAfterCapped(t *testing.T) {
	rc := newReceiver(t)
	rc.answer = func(w http.ResponseWriter, _ *http.Request, _ []byte) int {
		w.Header().Set("Retry-After", "86400")
		return 503
	}
	cfg := rc.config()
	cfg.MaxRetryAfter = 50 * time.Millisecond
	s := openTest(t, cfg)
	_ = s.WriteBatch(context.Background(), alerts("a1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_ = s.WriteBatch(ctx, alerts("a1"))
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("held back %s, want at most max_retry_after (50ms) plus a request", d)
	}
	if n := rc.count(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"Fri, 27 Nov 2026 03:00:30 GMT", 30 * time.Second, true},
		{"Fri, 27 Nov 2026 02:00:00 GMT", 0, true}, // in the past: now
		{"tomorrow", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Fri, 27 Nov 2026 03:00:30 GMT", "", "-3", "Sunday, 06-Nov-94 08:49:37 GMT"} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 {
			t.Fatalf("parseRetryAfter(%q) = %s: negative", s, d)
		}
		if !ok && d != 0 {
			t.Fatalf("parseRetryAfter(%q) = %s without ok", s, d)
		}
	})
}

// Rendering any document never panics, and a slack body is always JSON with
// the text escaped.
func FuzzRenderSlack(f *testing.F) {
	f.Add(sinktest.AlertDoc("a1"))
	f.Add([]byte(`{"rule":{"name":"<!channel> & <http://evil|click>"}}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{not json`))
	r, err := newRenderer(PayloadSlack, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		body, err := r.one(sink.Record{Data: doc, ID: "<!here>", Kind: sink.KindAlerts})
		if err != nil {
			return
		}
		var m struct{ Text string }
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("slack body is not JSON: %q", body)
		}
		if strings.ContainsAny(m.Text, "<>") { // the default template writes neither
			t.Fatalf("unescaped < or > in %q", m.Text)
		}
	})
}

func TestBatchModeIsolatesRefusedRecords(t *testing.T) {
	rc := newReceiver(t)
	rc.refuse = []byte(`"bad-2"`)
	cfg := rc.config()
	cfg.Mode = ModeBatch
	s := openTest(t, cfg)
	batch := alerts("ok-1", "bad-2", "ok-3")
	batch = append(batch, sink.Record{Data: []byte("{broken"), ID: "broken-4", Kind: sink.KindAlerts})
	err := s.WriteBatch(context.Background(), batch)
	for i, want := range []string{"ok", "permanent", "ok", "permanent"} {
		if got := outcome(err, i); got != want {
			t.Errorf("record %s: %s, want %s (%v)", batch[i].ID, got, want, err)
		}
	}
	if n := rc.count(); n != 4 {
		t.Errorf("%d requests, want 4 (the refused batch, then each of its 3 JSON records)", n)
	}
	stored := rc.Stored(t)
	if stored["ok-1"] != 1 || stored["ok-3"] != 1 || stored["bad-2"] != 0 {
		t.Errorf("stored %v", stored)
	}
}

func TestBatchModeOneRequest(t *testing.T) {
	rc := newReceiver(t)
	cfg := rc.config()
	cfg.Mode = ModeBatch
	s := openTest(t, cfg)
	if err := s.WriteBatch(context.Background(), alerts("a1", "a2", "a3")); err != nil {
		t.Fatal(err)
	}
	if n := rc.count(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	req, body := rc.lastRequest()
	if body[0] != '[' {
		t.Errorf("batch body is not an array: %.40q", body)
	}
	if k := req.Header.Get("Idempotency-Key"); k != batchKey([]string{"a1", "a2", "a3"}) || !strings.HasPrefix(k, "batch-") {
		t.Errorf("Idempotency-Key = %q", k)
	}
}

func TestRequestHeadersAndSecrets(t *testing.T) {
	rc := newReceiver(t)
	cfg := rc.config()
	cfg.Headers = map[string]string{"X-Team": "secops"}
	tokenFile := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(tokenFile, []byte("Bearer tok-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.AuthorizationFile = tokenFile
	var logs bytes.Buffer
	s, err := New(cfg, sink.Settings{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBatch(context.Background(), alerts("a1")); err != nil {
		t.Fatal(err)
	}
	req, _ := rc.lastRequest()
	for k, want := range map[string]string{
		"Authorization":   "Bearer tok-123",
		"X-Team":          "secops",
		"Content-Type":    "application/json",
		"User-Agent":      "crowsnest-webhook",
		"Idempotency-Key": "a1",
	} {
		if got := req.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if req.URL.Path != "/hooks/T0001/s3cr3t-token" || req.Method != http.MethodPost {
		t.Errorf("request %s %s", req.Method, req.URL.Path)
	}
	// A failure and a retry-after are logged; neither the token nor the
	// URL's path may be.
	rc.answer = func(w http.ResponseWriter, _ *http.Request, _ []byte) int {
		w.Header().Set("Retry-After", "0")
		return 503
	}
	_ = s.WriteBatch(context.Background(), alerts("a2"))
	rc.answer = func(w http.ResponseWriter, _ *http.Request, _ []byte) int {
		w.Header().Set("Retry-After", "1")
		return 429
	}
	err = s.WriteBatch(context.Background(), alerts("a3"))
	all := logs.String() + err.Error()
	for _, secret := range []string{"tok-123", "s3cr3t-token"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q leaked into logs or errors: %s", secret, all)
		}
	}
	if !strings.Contains(logs.String(), "retry_after=1s") {
		t.Errorf("Retry-After not logged: %s", logs.String())
	}
}

func TestSlackPayload(t *testing.T) {
	rc := newReceiver(t)
	rc.answer = func(http.ResponseWriter, *http.Request, []byte) int { return 200 }
	cfg := rc.config()
	cfg.Payload = PayloadSlack
	s := openTest(t, cfg)
	hostile := []byte(`{"@timestamp":"2026-11-26T10:15:02Z","message":"<!channel> look <http://evil.example|here> & now","event":{"id":"h1","kind":"alert"},"rule":{"name":"Exec into pod","level":"high"}}`)
	batch := append(alerts("a1"), sink.Record{Data: hostile, ID: "h1", Kind: sink.KindAlerts},
		sink.Record{Data: sinktest.EventDoc("e1"), ID: "e1", Kind: sink.KindEvents})
	if err := s.WriteBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	var texts []string
	rc.mu.Lock()
	for _, b := range rc.bodies {
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 {
			t.Fatalf("slack body %q: want exactly {\"text\": ...} (%v)", b, err)
		}
		texts = append(texts, m["text"])
	}
	rc.mu.Unlock()
	golden(t, "slack.golden", strings.Join(slices.Sorted(slices.Values(texts)), "\n")+"\n")
	for _, tx := range texts {
		if strings.Contains(tx, "<!channel>") || strings.Contains(tx, "<http://evil") {
			t.Errorf("event data reached Slack unescaped: %s", tx)
		}
	}
}

func TestSlackBatchIsOneMessage(t *testing.T) {
	rc := newReceiver(t)
	rc.answer = func(http.ResponseWriter, *http.Request, []byte) int { return 200 }
	cfg := rc.config()
	cfg.Payload, cfg.Mode = PayloadSlack, ModeBatch
	cfg.Template = `{{.Get "rule.name"}} {{.ID}}`
	s := openTest(t, cfg)
	if err := s.WriteBatch(context.Background(), alerts("a1", "a2")); err != nil {
		t.Fatal(err)
	}
	_, body := rc.lastRequest()
	if got, want := string(body), `{"text":"Exec into pod a1\nExec into pod a2"}`; got != want || rc.count() != 1 {
		t.Errorf("%d requests, last %s; want 1, %s", rc.count(), got, want)
	}
}

func TestTemplatePayload(t *testing.T) {
	rc := newReceiver(t)
	rc.answer = func(http.ResponseWriter, *http.Request, []byte) int { return 201 }
	cfg := rc.config()
	cfg.Payload = PayloadTemplate
	cfg.ContentType = "application/vnd.tickets+json"
	cfg.Template = `{"summary": {{json (.Get "rule.name")}}, "severity": {{.Get "event.severity"}}, "id": {{json .ID}}}`
	s := openTest(t, cfg)
	hostile := sink.Record{Data: []byte(`{"event":{"id":"q","severity":1},"rule":{"name":"a \"quoted\"\nname"}}`), ID: "q", Kind: sink.KindAlerts}
	noSeverity := sink.Record{Data: []byte(`{"event":{"id":"n"}}`), ID: "n", Kind: sink.KindAlerts}
	err := s.WriteBatch(context.Background(), append(alerts("a1"), hostile, noSeverity))
	for i, want := range []string{"ok", "ok", "permanent"} {
		if got := outcome(err, i); got != want {
			t.Errorf("record %d: %s, want %s (%v)", i, got, want, err)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	want := map[string]bool{
		`{"summary": "Exec into pod", "severity": 73, "id": "a1"}`:    true,
		`{"summary": "a \"quoted\"\nname", "severity": 1, "id": "q"}`: true,
	}
	for i, b := range rc.bodies {
		if !want[string(b)] {
			t.Errorf("body %s not expected", b)
		}
		if ct := rc.requests[i].Header.Get("Content-Type"); ct != cfg.ContentType {
			t.Errorf("Content-Type = %q", ct)
		}
	}
}

func TestTLS(t *testing.T) {
	rc := &receiver{stored: map[string]int{}}
	srv := newTLSServer(t, rc)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := srv.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	base := NewDefaultConfig()
	base.URL = secretURL(srv.URL + "/hook")
	tests := []struct {
		name string
		tls  TLSConfig
		want string
	}{
		{"system roots refuse a private CA", TLSConfig{}, "retryable"},
		{"ca_file pins it", TLSConfig{CAFile: caFile}, "ok"},
		{"insecure_skip_verify, explicitly", TLSConfig{InsecureSkipVerify: true}, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.TLS = tt.tls
			s := openTest(t, cfg)
			err := s.WriteBatch(context.Background(), alerts("a1"))
			if got := outcome(err, 0); got != tt.want {
				t.Errorf("%s (%v), want %s", got, err, tt.want)
			}
			if err != nil {
				var uerr x509.UnknownAuthorityError
				if !errors.As(err, &uerr) && !strings.Contains(err.Error(), "certificate") {
					t.Errorf("error does not say why: %v", err)
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	rc := newReceiver(t)
	n := 0
	rc.answer = func(http.ResponseWriter, *http.Request, []byte) int {
		n++
		if n == 1 {
			return 500
		}
		return 0
	}
	reg := prometheus.NewRegistry()
	s, err := New(rc.config(), sink.Settings{Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.WriteBatch(context.Background(), alerts("a1"))
	_ = s.WriteBatch(context.Background(), alerts("a1"))
	if got := testutil.ToFloat64(s.m.byCode.WithLabelValues("500")); got != 1 {
		t.Errorf("500s counted %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.m.byCode.WithLabelValues("202")); got != 1 {
		t.Errorf("202s counted %v, want 1", got)
	}
	// A second sink in the process shares the series instead of failing.
	if _, err := New(rc.config(), sink.Settings{Metrics: reg}); err != nil {
		t.Errorf("second sink on one registry: %v", err)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
