package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
)

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPipelineAsItsNATSIdentity runs the real pipeline (partition
// membership, consumers, detection state, publishes, dead-letters) with the
// processor's generated NATS identity (docs/bus-security.md), fed by a collector
// with its own identity, and wants no permission violation.
func TestPipelineAsItsNATSIdentity(t *testing.T) {
	seeds := t.TempDir()
	users, err := authz.Users(authz.Config{Collectors: []string{"node-1"}}, seeds)
	if err != nil {
		t.Fatal(err)
	}
	ecfg := natstest.Config(t)
	ecfg.NKeyUsers = authz.NkeyUsers(users)
	srv := natstest.StartWith(t, ecfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var plog lockedLog
	connect := func(id authz.Identity, log *lockedLog) *nats.Conn {
		c := natsconn.NewDefaultConfig()
		c.URL = srv.ClientURL()
		c.NKeyFile = authz.SeedFile(seeds, id)
		c.InboxPrefix = id.InboxPrefix()
		l := slog.New(slog.DiscardHandler)
		if log != nil {
			l = slog.New(slog.NewTextHandler(log, nil))
		}
		nc, _, err := natsconn.Connect(ctx, c, l)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	admin := authz.Identity{Role: authz.RoleAdmin}
	collector := authz.Identity{Role: authz.RoleCollector, ID: "node-1"}
	processor := authz.Identity{Role: authz.RoleProcessor}
	ajs, err := jetstream.New(connect(admin, nil))
	if err != nil {
		t.Fatal(err)
	}
	tcfg := topology.NewDefaultConfig()
	tcfg.Consumers.Processor.AckWait = 2 * time.Second
	tcfg.Consumers.Processor.Backoff = nil
	if err := topology.Ensure(ctx, ajs, tcfg); err != nil {
		t.Fatalf("ensure as admin: %v", err)
	}

	// The collector publishes, under its own id.
	cjs, err := jetstream.New(connect(collector, nil))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n + 1 {
		m := nats.NewMsg("crowsnest.raw.k8s_audit.node-1." + topology.KeyToken("ns/shop"))
		m.Data = auditEvent(i, "ResponseComplete")
		if i == n {
			m.Data = []byte(`{"this is": "not an audit event"}`)
		}
		m.Header.Set(headers.MsgID, fmt.Sprintf("authz-%d", i))
		m.Header.Set(headers.Node, "node-1")
		m.Header.Set(headers.Observed, headers.FormatTime(time.Now()))
		if _, err := cjs.PublishMsg(ctx, m); err != nil {
			t.Fatalf("collector: publish: %v", err)
		}
	}

	// The processor runs as itself.
	pjs, err := jetstream.New(connect(processor, &plog))
	if err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.NewDefaultConfig()
	cfg.RetryDelay = 100 * time.Millisecond
	reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg.Normalize, reg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pjs, norm, deadletter.NewPublisher(pjs), cfg, pipeline.Settings{
		Sources:  []string{"k8s_audit"},
		Consumer: tcfg.Consumers.Processor,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{js: ajs, run: p.Run} // the admin counts
	h.runUntil(t, func() {
		h.waitFor(t, topology.EventsStream, n)
		h.waitFor(t, topology.DeadLetterStream, 1)
	})
	if s := plog.String(); strings.Contains(strings.ToLower(s), "violation") {
		t.Fatalf("the processor's identity lacks a permission:\n%s", s)
	}
	if got := h.count(t, "CROWSNEST_RAW_K8S_AUDIT"); got != 0 {
		t.Errorf("raw stream holds %d after the run, want 0 (all acked)", got)
	}
}
