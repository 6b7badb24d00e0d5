package authz_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

var nodeCollectors = authz.Identity{Role: authz.RoleNodeCollectors}

// TestNodeCollectors: the shared identity of a DaemonSet (collector id =
// node name, unknown in advance) publishes records and dead-letters under
// any node's id, and is refused, every time, under the ids that have
// identities of their own (the audit webhook) and everything else a
// collector may not do. The server config it renders parses to the same
// users.
func TestNodeCollectors(t *testing.T) {
	cfg := authz.Config{Collectors: []string{"k8s-audit-webhook"}, NodeCollectors: true, Sinks: []string{"ch"}}
	seeds := t.TempDir()
	users, err := authz.Users(cfg, seeds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(seeds, "node-collectors.nk")); err != nil {
		t.Fatalf("seed of the shared identity: %v", err)
	}
	conf := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(conf, []byte(authz.ServerConfig(users)), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server rejects the generated config: %v\n%s", err, authz.ServerConfig(users))
	}
	if !reflect.DeepEqual(opts.Nkeys, authz.NkeyUsers(users)) {
		t.Errorf("parsed users differ from NkeyUsers:\n got %+v\nwant %+v", opts.Nkeys, authz.NkeyUsers(users))
	}

	ecfg := natstest.Config(t)
	ecfg.NKeyUsers = authz.NkeyUsers(users)
	b := &bus{srv: natstest.StartWith(t, ecfg), seeds: seeds}
	_, ajs := b.connect(t, admin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, ajs, topology.NewDefaultConfig()); err != nil {
		t.Fatalf("admin: ensure topology: %v", err)
	}

	_, js := b.connect(t, nodeCollectors)
	raw := topology.RawSubjectPrefix + ".k8s_audit."
	dlq := topology.DeadLetterSubjectPrefix + "." + topology.CollectorStage + ".k8s_audit."
	for _, subj := range []string{raw + "node-a.k1", raw + "ip-10-0-0-7_ec2_internal.k2", dlq + "node-a"} {
		if _, err := js.Publish(ctx, subj, []byte(`{}`)); err != nil {
			t.Errorf("node-collectors: publish %s: %v", subj, err)
		}
	}

	p := b.probe(t, nodeCollectors)
	for _, a := range []action{
		pub("record as the webhook", raw+"k8s-audit-webhook.k3"),
		pub("dead-letter as the webhook", dlq+"k8s-audit-webhook"),
		pub("dead-letter without a collector id", topology.DeadLetterSubjectPrefix+"."+topology.CollectorStage+".k8s_audit"),
		pub("event", topology.EventSubjectPrefix+".k8s_audit"),
		pub("alert", topology.AlertSubjectPrefix+".high"),
		pub("create a stream", "$JS.API.STREAM.CREATE.X"),
		pub("stream info", "$JS.API.STREAM.INFO."+topology.EventsStream),
		sub("read raw", topology.RawSubjectPrefix+".>"),
		sub("another inbox", "_INBOX_processor.>"),
	} {
		for range 3 {
			if a.sub {
				if _, err := p.nc.SubscribeSync(a.subject); err != nil {
					t.Fatal(err)
				}
			} else if err := p.nc.Publish(a.subject, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			op := "publish"
			if a.sub {
				op = "subscription"
			}
			if err := p.violation(op, a.subject); err != nil {
				t.Errorf("node-collectors: %s: %v", a.name, err)
			}
		}
	}

	// Only the three allowed publishes reached a stream.
	for _, name := range []string{topology.EventsStream, topology.AlertsStream} {
		s, err := ajs.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("%s holds %d messages", name, n)
		}
	}
	rs, err := ajs.StreamNameBySubject(ctx, raw+"x.y")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ajs.Stream(ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("%s holds %d records, want the 2 published under node ids", rs, n)
	}
}

func TestNodeCollectorsAloneIsAConfig(t *testing.T) {
	if err := (authz.Config{NodeCollectors: true}).Validate(); err != nil {
		t.Errorf("node_collectors alone: %v", err)
	}
	if err := (authz.Config{}).Validate(); err == nil {
		t.Error("an empty config validated")
	}
}
