package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*embedded.Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(*embedded.Config) {}, nil},
		{"fixed port", func(c *embedded.Config) { c.Port = 4222 }, nil},
		{"no data dir", func(c *embedded.Config) { c.DataDir = "" }, []string{"data_dir: must be set"}},
		{"no host", func(c *embedded.Config) { c.Host = "" }, []string{"host: must be set"}},
		{"bad port", func(c *embedded.Config) { c.Port = 70000 }, []string{"port: must be -1"}},
		{"negative sizes", func(c *embedded.Config) { c.MaxStore = -1; c.MaxMemory = -2 },
			[]string{"max_store: must be >= 0", "max_memory: must be >= 0"}},
		{"negative sync", func(c *embedded.Config) { c.SyncInterval = -time.Second }, []string{"sync_interval"}},
		{"tls", func(c *embedded.Config) {
			c.TLS = embedded.TLSConfig{CertFile: "s.pem", KeyFile: "s.key", CAFile: "ca.pem", Verify: true}
		}, nil},
		{"tls cert without key", func(c *embedded.Config) { c.TLS.CertFile = "s.pem" }, []string{"tls: cert_file and key_file go together"}},
		{"tls verify without ca", func(c *embedded.Config) {
			c.TLS = embedded.TLSConfig{CertFile: "s.pem", KeyFile: "s.key", Verify: true}
		},
			[]string{"tls.ca_file: must be set with verify"}},
		{"tls verify without a certificate", func(c *embedded.Config) { c.TLS.Verify = true }, []string{"tls: ca_file and verify need cert_file"}},
		{"tls negative timeout", func(c *embedded.Config) {
			c.TLS = embedded.TLSConfig{CertFile: "s.pem", KeyFile: "s.key", Timeout: -time.Second}
		}, []string{"tls.timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := embedded.NewDefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestStartConnectShutdown(t *testing.T) {
	srv := natstest.Start(t)
	if !strings.HasPrefix(srv.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q, want nats://127.0.0.1:<port>", srv.ClientURL())
	}
	nc, js := natstest.Connect(t, srv)
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatalf("AccountInfo: %v (JetStream not enabled?)", err)
	}
	jsc := srv.NATS().JetStreamConfig()
	if jsc == nil || jsc.MaxStore != int64(256*topology.GiB) || jsc.MaxMemory != int64(topology.GiB) {
		t.Errorf("JetStream config = %+v, want the configured max_store and max_memory", jsc)
	}
	srv.Shutdown()
	srv.Shutdown() // idempotent
	deadline := time.Now().Add(5 * time.Second)
	for nc.IsConnected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if nc.IsConnected() {
		t.Fatal("client still connected after Shutdown")
	}
}

func TestStartFailsWhenPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := natstest.Config(t)
	cfg.Port = l.Addr().(*net.TCPAddr).Port

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	srv, err := embedded.Start(ctx, cfg, nil)
	if err == nil {
		srv.Shutdown()
		t.Fatal("Start on a taken port: want error")
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Start took %s to fail; want it to notice the listen error promptly", time.Since(start))
	}
	if ctx.Err() != nil {
		t.Errorf("Start failed only by the context deadline: %v", err)
	}
}

func TestStartHonoursCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv, err := embedded.Start(ctx, natstest.Config(t), nil)
	if err == nil {
		// The server may become ready before the first context check; that
		// is fine, but then it must be usable and stoppable.
		srv.Shutdown()
		return
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestStartRejectsInvalidConfig(t *testing.T) {
	cfg := natstest.Config(t)
	cfg.DataDir = ""
	if _, err := embedded.Start(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "embedded.data_dir") {
		t.Fatalf("Start = %v, want the validation error", err)
	}
}

// A restart on the same DataDir keeps the streams, their messages, the
// consumers and their ack state: the processor resumes where it stopped.
func TestRestartKeepsStreamsMessagesAndConsumers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := natstest.Config(t)
	tcfg := topology.NewDefaultConfig()
	tcfg.Partitions = 1 // every record below in partition 0
	tcfg.Consumers.Processor.PinnedTTL = 0

	srv := natstest.StartWith(t, cfg)
	_, js := natstest.Connect(t, srv)
	if err := topology.Ensure(ctx, js, tcfg); err != nil {
		t.Fatal(err)
	}
	subj, err := topology.RawSubject(topology.SourceFalco, "node-1", topology.KeyToken("node/node-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := js.Publish(ctx, subj, []byte("record "+id), jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	decl := topology.ProcessorConsumers(tcfg.Partitions, tcfg.Consumers.Processor)[1] // falco, partition 0
	cons, err := topology.EnsureConsumer(ctx, js, decl)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil { // confirmed, so the ack is on disk before shutdown
			t.Fatal(err)
		}
	}
	srv.Shutdown()

	srv2 := natstest.StartWith(t, cfg) // same DataDir
	_, js2 := natstest.Connect(t, srv2)
	stream, err := js2.Stream(ctx, decl.Stream)
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	if got := stream.CachedInfo().State.Msgs; got != 2 {
		t.Fatalf("messages after restart = %d, want 2 (3 published, 1 acked off the work queue)", got)
	}
	cons2, err := js2.Consumer(ctx, decl.Stream, decl.Config.Durable)
	if err != nil {
		t.Fatalf("consumer after restart: %v", err)
	}
	msg, err := cons2.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data()) != "record b" {
		t.Fatalf("next after restart = %q, want %q", msg.Data(), "record b")
	}
	// Ensure on the restarted server finds everything as declared.
	if err := topology.Ensure(ctx, js2, tcfg); err != nil {
		t.Fatalf("Ensure after restart: %v", err)
	}
	// Dedup state survives for the ids of messages still stored: the server
	// rebuilds it from them. "a" was acked off the work queue before the
	// restart, so its id is forgotten and a republish is stored again (the
	// events stream, which keeps its messages, still drops the duplicate event).
	ack, err := js2.Publish(ctx, subj, []byte("record b"), jetstream.WithMsgID("b"))
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Duplicate {
		t.Error("republish of stored id b after restart: want Duplicate")
	}
	ack, err = js2.Publish(ctx, subj, []byte("record a"), jetstream.WithMsgID("a"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Duplicate {
		t.Error("republish of acked-and-removed id a after restart: JetStream now remembers it; update the docs in bus/topology")
	}
}

func TestServerLogsGoToSlog(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, natstest.Config(t), logger)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()
	out := buf.String()
	for _, want := range []string{"component=nats-server", "Starting nats-server", "embedded nats server ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "level=INFO msg=\"Starting nats-server\"") {
		t.Error("server notices should log at debug, not info")
	}
}

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

func TestStartRejectsUnreadableTLSFiles(t *testing.T) {
	pki := natstest.NewPKI(t)
	cfg := natstest.Config(t)
	cfg.TLS = embedded.TLSConfig{CertFile: pki.ServerCert, KeyFile: pki.ClientKey} // a key that is not the certificate's
	if _, err := embedded.Start(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "embedded.tls") {
		t.Fatalf("Start = %v, want an embedded.tls error", err)
	}
}
