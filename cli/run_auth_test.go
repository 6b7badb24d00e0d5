package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestRunAllInOneWithAuth runs `crowsnest run` with embedded.auth_dir, on
// plain TCP and with an embedded server requiring client certificates: the
// real collectors, processor and file sink each connect with their own seed
// (and the CA and client certificate), the sample reaches the file sink, and
// the server logs no permission violation, so each stage needs no more than
// its identity allows. Meanwhile a client with no credentials (but a
// certificate, where one is required), and one with the admin seed but no
// certificate, are refused.
func TestRunAllInOneWithAuth(t *testing.T) {
	for _, mtls := range []bool{false, true} {
		name := "nkeys"
		if mtls {
			name = "nkeys and mutual TLS"
		}
		t.Run(name, func(t *testing.T) { runWithAuth(t, mtls) })
	}
}

func runWithAuth(t *testing.T, mtls bool) {
	dir := t.TempDir()
	cfg := newDefaultConfig()
	cfg.DataDir = dir
	cfg.Telemetry.Listen = "127.0.0.1:0"
	cfg.Sinks.Terminal.Enabled = false
	cfg.Collectors.Replay.Rate = 0
	cfg.Collectors.Replay.MaxEvents = 200
	cfg.Collectors.Publish.CollectorID = "laptop"
	cfg.Sinks.File.Runner.FlushInterval = 50 * time.Millisecond
	cfg.Embedded.AuthDir = filepath.Join(dir, "auth")
	cfg.Embedded.Port = freeTCPPort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(cfg.Embedded.Port)
	if mtls {
		pki := natstest.NewPKI(t)
		cfg.Embedded.TLS = embedded.TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, CAFile: pki.CAFile, Verify: true}
		cfg.NATS.TLS = natsconn.TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
		url = "tls://127.0.0.1:" + strconv.Itoa(cfg.Embedded.Port)
	}
	cfg.resolve()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runAllInOne(ctx, cfg, 20*time.Second, logger, io.Discard) }()

	refusedWith := func(modify func(*natsconn.Config)) error {
		c := natsconn.NewDefaultConfig()
		c.URL = url
		c.Reconnect.Wait = 100 * time.Millisecond
		c.TLS = cfg.NATS.TLS
		modify(&c)
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		nc, _, err := natsconn.Connect(cctx, c, nil) // waits while the server is not up yet
		if err == nil {
			nc.Close()
			return errors.New("connected")
		}
		return err
	}
	if err := refusedWith(func(*natsconn.Config) {}); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("a client with no credentials: %v, want an authorization violation", err)
	}
	if mtls {
		if err := refusedWith(func(c *natsconn.Config) {
			c.NKeyFile = authz.SeedFile(cfg.Embedded.AuthDir, authz.Identity{Role: authz.RoleAdmin})
			c.TLS.CertFile, c.TLS.KeyFile = "", ""
		}); err == nil || !strings.Contains(err.Error(), "refused this client's TLS certificate") {
			t.Errorf("a client with the admin seed and no certificate: %v, want refused", err)
		}
	}

	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	if n := len(readEvents(t, dir)); n < 200 {
		t.Fatalf("stored %d events, want >= 200\n%s", n, logs.String())
	}
	if s := logs.String(); strings.Contains(strings.ToLower(s), "violation") {
		t.Fatalf("a stage was refused something it needs:\n%s", s)
	}
	for _, id := range []string{"admin", "processor", "collector-laptop", "sink-file"} {
		if !strings.Contains(logs.String(), "identity="+id) {
			t.Errorf("no connection as %s in the log", id)
		}
		fi, err := os.Stat(filepath.Join(cfg.Embedded.AuthDir, id+".nk"))
		if err != nil {
			t.Errorf("seed %s: %v", id, err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("seed %s: mode %v, want 0600", id, fi.Mode().Perm())
		}
	}
}

func TestEmbeddedTLSAndAuthConfig(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // "" means valid
	}{
		{"tls with the clients' CA", func(c *Config) {
			c.Embedded.TLS = embedded.TLSConfig{CertFile: "s.pem", KeyFile: "s.key"}
			c.NATS.TLS.CAFile = "ca.pem"
		}, ""},
		{"tls without the clients' CA", func(c *Config) {
			c.Embedded.TLS = embedded.TLSConfig{CertFile: "s.pem", KeyFile: "s.key"}
		}, "nats.tls.ca_file"},
		{"verify without a client certificate", func(c *Config) {
			c.Embedded.TLS = embedded.TLSConfig{CertFile: "s.pem", KeyFile: "s.key", CAFile: "ca.pem", Verify: true}
			c.NATS.TLS.CAFile = "ca.pem"
		}, "nats.tls.cert_file"},
		{"verify without a server certificate", func(c *Config) { c.Embedded.TLS.Verify = true }, "embedded.tls"},
		{"client key without certificate", func(c *Config) { c.NATS.TLS.KeyFile = "k.pem" }, "nats.tls: cert_file and key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := newDefaultConfig()
			tt.modify(&cfg)
			cfg.resolve()
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}

	// A collector id that cannot be an identity is refused before anything starts.
	cfg := newDefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Telemetry.Listen = ""
	cfg.Embedded.AuthDir = filepath.Join(cfg.DataDir, "auth")
	cfg.Collectors.Publish.CollectorID = "Laptop"
	cfg.resolve()
	err := runAllInOne(context.Background(), cfg, time.Second, slog.New(slog.DiscardHandler), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "embedded.auth_dir") || !strings.Contains(err.Error(), `"laptop"`) {
		t.Fatalf("run with collector id Laptop = %v, want an embedded.auth_dir error suggesting laptop", err)
	}
}
