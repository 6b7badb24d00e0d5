package publish_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
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

// TestPublisherAsItsNATSIdentity runs the real Publisher with a collector's
// generated NATS identity (docs/bus-security.md): records and dead-letters of
// its own id are stored; a Publisher claiming another collector's id is
// refused by the server and stores nothing.
func TestPublisherAsItsNATSIdentity(t *testing.T) {
	seeds := t.TempDir()
	users, err := authz.Users(authz.Config{Collectors: []string{"node1"}}, seeds)
	if err != nil {
		t.Fatal(err)
	}
	ecfg := natstest.Config(t)
	ecfg.NKeyUsers = authz.NkeyUsers(users)
	srv := natstest.StartWith(t, ecfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func(id authz.Identity, log *syncBuffer) *natsconn.Config {
		c := natsconn.NewDefaultConfig()
		c.URL = srv.ClientURL()
		c.NKeyFile = authz.SeedFile(seeds, id)
		c.InboxPrefix = id.InboxPrefix()
		return &c
	}
	_, adminJS, err := natsconn.Connect(ctx, *connect(authz.Identity{Role: authz.RoleAdmin}, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := topology.Ensure(ctx, adminJS, topology.NewDefaultConfig()); err != nil {
		t.Fatalf("ensure as admin: %v", err)
	}
	node1 := authz.Identity{Role: authz.RoleCollector, ID: "node1"}

	run := func(collectorID string, log *syncBuffer, recs []publish.Record, timeout time.Duration) error {
		nc, _, err := natsconn.Connect(ctx, *connect(node1, log), slog.New(slog.NewTextHandler(log, nil)))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		cfg := publish.NewDefaultConfig()
		cfg.CollectorID = collectorID
		cfg.MaxEventBytes = 1024
		cfg.DeadLetterSampleBytes = 256
		p, err := publish.New(cfg, publish.Settings{Conn: nc})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			// A refused record is retried until Close gives up on it.
			cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer ccancel()
			p.Close(cctx) //nolint:errcheck // the outcome checked is Publish's
		}()
		pctx, pcancel := context.WithTimeout(ctx, timeout)
		defer pcancel()
		for _, r := range recs {
			if err := p.Publish(pctx, r); err != nil {
				return err
			}
		}
		return nil
	}

	var ok syncBuffer
	recs := []publish.Record{
		{Source: topology.SourceK8sAudit, Data: []byte(`{"verb":"get"}`), Key: "ns/default"},
		{Source: topology.SourceK8sAudit, Data: bytes.Repeat([]byte("x"), 2048), Key: "ns/default"}, // too big: dead-lettered
	}
	if err := run("node1", &ok, recs, 10*time.Second); err != nil {
		t.Fatalf("publish as node1 with node1's identity: %v\nlog:\n%s", err, ok.String())
	}
	if strings.Contains(strings.ToLower(ok.String()), "violation") {
		t.Fatalf("permission violation publishing as itself:\n%s", ok.String())
	}
	count := func(stream string) uint64 {
		s, err := adminJS.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	if n := count("CROWSNEST_RAW_K8S_AUDIT"); n != 1 {
		t.Errorf("raw stream holds %d records, want 1", n)
	}
	if n := count(topology.DeadLetterStream); n != 1 {
		t.Errorf("dead-letter stream holds %d records, want 1", n)
	}

	var forged syncBuffer
	err = run("node2", &forged, recs[:1], 3*time.Second)
	if err == nil {
		t.Fatal("publishing as node2 with node1's identity succeeded")
	}
	if !strings.Contains(forged.String(), `Permissions Violation for Publish to \"crowsnest.raw.k8s_audit.node2.`) {
		t.Errorf("no permissions violation logged for the forged subject; publish error %v, log:\n%s", err, forged.String())
	}
	if n := count("CROWSNEST_RAW_K8S_AUDIT"); n != 1 {
		t.Errorf("raw stream holds %d records after the forged publish, want still 1", n)
	}
}
