// Package bustest gives collector tests a real embedded JetStream with
// crowsnest's topology, a publisher over it, a way to stop and restart the
// server on the same store (an outage), and readers of what the streams
// hold.
package bustest

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Bus is an embedded server with the topology and a reconnecting client.
type Bus struct {
	Srv *embedded.Server
	Cfg embedded.Config
	NC  *nats.Conn
	JS  jetstream.JetStream
}

// Start starts the server and connects a client that reconnects forever,
// quickly, so that tests can stop and restart the server.
func Start(t testing.TB) *Bus {
	t.Helper()
	cfg := natstest.Config(t)
	srv := natstest.StartWith(t, cfg)
	// Pin the port so that a restart comes back where the client looks.
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port, err = strconv.Atoi(u.Port()); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.Name(t.Name()),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, js, topology.NewDefaultConfig()); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return &Bus{Srv: srv, Cfg: cfg, NC: nc, JS: js}
}

// Stop shuts the server down (an outage); Restart brings it back on the
// same port and store.
func (b *Bus) Stop() { b.Srv.Shutdown() }

// Restart starts the server again on the same port and store, and waits
// until the client reconnected.
func (b *Bus) Restart(t testing.TB) {
	t.Helper()
	b.Srv = natstest.StartWith(t, b.Cfg)
	deadline := time.Now().Add(10 * time.Second)
	for b.NC.Status() != nats.CONNECTED {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PublishConfig is a publisher config for tests: fixed identity, quick
// retries.
func PublishConfig() publish.Config {
	cfg := publish.NewDefaultConfig()
	cfg.CollectorID = "test-collector"
	cfg.Node = "node-a"
	cfg.AckTimeout = time.Second
	cfg.Retry.InitialBackoff = 10 * time.Millisecond
	cfg.Retry.MaxBackoff = 200 * time.Millisecond
	return cfg
}

// Publisher returns a publisher over b, closed when the test ends.
func (b *Bus) Publisher(t testing.TB, cfg publish.Config, mod ...func(*publish.Settings)) *publish.Publisher {
	t.Helper()
	s := publish.Settings{Conn: b.NC}
	for _, m := range mod {
		m(&s)
	}
	pub, err := publish.New(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pub.Close(ctx) // a test that cares closes it itself
	})
	return pub
}

// Msg is one stored message.
type Msg struct {
	Subject string
	ID      string
	Data    []byte
	Header  nats.Header
}

// Messages returns everything stream holds, in order.
func (b *Bus) Messages(t testing.TB, stream string) []Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := b.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	var out []Msg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s get %d: %v", stream, seq, err)
		}
		out = append(out, Msg{Subject: m.Subject, ID: m.Header.Get(headers.MsgID), Data: m.Data, Header: m.Header})
	}
	return out
}

// WaitMessages waits until stream holds at least n messages and returns
// them; it fails the test after timeout.
func (b *Bus) WaitMessages(t testing.TB, stream string, n int, timeout time.Duration) []Msg {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := b.Messages(t, stream)
		if len(ms) >= n {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s holds %d messages after %s, want %d", stream, len(ms), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// IDs returns the message ids of ms.
func IDs(ms []Msg) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// Stream names used by collector tests.
const (
	StreamK8sAudit  = "CROWSNEST_RAW_K8S_AUDIT"
	StreamFalco     = "CROWSNEST_RAW_FALCO"
	StreamDocker    = "CROWSNEST_RAW_DOCKER"
	StreamAuditd    = "CROWSNEST_RAW_AUDITD"
	StreamProcwatch = "CROWSNEST_RAW_PROCWATCH"
	StreamJSON      = "CROWSNEST_RAW_JSON"
	StreamTetragon  = "CROWSNEST_RAW_TETRAGON"
	StreamDLQ       = "CROWSNEST_DLQ"
)
