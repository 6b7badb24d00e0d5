package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		listen string
		ok     bool
	}{
		{"", true}, // disabled
		{telemetry.DefaultListen, true},
		{"127.0.0.1:0", true},
		{":9464", true},
		{"localhost:9464", true},
		{"[::1]:9464", true},
		{"0.0.0.0:65535", true},
		{"127.0.0.1", false},
		{"9464", false},
		{"127.0.0.1:65536", false},
		{"127.0.0.1:-1", false},
		{"127.0.0.1:http", false},
		{"127.0.0.1:09464", false},
		{"::1:9464", false},
		{"bad host:9464", false},
	}
	for _, tt := range tests {
		err := config.ValidateAll("telemetry", telemetry.Config{Listen: tt.listen})
		if (err == nil) != tt.ok {
			t.Errorf("Listen %q: Validate = %v, want ok=%v", tt.listen, err, tt.ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "telemetry.listen: ") {
			t.Errorf("Listen %q: error %q lacks the field path", tt.listen, err)
		}
	}
	if telemetry.NewDefaultConfig().Listen != telemetry.DefaultListen {
		t.Error("NewDefaultConfig does not listen on DefaultListen")
	}
}

// startServer starts a server on a free loopback port and shuts it down at
// the end of the test.
func startServer(t *testing.T, reg *prometheus.Registry, logger *slog.Logger) (*telemetry.Server, string) {
	t.Helper()
	s := telemetry.New(telemetry.Config{Listen: "127.0.0.1:0"}, reg, logger)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	addr := s.Addr()
	if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q; want the bound 127.0.0.1 port", addr)
	}
	return s, "http://" + addr
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestServerEndpoints(t *testing.T) {
	reg := telemetry.NewRegistry()
	metrics, err := telemetry.NewComponentMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	metrics.Component(telemetry.KindSink, "file").Sent(5)
	_, base := startServer(t, reg, nil)

	code, body, _ := get(t, base+"/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}

	code, body, hdr := get(t, base+"/metrics")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("/metrics = %d, %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`crowsnest_component_sent_events_total{component_id="file",component_kind="sink"} 5`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	code, body, _ = get(t, base+"/readyz")
	if code != http.StatusOK || body != `{"status":"ready","checks":{}}`+"\n" {
		t.Errorf("/readyz with no checks = %d %q", code, body)
	}

	for _, path := range []string{"/", "/debug/pprof/", "/metricsx"} {
		if code, _, _ := get(t, base+path); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}
	resp, err := http.Post(base+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
	}
}

func TestReadiness(t *testing.T) {
	var logs syncBuffer
	s := telemetry.New(telemetry.Config{}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(&logs, nil)))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	var mu sync.Mutex
	natsErr := errors.New("nats: no servers available")
	s.RegisterReadiness("nats", func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return natsErr
	})
	s.RegisterReadiness("clickhouse", func(ctx context.Context) error { return ctx.Err() })

	readyz := func() (int, map[string]any) {
		t.Helper()
		code, body, hdr := get(t, srv.URL+"/readyz")
		if hdr.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", hdr.Get("Content-Type"))
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("/readyz body %q: %v", body, err)
		}
		return code, out
	}

	code, body := readyz()
	want := map[string]any{"status": "not ready", "checks": map[string]any{"nats": "nats: no servers available", "clickhouse": "ok"}}
	if code != http.StatusServiceUnavailable || !jsonEqual(body, want) {
		t.Errorf("/readyz = %d %v; want 503 %v", code, body, want)
	}
	readyz() // still failing: logged once, not on every probe

	mu.Lock()
	natsErr = nil
	mu.Unlock()
	code, body = readyz()
	want = map[string]any{"status": "ready", "checks": map[string]any{"nats": "ok", "clickhouse": "ok"}}
	if code != http.StatusOK || !jsonEqual(body, want) {
		t.Errorf("/readyz = %d %v; want 200 %v", code, body, want)
	}

	out := logs.String()
	if strings.Count(out, `msg="not ready" check=nats error="nats: no servers available"`) != 1 ||
		strings.Count(out, `msg="ready again" check=nats`) != 1 || strings.Contains(out, "clickhouse") {
		t.Errorf("readiness logs: want one failure and one recovery of nats:\n%s", out)
	}

	// Registering a name again replaces the check.
	s.RegisterReadiness("clickhouse", func(context.Context) error { return errors.New("replaced") })
	if code, body = readyz(); code != http.StatusServiceUnavailable || body["checks"].(map[string]any)["clickhouse"] != "replaced" {
		t.Errorf("/readyz after replacing = %d %v", code, body)
	}
}

func TestReadinessCheckPanics(t *testing.T) {
	s := telemetry.New(telemetry.Config{}, nil, nil)
	s.RegisterReadiness("bad", func(context.Context) error { panic("boom") })
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "check panicked: boom") {
		t.Errorf("/readyz = %d %q", rec.Code, rec.Body)
	}
}

