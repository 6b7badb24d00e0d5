package sink_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// lockedLog collects a connection's log, where natsconn reports
// permission violations.
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

// rejectingSink keeps every record except those whose body says "bad",
// which fail permanently (and so are dead-lettered by the runner).
type rejectingSink struct {
	mu   sync.Mutex
	kept []string
}

func (s *rejectingSink) WriteBatch(_ context.Context, batch []sink.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	be := sink.NewBatchError()
	for i, r := range batch {
		if bytes.Contains(r.Data, []byte("bad")) {
			be.Failed(i, sink.Permanent(errors.New("unmappable record")))
			continue
		}
		s.kept = append(s.kept, r.Subject)
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

func (s *rejectingSink) Close(context.Context) error { return nil }

func (s *rejectingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.kept)
}

// TestRunnerAsItsNATSIdentity runs the real Runner with a sink's generated
// NATS identity (docs/bus-security.md): it creates its own consumers, reads
// events and alerts, acks, and dead-letters under its own stage, with no
// permission violation.
func TestRunnerAsItsNATSIdentity(t *testing.T) {
	seeds := t.TempDir()
	users, err := authz.Users(authz.Config{Sinks: []string{"ch"}}, seeds)
	if err != nil {
		t.Fatal(err)
	}
	ecfg := natstest.Config(t)
	ecfg.NKeyUsers = authz.NkeyUsers(users)
	srv := natstest.StartWith(t, ecfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var log lockedLog
	connect := func(id authz.Identity) *natsconn.Config {
		c := natsconn.NewDefaultConfig()
		c.URL = srv.ClientURL()
		c.NKeyFile = authz.SeedFile(seeds, id)
		c.InboxPrefix = id.InboxPrefix()
		return &c
	}
	anc, ajs, err := natsconn.Connect(ctx, *connect(authz.Identity{Role: authz.RoleAdmin}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer anc.Close()
	if err := topology.Ensure(ctx, ajs, topology.NewDefaultConfig()); err != nil {
		t.Fatalf("ensure as admin: %v", err)
	}
	pnc, pjs, err := natsconn.Connect(ctx, *connect(authz.Identity{Role: authz.RoleProcessor}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pnc.Close()
	ev, _ := topology.EventSubject(topology.SourceK8sAudit)
	al, _ := topology.AlertSubject("high")
	for _, m := range []struct{ subj, body string }{{ev, `{"id":"e1"}`}, {ev, `{"id":"e2","bad":1}`}, {al, `{"id":"a1"}`}} {
		if _, err := pjs.Publish(ctx, m.subj, []byte(m.body)); err != nil {
			t.Fatalf("processor: publish %s: %v", m.subj, err)
		}
	}

	snc, sjs, err := natsconn.Connect(ctx, *connect(authz.Identity{Role: authz.RoleSink, ID: "ch"}), slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer snc.Close()
	s := &rejectingSink{}
	r, err := sink.New(sjs, "ch", s, sinktest.RunnerConfig(), sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	dlq := func() uint64 {
		st, err := ajs.Stream(ctx, topology.DeadLetterStream)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().State.Msgs
	}
	for s.count() < 2 || dlq() < 1 {
		select {
		case err := <-done:
			t.Fatalf("runner stopped: %v\nlog:\n%s", err, log.String())
		case <-ctx.Done():
			t.Fatalf("kept %d records and dead-lettered %d, want 2 and 1\nlog:\n%s", s.count(), dlq(), log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("runner: %v", err)
	}
	if strings.Contains(strings.ToLower(log.String()), "violation") {
		t.Fatalf("the sink's identity lacks a permission:\n%s", log.String())
	}
	st, err := ajs.Stream(ctx, topology.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetLastMsgForSubject(ctx, "crowsnest.dlq.sink-ch.k8s_audit"); err != nil {
		t.Fatalf("no dead-letter under the sink's own stage: %v", err)
	}
}
