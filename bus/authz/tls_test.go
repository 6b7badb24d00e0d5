package authz_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// tlsBus is an embedded server requiring mutual TLS and the generated nkey
// users: a client needs a certificate from the server's CA and a seed.
type tlsBus struct {
	*bus
	pki *natstest.PKI
}

func startTLSBus(t *testing.T) *tlsBus {
	t.Helper()
	cfg := authz.Config{Collectors: []string{"node1", "node2"}, Sinks: []string{"ch"}}
	seeds := t.TempDir()
	users, err := authz.Users(cfg, seeds)
	if err != nil {
		t.Fatal(err)
	}
	pki := natstest.NewPKI(t)
	ecfg := natstest.Config(t)
	ecfg.NKeyUsers = authz.NkeyUsers(users)
	ecfg.TLS.CertFile, ecfg.TLS.KeyFile, ecfg.TLS.CAFile, ecfg.TLS.Verify = pki.ServerCert, pki.ServerKey, pki.CAFile, true
	b := &tlsBus{bus: &bus{srv: natstest.StartWith(t, ecfg), seeds: seeds}, pki: pki}
	if !strings.HasPrefix(b.srv.ClientURL(), "tls://") {
		t.Fatalf("client URL %s: want tls://", b.srv.ClientURL())
	}
	return b
}

// config is what every stage sets to connect as id: the CA, its client
// certificate and key, its seed, its inbox prefix.
func (b *tlsBus) config(id authz.Identity) natsconn.Config {
	cfg := natsconn.NewDefaultConfig()
	cfg.URL = b.srv.ClientURL()
	cfg.Name = id.Name()
	cfg.NKeyFile = authz.SeedFile(b.seeds, id)
	cfg.InboxPrefix = id.InboxPrefix()
	cfg.TLS = natsconn.TLSConfig{CAFile: b.pki.CAFile, CertFile: b.pki.ClientCert, KeyFile: b.pki.ClientKey}
	return cfg
}

func (b *tlsBus) connectTLS(t *testing.T, id authz.Identity) (*nats.Conn, jetstream.JetStream, *lockedBuffer) {
	t.Helper()
	var log lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := natsconn.Connect(ctx, b.config(id), slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatalf("%s over mutual TLS: %v", id.Name(), err)
	}
	t.Cleanup(nc.Close)
	return nc, js, &log
}