func TestReadinessCheckGetsCancelledContext(t *testing.T) {
	s := telemetry.New(telemetry.Config{}, nil, nil)
	returned := make(chan error, 1)
	s.RegisterReadiness("slow", func(ctx context.Context) error {
		<-ctx.Done()
		returned <- ctx.Err()
		return ctx.Err()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	rec := httptest.NewRecorder()
	start := time.Now()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
	if rec.Code != http.StatusServiceUnavailable || time.Since(start) > telemetry.ReadinessCheckTimeout {
		t.Errorf("/readyz = %d after %v", rec.Code, time.Since(start))
	}
	if err := <-returned; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("check context ended with %v", err)
	}
}

func TestRegisterNilCheckPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("RegisterReadiness(nil) did not panic")
		}
	}()
	telemetry.New(telemetry.Config{}, nil, nil).RegisterReadiness("x", nil)
}

func TestServerLifecycle(t *testing.T) {
	ctx := t.Context()

	t.Run("shutdown without start, twice", func(t *testing.T) {
		s := telemetry.New(telemetry.Config{Listen: "127.0.0.1:0"}, nil, nil)
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err == nil {
			t.Error("Start after Shutdown succeeded")
		}
	})

	t.Run("start twice", func(t *testing.T) {
		s, _ := startServer(t, nil, nil)
		if err := s.Start(ctx); err == nil {
			t.Error("second Start succeeded")
		}
	})

	t.Run("disabled", func(t *testing.T) {
		s := telemetry.New(telemetry.Config{}, nil, nil)
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if s.Addr() != "" {
			t.Errorf("Addr = %q for a disabled server", s.Addr())
		}
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("invalid listen", func(t *testing.T) {
		s := telemetry.New(telemetry.Config{Listen: "127.0.0.1:http"}, nil, nil)
		if err := s.Start(ctx); err == nil {
			t.Error("Start succeeded with an invalid address")
		}
	})

	t.Run("port in use", func(t *testing.T) {
		_, base := startServer(t, nil, nil)
		s := telemetry.New(telemetry.Config{Listen: strings.TrimPrefix(base, "http://")}, nil, nil)
		if err := s.Start(ctx); err == nil {
			t.Error("Start succeeded on a port in use")
		}
	})

	t.Run("shutdown stops serving and frees the port, concurrent calls agree", func(t *testing.T) {
		s := telemetry.New(telemetry.Config{Listen: "127.0.0.1:0"}, nil, nil)
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		addr := s.Addr()
		if code, _, _ := get(t, "http://"+addr+"/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz = %d", code)
		}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i := range errs {
			wg.Go(func() { errs[i] = s.Shutdown(ctx) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}
		if s.Addr() != "" {
			t.Errorf("Addr after Shutdown = %q", s.Addr())
		}
		client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		if resp, err := client.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			t.Error("server still answers after Shutdown")
		}
		again := telemetry.New(telemetry.Config{Listen: addr}, nil, nil)
		if err := again.Start(ctx); err != nil {
			t.Errorf("port not freed: %v", err)
		}
		if err := again.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})

	t.Run("shutdown waits for a request in flight", func(t *testing.T) {
		s, base := startServer(t, nil, nil)
		entered, release := make(chan struct{}), make(chan struct{})
		s.RegisterReadiness("slow", func(context.Context) error {
			close(entered)
			<-release
			return nil
		})
		codes := make(chan int, 1)
		go func() {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
		<-entered
		shutDone := make(chan error, 1)
		go func() { shutDone <- s.Shutdown(ctx) }()
		select {
		case err := <-shutDone:
			t.Fatalf("Shutdown returned (%v) with a request in flight", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		if code := <-codes; code != http.StatusOK {
			t.Errorf("in-flight request got %d", code)
		}
		if err := <-shutDone; err != nil {
			t.Error(err)
		}
	})

	t.Run("shutdown deadline closes what remains", func(t *testing.T) {
		s := telemetry.New(telemetry.Config{Listen: "127.0.0.1:0"}, nil, nil)
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		base := "http://" + s.Addr()
		entered, release := make(chan struct{}), make(chan struct{})
		defer close(release)
		s.RegisterReadiness("stuck", func(context.Context) error {
			close(entered)
			<-release
			return nil
		})
		go func() {
			if resp, err := http.Get(base + "/readyz"); err == nil {
				resp.Body.Close()
			}
		}()
		<-entered
		sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- s.Shutdown(sctx) }()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown = %v; want it to wrap context.DeadlineExceeded", err)
			}
			if again := s.Shutdown(ctx); again == nil || again.Error() != err.Error() {
				t.Errorf("second Shutdown = %v; want the first one's result", again)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Shutdown did not return after its deadline")
		}
	})
}

func jsonEqual(a, b map[string]any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// syncBuffer is a bytes.Buffer for a logger written by server goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
