package natstest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// startTimeout bounds server start in tests.
const startTimeout = 10 * time.Second

// Config returns the embedded config tests use: 127.0.0.1, a random port,
// data in a fresh t.TempDir, and a max_store generous enough for the default
// topology's reservations (a reservation is bookkeeping, not disk space).
func Config(t testing.TB) embedded.Config {
	t.Helper()
	cfg := embedded.NewDefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.MaxStore = 256 * topology.GiB
	cfg.MaxMemory = 1 * topology.GiB
	return cfg
}

// Start starts a server with Config(t) and shuts it down when the test ends.
func Start(t testing.TB) *embedded.Server {
	t.Helper()
	return StartWith(t, Config(t))
}

// StartWith starts a server with cfg (e.g. to restart on the same DataDir)
// and shuts it down when the test ends. Server warnings and errors go to the
// test log.
func StartWith(t testing.TB, cfg embedded.Config) *embedded.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	w := &testWriter{t: t}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := embedded.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		w.stop()
	})
	return srv
}

// RestartAfter starts a server with cfg after d, in the background: a node
// coming back while clients retry. cfg.Port must be the stopped server's,
// so that its clients reconnect. The returned wait blocks until the server
// is up (or failed to start, which fails the test) and has it shut down when
// the test ends.
func RestartAfter(t testing.TB, cfg embedded.Config, d time.Duration) (wait func()) {
	t.Helper()
	back := make(chan *embedded.Server, 1)
	go func() {
		time.Sleep(d)
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		srv, err := embedded.Start(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Errorf("natstest: restart: %v", err)
		}
		back <- srv
	}()
	return func() {
		if srv := <-back; srv != nil {
			t.Cleanup(srv.Shutdown)
		}
	}
}

// Connect connects to srv and returns the connection and a JetStream handle,
// both closed when the test ends.
func Connect(t testing.TB, srv *embedded.Server, opts ...jetstream.JetStreamOpt) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", srv.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, opts...)
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// StreamMsgs is how many messages stream holds now.
func StreamMsgs(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("natstest: stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("natstest: stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}

// MsgIDs returns the Nats-Msg-Id of stream's messages first..last, in order.
func MsgIDs(t testing.TB, js jetstream.JetStream, stream string, first, last uint64) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("natstest: stream %s: %v", stream, err)
	}
	var ids []string
	for seq := first; seq <= last; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("natstest: %s message %d: %v", stream, seq, err)
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	return ids
}

// testWriter sends log lines to t.Log until stop, after which the test may
// have ended and t.Log would panic.
type testWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(string(p))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