// TestMutualTLSWithIdentities: with the server requiring client
// certificates and nkeys, each stage's JetStream work succeeds over TLS as
// its identity; the identities' permissions still hold; and a client
// missing either factor, or holding a certificate from another CA, or not
// trusting the server's, is refused at connect, fast.
func TestMutualTLSWithIdentities(t *testing.T) {
	b := startTLSBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, ajs, _ := b.connectTLS(t, admin)
	if err := topology.Ensure(ctx, ajs, topology.NewDefaultConfig()); err != nil {
		t.Fatalf("admin over TLS: ensure topology: %v", err)
	}

	// Collector: a record and a dead-letter under its own id.
	nc1, cjs, clog := b.connectTLS(t, collector1)
	if !nc1.TLSRequired() {
		t.Error("collector connection does not use TLS")
	}
	subj, _ := topology.RawSubject(topology.SourceFalco, "node1", "k1")
	if _, err := cjs.Publish(ctx, subj, []byte(`{"rule":"x"}`), jetstream.WithMsgID("r1")); err != nil {
		t.Fatalf("collector: publish: %v", err)
	}
	if err := deadletter.NewPublisher(cjs).Publish(ctx, deadletter.Record{Stage: topology.CollectorStage, Collector: "node1",
		Source: topology.SourceFalco, Reason: "too big", Data: []byte("x")}); err != nil {
		t.Fatalf("collector: dead-letter: %v", err)
	}
	// Its permissions hold over TLS as over plain TCP.
	// (A denied publish gets no ack: the short context ends the wait.)
	fctx, fcancel := context.WithTimeout(ctx, time.Second)
	if err := deadletter.NewPublisher(cjs).Publish(fctx, deadletter.Record{Stage: topology.CollectorStage, Collector: "node2",
		Source: topology.SourceFalco, Reason: "forged", Data: []byte("y")}); err == nil {
		t.Fatal("collector node1 dead-lettered as node2 over TLS")
	}
	fcancel()
	waitLog(t, clog, `Permissions Violation for Publish to \"crowsnest.dlq.collector.falco.node2\"`)

	// Processor: reads the record through its partition consumer, writes an event.
	_, pjs, plog := b.connectTLS(t, processor)
	settings := topology.NewDefaultConfig().Consumers
	rawStream, _ := topology.RawStream(topology.SourceFalco)
	n := 0
	for part := range topology.DefaultPartitions {
		cc, err := topology.ProcessorConsumerConfig(topology.SourceFalco, part, settings.Processor)
		if err != nil {
			t.Fatal(err)
		}
		cons, err := topology.EnsureConsumer(ctx, pjs, topology.ConsumerDecl{Stream: rawStream, Config: cc})
		if err != nil {
			t.Fatalf("processor: ensure consumer p%d: %v", part, err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond), jetstream.FetchPriorityGroup(topology.ProcessorPriorityGroup))
		if err != nil {
			t.Fatalf("processor: fetch p%d: %v", part, err)
		}
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("processor: ack: %v", err)
			}
			n++
		}
	}
	if n != 1 {
		t.Fatalf("processor read %d records over TLS, want 1", n)
	}
	ev, _ := topology.EventSubject(topology.SourceFalco)
	if _, err := pjs.Publish(ctx, ev, []byte(`{"id":"e1"}`)); err != nil {
		t.Fatalf("processor: publish event: %v", err)
	}

	// Sink: its own consumer reads the event.
	_, sjs, slog := b.connectTLS(t, sinkCH)
	decls, err := topology.SinkConsumers("ch", settings.Sink)
	if err != nil {
		t.Fatal(err)
	}
	scons, err := topology.EnsureConsumer(ctx, sjs, decls[0])
	if err != nil {
		t.Fatalf("sink: ensure consumer: %v", err)
	}
	sb, err := scons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("sink: fetch: %v", err)
	}
	got := 0
	for m := range sb.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("sink: ack: %v", err)
		}
		got++
	}
	if got != 1 {
		t.Fatalf("sink read %d events over TLS, want 1 (%v)", got, sb.Error())
	}
	for name, l := range map[string]*lockedBuffer{"processor": plog, "sink": slog} {
		if s := l.String(); strings.Contains(s, "Violation") {
			t.Errorf("%s: a permission it needs was refused:\n%s", name, s)
		}
	}

	// The refusals: each factor is required, each is checked.
	refused := []struct {
		name   string
		modify func(*natsconn.Config)
		want   string
	}{
		{"no client certificate", func(c *natsconn.Config) { c.TLS.CertFile, c.TLS.KeyFile = "", "" }, "refused this client's tls certificate"},
		{"a client certificate from another CA", func(c *natsconn.Config) {
			c.TLS.CertFile, c.TLS.KeyFile = b.pki.OtherClientCert, b.pki.OtherClientKey
		}, "refused this client's tls certificate"},
		{"not trusting the server's CA", func(c *natsconn.Config) { c.TLS.CAFile = b.pki.OtherCAFile }, "unknown authority"},
		{"no nkey", func(c *natsconn.Config) { c.NKeyFile = "" }, "authorization violation"},
		{"a seed the server does not know", func(c *natsconn.Config) {
			dir := t.TempDir()
			if _, err := authz.Users(authz.Config{Collectors: []string{"node1"}}, dir); err != nil {
				t.Fatal(err)
			}
			c.NKeyFile = authz.SeedFile(dir, collector1)
		}, "authorization violation"},
		{"no TLS settings", func(c *natsconn.Config) {
			c.URL = strings.Replace(c.URL, "tls://", "nats://", 1)
			c.TLS = natsconn.TLSConfig{}
		}, "certificate"}, // the client upgrades as the server demands, and cannot verify it
	}
	t.Run("a plain-text client", func(t *testing.T) {
		// Below nats.go, which would upgrade: the server announces TLS as
		// required and answers nothing sent in the clear.
		addr := strings.TrimPrefix(b.srv.ClientURL(), "tls://")
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		r := bufio.NewReader(conn)
		info, err := r.ReadString('\n')
		if err != nil || !strings.Contains(info, `"tls_required":true`) {
			t.Fatalf("INFO %q (%v): want tls_required", info, err)
		}
		if _, err := conn.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n")); err != nil {
			return // closed already: refused
		}
		if line, err := r.ReadString('\n'); err == nil && strings.HasPrefix(line, "PONG") {
			t.Fatalf("the server answered a plain-text client: %q", line)
		}
	})
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			cfg := b.config(collector1)
			cfg.Reconnect.Wait = 100 * time.Millisecond
			tt.modify(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			nc, _, err := natsconn.Connect(ctx, cfg, nil)
			if err == nil {
				nc.Close()
				t.Fatal("connected; want a refusal")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("refusal took %s: an unfixable credential must not be retried", d)
			}
		})
	}
}

func waitLog(t *testing.T, l *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(l.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, l.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
