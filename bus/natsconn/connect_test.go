package natsconn_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", s, l.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newLogger() (*slog.Logger, *logBuffer) {
	var buf logBuffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestConnectUsesJetStreamAndNamesItself(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	cfg := natsconn.NewDefaultConfig()
	cfg.URL = srv.ClientURL()
	cfg.Name = "crowsnest-test-client"
	logger, logs := newLogger()
	nc, js, err := natsconn.Connect(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	connz, err := srv.NATS().Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(connz.Conns) != 1 || connz.Conns[0].Name != "crowsnest-test-client" {
		t.Fatalf("server sees %+v", connz.Conns)
	}
	logs.waitFor(t, "connected to nats")
}

func TestConnectWaitsForServerThenLogsDisconnectAndReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ecfg := natstest.Config(t)
	ecfg.Port = freePort(t)

	cfg := natsconn.NewDefaultConfig()
	cfg.URL = "nats://alice:s3cret-pw@127.0.0.1:" + strconv.Itoa(ecfg.Port)
	cfg.Reconnect.Wait = 100 * time.Millisecond
	cfg.Reconnect.Jitter = 0
	logger, logs := newLogger()

	// The server comes up after the client started trying.
	started := make(chan *embedded.Server, 1)
	go func() {
		time.Sleep(400 * time.Millisecond)
		srv, err := embedded.Start(ctx, ecfg, nil)
		if err != nil {
			t.Error(err)
		}
		started <- srv
	}()
	nc, _, err := natsconn.Connect(ctx, cfg, logger)
	srv := <-started
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer nc.Close()
	if !strings.Contains(logs.String(), "nats not reachable, retrying") {
		t.Errorf("no retry logged:\n%s", logs)
	}

	srv.Shutdown()
	logs.waitFor(t, "disconnected from nats")
	srv2, err := embedded.Start(ctx, ecfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Shutdown()
	logs.waitFor(t, "reconnected to nats")
	nc.Close()
	logs.waitFor(t, "nats connection closed")

	if strings.Contains(logs.String(), "s3cret-pw") {
		t.Fatalf("logs leak the password:\n%s", logs)
	}
}

func TestConnectGivesUpWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	cfg := natsconn.NewDefaultConfig()
	cfg.URL = "nats://127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg.Reconnect.Wait = 50 * time.Millisecond
	start := time.Now()
	_, _, err := natsconn.Connect(ctx, cfg, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("took %s to give up", time.Since(start))
	}
}

func TestConnectFailsFastOnUnfixableConfig(t *testing.T) {
	srv := natstest.Start(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not a seed, not a cert"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*natsconn.Config)
		want   string
	}{
		{"missing creds", func(c *natsconn.Config) { c.CredsFile = filepath.Join(dir, "nope.creds") }, "nats.creds_file:"},
		{"junk nkey", func(c *natsconn.Config) { c.NKeyFile = junk }, "nats.nkey_file: not a usable nkey seed file"},
		{"missing ca", func(c *natsconn.Config) { c.TLS.CAFile = filepath.Join(dir, "ca.pem") }, "nats.tls.ca_file:"},
		{"junk ca", func(c *natsconn.Config) { c.TLS.CAFile = junk }, "nats.tls.ca_file: no PEM certificate"},
		{"junk cert", func(c *natsconn.Config) { c.TLS.CertFile = junk; c.TLS.KeyFile = junk }, "nats.tls.cert_file: load certificate"},
		{"invalid config", func(c *natsconn.Config) { c.ConnectTimeout = 0 }, "nats.connect_timeout: must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cfg := natsconn.NewDefaultConfig()
			cfg.URL = srv.ClientURL()
			tt.modify(&cfg)
			start := time.Now()
			nc, _, err := natsconn.Connect(ctx, cfg, nil)
			if err == nil {
				nc.Close()
				t.Fatal("want error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("took %s: an unfixable config must not be retried", time.Since(start))
			}
		})
	}
}

func TestCloseAndWaitLogsBeforeReturning(t *testing.T) {
	srv := natstest.Start(t)
	cfg := natsconn.NewDefaultConfig()
	cfg.URL = srv.ClientURL()
	logger, logs := newLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, _, err := natsconn.Connect(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	natsconn.CloseAndWait(nc, 5*time.Second)
	if !strings.Contains(logs.String(), "nats connection closed") {
		t.Fatalf("closed handler had not run when CloseAndWait returned:\n%s", logs)
	}
	natsconn.CloseAndWait(nc, time.Second) // already closed: returns at once
}
