package k8swebhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/ingress/ingresstest"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

type fixture struct {
	bus *bustest.Bus
	pki *ingresstest.PKI
	pub *publish.Publisher
	rcv *Receiver
}

// start runs a receiver over a real embedded JetStream. mod adjusts the
// config, which starts as TLS with client certificates.
func start(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	b := bustest.Start(t)
	pki := ingresstest.NewPKI(t)
	cfg := NewDefaultConfig()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.TLS.CertFile, cfg.Server.TLS.KeyFile, cfg.Server.TLS.ClientCAFile = pki.ServerCert, pki.ServerKey, pki.CAFile
	cfg.Server.RequestTimeout = 2 * time.Second
	cfg.Server.RetryAfter = time.Second
	if mod != nil {
		mod(&cfg)
	}
	pub := b.Publisher(t, bustest.PublishConfig())
	r, err := New(cfg, Settings{Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	})
	return &fixture{bus: b, pki: pki, pub: pub, rcv: r}
}

func (f *fixture) client(t testing.TB) *http.Client {
	return f.pki.Client(t, f.pki.ClientCert, f.pki.ClientKey)
}

func post(t testing.TB, c *http.Client, url string, body []byte, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func body(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bodies", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func eventList(from, to int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`)
	for i := from; i < to; i++ {
		if i > from {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"level":"Metadata","auditID":"id-%06d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods","verb":"list","user":{"username":"dave@example.com"},"responseStatus":{"code":200},"stageTimestamp":"2026-03-10T09:00:01.000000Z"}`, i)
	}
	b.WriteString("]}")
	return b.Bytes()
}

func TestBatchPublishedBeforeOK(t *testing.T) {
	f := start(t, nil)
	code, _, msg := post(t, f.client(t), f.rcv.URL(), body(t, "mixed.json"))
	if code != http.StatusOK {
		t.Fatalf("POST = %d %s, want 200", code, msg)
	}
	// 200 means stored: read the streams at once, no waiting.
	raw := f.bus.Messages(t, bustest.StreamK8sAudit)
	if got := bustest.IDs(raw); !slices.Equal(got, []string{
		"8a1f3c2e-0b7d-4c5e-9f21-6d3b2a1c0e4f-ResponseComplete",
		"a_b__-ResponseComplete-5e8e17b428a66f38c1ed2f0bb6fadb35",
	}) {
		t.Errorf("raw ids = %v", got)
	}
	if !strings.HasPrefix(string(raw[0].Data), `{"level":"Metadata","auditID":"8a1f3c2e`) || !strings.HasSuffix(string(raw[0].Data), `}}`) {
		t.Errorf("raw record is not the item's bytes: %s", raw[0].Data)
	}
	dlq := f.bus.Messages(t, bustest.StreamDLQ)
	if len(dlq) != 4 {
		t.Fatalf("dead-letter stream holds %d records, want 4 (the malformed items)", len(dlq))
	}
	for _, m := range dlq {
		if m.Subject != "crowsnest.dlq.collector.k8s_audit.test-collector" || !strings.Contains(m.Header.Get("Crowsnest-Error"), "audit webhook: items[") {
			t.Errorf("dead-letter record %s: subject %s, error %q", m.ID, m.Subject, m.Header.Get("Crowsnest-Error"))
		}
	}

	// The API server retrying the same batch stores nothing new.
	if code, _, msg := post(t, f.client(t), f.rcv.URL(), body(t, "mixed.json")); code != http.StatusOK {
		t.Fatalf("second POST = %d %s", code, msg)
	}
	if n := len(f.bus.Messages(t, bustest.StreamK8sAudit)); n != 2 {
		t.Errorf("after a repeat the stream holds %d, want 2", n)
	}
}

func TestRejectsBadBodies(t *testing.T) {
	f := start(t, func(c *Config) { c.Server.MaxBodyBytes = 4096 })
	c := f.client(t)
	for _, tc := range []struct {
		name string
		body []byte
		want int
	}{
		{"single_event.json", body(t, "single_event.json"), http.StatusBadRequest},
		{"truncated.json", body(t, "truncated.json"), http.StatusBadRequest},
		{"v1beta1.json", body(t, "v1beta1.json"), http.StatusBadRequest},
		{"too large", eventList(0, 100), http.StatusRequestEntityTooLarge},
		{"empty.json", body(t, "empty.json"), http.StatusOK},
	} {
		if code, _, msg := post(t, c, f.rcv.URL(), tc.body); code != tc.want {
			t.Errorf("%s: POST = %d %s, want %d", tc.name, code, msg, tc.want)
		}
	}
	// Each 400 body was kept in the dead-letter stream.
	if n := len(f.bus.Messages(t, bustest.StreamDLQ)); n != 3 {
		t.Errorf("dead-letter stream holds %d, want 3", n)
	}
	if code, _, _ := post(t, c, strings.TrimSuffix(f.rcv.URL(), "/audit")+"/other", body(t, "valid.json")); code != http.StatusNotFound {
		t.Errorf("other path = %d, want 404", code)
	}
	req, _ := http.NewRequest(http.MethodGet, f.rcv.URL(), nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %v %v, want 405", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestClientCertificateRequired(t *testing.T) {
	f := start(t, nil)
	for name, c := range map[string]*http.Client{
		"no certificate":      f.pki.Client(t, "", ""),
		"another CA's client": f.pki.Client(t, f.pki.OtherClientCert, f.pki.OtherClientKey),
	} {
		if code, _, msg := post(t, c, f.rcv.URL(), body(t, "valid.json")); code != 0 {
			t.Errorf("%s: POST = %d, want a failed handshake", name, code)
		} else if !looksLikeTLSRefusal(msg) {
			t.Errorf("%s: error %q does not look like a TLS refusal", name, msg)
		}
	}
	if n := len(f.bus.Messages(t, bustest.StreamK8sAudit)); n != 0 {
		t.Errorf("unauthenticated requests stored %d events", n)
	}
}

// looksLikeTLSRefusal accepts how a client sees a rejected certificate. With
// TLS 1.3 the client's side of the handshake completes before the server
// checks the certificate, so the client may meet the server's alert, or only
// the closed connection while it is still writing the request.
func looksLikeTLSRefusal(msg string) bool {
	for _, s := range []string{"tls", "certificate", "broken pipe", "connection reset", "EOF"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func TestBearerToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := start(t, func(c *Config) {
		c.Server.TLS.ClientCAFile = ""
		c.Server.BearerTokenFile = tokenFile
	})
	c := f.pki.Client(t, "", "")
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"Bearer s3cret-token-longer", http.StatusUnauthorized},
		{"Basic czNjcmV0LXRva2Vu", http.StatusUnauthorized},
		{"Bearer s3cret-token", http.StatusOK},
		{"bearer s3cret-token", http.StatusOK},
	} {
		code, hdr, msg := post(t, c, f.rcv.URL(), body(t, "valid.json"), "Authorization", tc.auth)
		if code != tc.want {
			t.Errorf("Authorization %q: POST = %d %s, want %d", tc.auth, code, msg, tc.want)
		}
		if code == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
	if n := len(f.bus.Messages(t, bustest.StreamK8sAudit)); n != 3 {
		t.Errorf("stream holds %d, want 3", n)
	}
}

// TestUnavailableThenRetried: with JetStream down the batch is answered 503
// with Retry-After (and 429 past the in-flight bound); once it is back the
// API server's retry is stored, exactly once.
func TestUnavailableThenRetried(t *testing.T) {
	f := start(t, func(c *Config) {
		c.Server.RequestTimeout = 700 * time.Millisecond
		c.Server.MaxInFlightRequests = 1
	})
	c := f.client(t)
	batch := eventList(0, 50)
	f.bus.Stop()

	var wg sync.WaitGroup
	wg.Add(1)
	var code int
	var hdr http.Header
	go func() {
		defer wg.Done()
		code, hdr, _ = post(t, c, f.rcv.URL(), batch)
	}()
	// A second batch while the first holds the only slot: 429.
	time.Sleep(200 * time.Millisecond) // the first is in (its wait is 700ms)
	deadline := time.Now().Add(5 * time.Second)
	got429 := false
	for !got429 && time.Now().Before(deadline) {
		c2, h2, _ := post(t, c, f.rcv.URL(), eventList(50, 51))
		if c2 == http.StatusTooManyRequests {
			got429 = h2.Get("Retry-After") == "1"
		}
		if c2 == http.StatusServiceUnavailable { // the first already finished
			break
		}
	}
	wg.Wait()
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "1" {
		t.Fatalf("POST with JetStream down = %d (Retry-After %q), want 503 with Retry-After 1", code, hdr.Get("Retry-After"))
	}
	if !got429 {
		t.Errorf("no 429 with Retry-After while the in-flight bound was held")
	}

	f.bus.Restart(t)
	deadline = time.Now().Add(20 * time.Second)
	for {
		code, _, msg := post(t, c, f.rcv.URL(), batch)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST after restart = %d %s", code, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ms := f.bus.Messages(t, bustest.StreamK8sAudit)
	ids := bustest.IDs(ms)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ms) < 50 || len(ids) != len(ms) {
		t.Fatalf("stream holds %d messages, %d distinct; want the 50 of the batch once each (plus the 429 probe at most)", len(ms), len(ids))
	}
}

func TestInsecureOnlyOnLoopback(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Server.Listen = "0.0.0.0:9443"
	cfg.Server.AllowInsecureLoopback = true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("plain HTTP on 0.0.0.0: Validate = %v, want a loopback error", err)
	}
	cfg.Server.AllowInsecureLoopback = false
	cfg.Server.Listen = "127.0.0.1:9443"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "cert_file") {
		t.Errorf("no TLS, not allowed: Validate = %v", err)
	}
	cfg.Server.TLS.CertFile, cfg.Server.TLS.KeyFile = "c.pem", "k.pem"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "authenticate") {
		t.Errorf("TLS without client auth: Validate = %v, want an authentication error", err)
	}
	cfg.Server.TLS.MinVersion = "1.1"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "min_version") {
		t.Errorf("TLS 1.1: Validate = %v", err)
	}

	f := start(t, func(c *Config) {
		c.Server.TLS = NewDefaultConfig().Server.TLS
		c.Server.AllowInsecureLoopback = true
	})
	if !strings.HasPrefix(f.rcv.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL = %s", f.rcv.URL())
	}
	if code, _, msg := post(t, http.DefaultClient, f.rcv.URL(), body(t, "valid.json")); code != http.StatusOK {
		t.Errorf("plain HTTP on loopback = %d %s", code, msg)
	}
}

