package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/crowsnest-siem/crowsnest/bus/internal/fielderr"
)

// Server is a running embedded NATS server with JetStream.
type Server struct {
	ns       *server.Server
	logger   *slog.Logger
	shutdown sync.Once
}

// readyPoll is how long one readiness check waits before Start looks at ctx
// and at fatal errors again.
const readyPoll = 50 * time.Millisecond

// Start starts a server per cfg and returns once it accepts client
// connections with JetStream enabled, or with an error when ctx ends first or
// the server fails to start. On error nothing is left running.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("start embedded nats server: invalid config:\n%w", fielderr.Prefix(ConfigKey, err))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats server: data dir %q: %w", cfg.DataDir, err)
	}
	opts := &server.Options{
		ServerName:         "crowsnest-embedded",
		Host:               cfg.Host,
		Port:               cfg.Port,
		JetStream:          true,
		StoreDir:           dataDir,
		JetStreamMaxMemory: int64(cfg.MaxMemory),
		JetStreamMaxStore:  int64(cfg.MaxStore),
		SyncInterval:       cfg.SyncInterval,
		NoSigs:             true, // only main handles signals
		Nkeys:              cfg.NKeyUsers,
	}
	if t := cfg.TLS; t.Enabled() {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: t.CertFile, KeyFile: t.KeyFile, CaFile: t.CAFile, Verify: t.Verify})
		if err != nil {
			return nil, fmt.Errorf("start embedded nats server: %s: %w", ConfigKey+".tls", err)
		}
		opts.TLS, opts.TLSVerify, opts.TLSConfig = true, t.Verify, tc
		opts.TLSCert, opts.TLSKey, opts.TLSCaCert = t.CertFile, t.KeyFile, t.CAFile
		opts.TLSTimeout = t.Timeout.Seconds()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats server: %w", err)
	}
	l := logger.With("component", "nats-server")
	adapter := &slogAdapter{log: l}
	ns.SetLoggerV2(adapter, l.Enabled(ctx, slog.LevelDebug), false, false)

	s := &Server{ns: ns, logger: logger}
	ns.Start() // returns at once; listeners run in the server's goroutines
	for !ns.ReadyForConnections(readyPoll) {
		if msg := adapter.fatalMsg(); msg != "" {
			s.Shutdown()
			return nil, fmt.Errorf("start embedded nats server: %s", msg)
		}
		if err := ctx.Err(); err != nil {
			s.Shutdown()
			return nil, fmt.Errorf("start embedded nats server: not ready: %w", err)
		}
	}
	if !ns.JetStreamEnabled() {
		s.Shutdown()
		msg := adapter.fatalMsg()
		if msg == "" {
			msg = "see the server's error log"
		}
		return nil, fmt.Errorf("start embedded nats server: jetstream did not start: %w", errors.New(msg))
	}
	logger.Info("embedded nats server ready", "url", ns.ClientURL(), "data_dir", dataDir, "version", server.VERSION)
	return s, nil
}

// ClientURL is the URL clients connect to, e.g. nats://127.0.0.1:41234.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// NATS returns the underlying server, for tests that need its internals
// (e.g. JetStream account usage). Production code should not need it.
func (s *Server) NATS() *server.Server { return s.ns }

// Shutdown stops the server and waits until it has: clients are
// disconnected, JetStream flushes and closes its files. It is safe to call
// more than once and from several goroutines.
func (s *Server) Shutdown() {
	s.shutdown.Do(func() {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.logger.Debug("embedded nats server stopped")
	})
}
