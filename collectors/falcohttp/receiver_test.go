package falcohttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/ingress/ingresstest"
)

type fixture struct {
	bus *bustest.Bus
	rcv *Receiver
}

func start(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	b := bustest.Start(t)
	cfg := NewDefaultConfig()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.AllowInsecureLoopback = true
	cfg.Server.RequestTimeout = time.Second
	cfg.Server.RetryAfter = 2 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg, Settings{Publisher: b.Publisher(t, bustest.PublishConfig())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
	return &fixture{bus: b, rcv: r}
}

func post(t testing.TB, c *http.Client, url, file string, hdr ...string) (int, http.Header) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "bodies", file))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

func TestAlertsStoredBeforeOK(t *testing.T) {
	f := start(t, nil)
	c := http.DefaultClient
	for _, tc := range []struct {
		file string
		want int
	}{
		{"sidekick.json", 200},
		{"http_output.json", 200},
		{"lines.jsonl", 200},
		{"array_of_numbers.json", 400},
		{"sidekick.json", 200}, // a retry: stored once
	} {
		if code, _ := post(t, c, f.rcv.URL(), tc.file); code != tc.want {
			t.Errorf("%s: POST = %d, want %d", tc.file, code, tc.want)
		}
	}
	got := bustest.IDs(f.bus.Messages(t, bustest.StreamFalco))
	want := []string{"81ca650a-66c5-415b-a38e-7d556051daf5", "falco-00f23e9a790732e36d4dcd5ff18dd561",
		"03cfef69-d187-425f-a411-ecf5f5fb7ec5", "9746f6d4-e2d8-4579-af70-1543942daa09", "9692173e-90d0-4f1b-aada-19f2627f4e9a"}
	if !slices.Equal(got, want) {
		t.Errorf("stored ids = %v\nwant %v", got, want)
	}
	if n := len(f.bus.Messages(t, bustest.StreamDLQ)); n != 4 {
		t.Errorf("dead-letter stream holds %d, want 4", n)
	}
}

func TestTokenAndTLS(t *testing.T) {
	pki := ingresstest.NewPKI(t)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("falco-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := start(t, func(c *Config) {
		c.Server.AllowInsecureLoopback = false
		c.Server.TLS.CertFile, c.Server.TLS.KeyFile = pki.ServerCert, pki.ServerKey
		c.Server.BearerTokenFile = tok
		c.Path = "/falco"
	})
	c := pki.Client(t, "", "")
	if code, _ := post(t, c, f.rcv.URL(), "sidekick.json"); code != http.StatusUnauthorized {
		t.Errorf("no token = %d, want 401", code)
	}
	if code, _ := post(t, c, f.rcv.URL(), "sidekick.json", "Authorization", "Bearer falco-token"); code != http.StatusOK {
		t.Errorf("token = %d, want 200", code)
	}
}

func TestUnavailable(t *testing.T) {
	f := start(t, nil)
	f.bus.Stop()
	code, hdr := post(t, http.DefaultClient, f.rcv.URL(), "sidekick.json")
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "2" {
		t.Fatalf("JetStream down: POST = %d (Retry-After %q), want 503 with Retry-After 2", code, hdr.Get("Retry-After"))
	}
	f.bus.Restart(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := post(t, http.DefaultClient, f.rcv.URL(), "sidekick.json"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never accepted after restart")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(f.bus.Messages(t, bustest.StreamFalco)); n != 1 {
		t.Errorf("stream holds %d, want 1", n)
	}
}