// BenchmarkWebhookTLS posts EventList batches of 100 events over TLS with
// client certificates to a receiver publishing to an embedded JetStream,
// each answered after every ack: events/s end to end.
func BenchmarkWebhookTLS(b *testing.B) {
	f := start(b, func(c *Config) { c.Server.RequestTimeout = 30 * time.Second })
	c := f.client(b)
	const perBatch = 100
	var n atomic.Int64
	b.SetParallelism(4) // the API server sends batches concurrently
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			body := eventList(i*perBatch, (i+1)*perBatch)
			if code, _, msg := post(b, c, f.rcv.URL(), body); code != http.StatusOK {
				b.Errorf("POST = %d %s", code, msg)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*perBatch)/time.Since(start).Seconds(), "events/s")
}

// TestNotReadyAnswersAtOnce: when nothing can take records the API server
// is told so at once, not after request_timeout.
func TestNotReadyAnswersAtOnce(t *testing.T) {
	b := bustest.Start(t)
	cfg := NewDefaultConfig()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.AllowInsecureLoopback = true
	cfg.Server.RequestTimeout = 30 * time.Second
	ready := errors.New("bus down")
	r, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig()), Ready: func() error { return ready }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	start := time.Now()
	code, hdr, msg := post(t, http.DefaultClient, r.URL(), body(t, "valid.json"))
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(msg, "bus down") || time.Since(start) > 5*time.Second {
		t.Errorf("not ready: POST = %d %q (Retry-After %q) after %s", code, msg, hdr.Get("Retry-After"), time.Since(start))
	}
	if n := len(b.Messages(t, bustest.StreamK8sAudit)); n != 0 {
		t.Errorf("stored %d events while not ready", n)
	}
}
