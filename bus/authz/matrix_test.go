package authz_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

var (
	collector1 = authz.Identity{Role: authz.RoleCollector, ID: "node1"}
	collector2 = authz.Identity{Role: authz.RoleCollector, ID: "node2"}
	processor  = authz.Identity{Role: authz.RoleProcessor}
	sinkCH     = authz.Identity{Role: authz.RoleSink, ID: "ch"}
	sinkES     = authz.Identity{Role: authz.RoleSink, ID: "es"}
	admin      = authz.Identity{Role: authz.RoleAdmin}
)

// bus is an embedded server requiring the generated nkey users, with the
// topology ensured by the admin identity.
type bus struct {
	srv   *embedded.Server
	seeds string
}

func startBus(t *testing.T) *bus {
	t.Helper()
	cfg := authz.Config{Collectors: []string{"node1", "node2"}, Sinks: []string{"ch", "es"}}
	seeds := t.TempDir()
	users, err := authz.Users(cfg, seeds)
	if err != nil {
		t.Fatal(err)
	}
	ecfg := natstest.Config(t)
	ecfg.NKeyUsers = authz.NkeyUsers(users)
	b := &bus{srv: natstest.StartWith(t, ecfg), seeds: seeds}
	_, js := b.connect(t, admin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, js, topology.NewDefaultConfig()); err != nil {
		t.Fatalf("admin: ensure topology: %v", err)
	}
	return b
}

// connect connects as id the way every stage does: natsconn with the
// identity's seed file and inbox prefix.
func (b *bus) connect(t *testing.T, id authz.Identity) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	cfg := natsconn.NewDefaultConfig()
	cfg.URL = b.srv.ClientURL()
	cfg.Name = id.Name()
	cfg.NKeyFile = authz.SeedFile(b.seeds, id)
	cfg.InboxPrefix = id.InboxPrefix()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := natsconn.Connect(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("%s: connect: %v", id.Name(), err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// probe is a raw connection as id that records the server's asynchronous
// errors, where permission violations arrive.
type probe struct {
	nc   *nats.Conn
	mu   sync.Mutex
	errs []error
	got  chan struct{}
}

func (b *bus) probe(t *testing.T, id authz.Identity) *probe {
	t.Helper()
	p := &probe{got: make(chan struct{}, 64)}
	seed, err := nats.NkeyOptionFromSeed(authz.SeedFile(b.seeds, id))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(b.srv.ClientURL(), seed, nats.CustomInboxPrefix(id.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			p.mu.Lock()
			p.errs = append(p.errs, err)
			p.mu.Unlock()
			p.got <- struct{}{}
		}))
	if err != nil {
		t.Fatalf("%s: connect: %v", id.Name(), err)
	}
	t.Cleanup(nc.Close)
	p.nc = nc
	return p
}

// violation waits for the permissions violation naming op ("publish",
// "subscription") and subject; it returns the errors seen instead.
func (p *probe) violation(op, subject string) error {
	want := fmt.Sprintf("permissions violation for %s to %q", op, subject)
	deadline := time.After(5 * time.Second)
	for {
		p.mu.Lock()
		for i, err := range p.errs {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(want)) {
				p.errs = append(p.errs[:i], p.errs[i+1:]...)
				p.mu.Unlock()
				return nil
			}
		}
		seen := fmt.Sprint(p.errs)
		p.mu.Unlock()
		select {
		case <-p.got:
		case <-deadline:
			return fmt.Errorf("no %q within 5s (errors seen: %s)", want, seen)
		}
	}
}

// An action is one attempt: publish (or a request, which is a publish with
// a reply subject) or subscribe.
type action struct {
	name    string
	sub     bool   // subscribe rather than publish
	subject string // for a JetStream API request, the request subject
}

func pub(name, subject string) action { return action{name: name, subject: subject} }
func sub(name, subject string) action { return action{name: name, sub: true, subject: subject} }

const attempts = 3 // "denied every time": each forbidden action is tried this often

// forbidden lists, per identity, what a compromised client of that
// identity might try.
func forbidden() map[authz.Identity][]action {
	events, _ := topology.EventSubject(topology.SourceK8sAudit)
	alert, _ := topology.AlertSubject("critical")
	otherRaw, _ := topology.RawSubject(topology.SourceK8sAudit, "node2", "k1")
	ownRaw, _ := topology.RawSubject(topology.SourceK8sAudit, "node1", "k1")
	rawStream, _ := topology.RawStream(topology.SourceK8sAudit)
	procDLQ, _ := topology.DeadLetterSubject(topology.ProcessorStage, topology.SourceK8sAudit)
	esDLQ, _ := topology.DeadLetterSubject("sink-es", topology.SourceK8sAudit)
	chDLQ, _ := topology.DeadLetterSubject("sink-ch", topology.SourceK8sAudit)
	otherCollectorDLQ, _ := topology.CollectorDeadLetterSubject(topology.SourceK8sAudit, "node2")
	ownCollectorDLQ, _ := topology.CollectorDeadLetterSubject(topology.SourceK8sAudit, "node1")
	unboundCollectorDLQ := topology.DeadLetterSubjectPrefix + "." + topology.CollectorStage + "." + topology.SourceK8sAudit
	api := "$JS.API."
	management := []action{
		pub("create a stream", api+"STREAM.CREATE.EVIL"),
		pub("update the events stream", api+"STREAM.UPDATE."+topology.EventsStream),
		pub("delete the raw stream", api+"STREAM.DELETE."+rawStream),
		pub("purge the events stream", api+"STREAM.PURGE."+topology.EventsStream),
		pub("purge the raw stream", api+"STREAM.PURGE."+rawStream),
		pub("delete a message", api+"STREAM.MSG.DELETE."+topology.AlertsStream),
		pub("delete the processor's consumer", api+"CONSUMER.DELETE."+rawStream+".processor-p0"),
		pub("create a consumer on alerts", api+"CONSUMER.CREATE."+topology.AlertsStream+".spy"),
		pub("create a filtered consumer on raw", api+"CONSUMER.CREATE."+rawStream+".spy.crowsnest.raw.>"),
		pub("create an ephemeral consumer", api+"CONSUMER.CREATE."+topology.EventsStream),
		pub("list streams", api+"STREAM.LIST"),
		pub("list stream names", api+"STREAM.NAMES"),
		pub("delete the state bucket", api+"STREAM.DELETE."+topology.StateBucketStream),
	}
	readOthers := []action{
		pub("get a raw message", api+"STREAM.MSG.GET."+rawStream),
		pub("direct-get an event", api+"DIRECT.GET."+topology.EventsStream),
		pub("read sink es's consumer", api+"CONSUMER.MSG.NEXT."+topology.EventsStream+".sink-es"),
		pub("read the processor's consumer", api+"CONSUMER.MSG.NEXT."+rawStream+".processor-p0"),
		pub("ack for sink es", "$JS.ACK."+topology.EventsStream+".sink-es.1.1.1.1.1"),
		pub("read the state bucket", api+"DIRECT.GET."+topology.StateBucketStream+".$KV."+topology.StateBucket+".k"),
		pub("write the state bucket", "$KV."+topology.StateBucket+".k"),
		sub("subscribe to raw", topology.RawSubjectPrefix+".>"),
		sub("subscribe to events", topology.EventSubjects),
		sub("subscribe to alerts", topology.AlertSubjects),
		sub("subscribe to dead-letters", topology.DeadLetterSubjects),
		sub("subscribe to everything", ">"),
		sub("subscribe to the shared inbox", "_INBOX.>"),
		sub("subscribe to the processor's inbox", processor.InboxPrefix()+".>"),
		sub("subscribe to JetStream advisories", "$JS.EVENT.>"),
	}
	inspect := []action{
		pub("inspect the raw stream", api+"STREAM.INFO."+rawStream),
		pub("inspect the state bucket", api+"STREAM.INFO."+topology.StateBucketStream),
	}
	forge := []action{
		pub("publish as another collector", otherRaw),
		pub("dead-letter as another collector", otherCollectorDLQ),
		pub("dead-letter without a collector id", unboundCollectorDLQ),
		pub("publish events", events),
		pub("publish alerts", alert),
		pub("dead-letter as the processor", procDLQ),
		pub("dead-letter as sink es", esDLQ),
		pub("publish to the raw stream's stored form", "crowsnest.raw.k8s_audit.0.node2.k1"),
	}
	all := func(groups ...[]action) []action {
		var out []action
		for _, g := range groups {
			out = append(out, g...)
		}
		return out
	}
	return map[authz.Identity][]action{
		collector1: all(management, readOthers, inspect, forge, []action{
			pub("inspect the events stream", api+"STREAM.INFO."+topology.EventsStream),
			pub("inspect the dead-letter stream", api+"STREAM.INFO."+topology.DeadLetterStream),
		}),
		processor: all(management, []action{
			pub("publish raw", ownRaw),
			pub("dead-letter as sink es", esDLQ),
			pub("dead-letter as a collector", ownCollectorDLQ),
			pub("read sink es's consumer", api+"CONSUMER.MSG.NEXT."+topology.EventsStream+".sink-es"),
			pub("create a sink's consumer", api+"CONSUMER.CREATE."+topology.EventsStream+".sink-es"),
			sub("subscribe to raw", topology.RawSubjectPrefix+".>"),
			sub("subscribe to events", topology.EventSubjects),
			sub("subscribe to the shared inbox", "_INBOX.>"),
			sub("subscribe to a collector's inbox", collector1.InboxPrefix()+".>"),
		}),
		sinkCH: all(management, readOthers, inspect, []action{
			pub("publish raw", ownRaw),
			pub("publish events", events),
			pub("publish alerts", alert),
			pub("dead-letter as sink es", esDLQ),
			pub("dead-letter as the processor", procDLQ),
			pub("dead-letter as a collector", ownCollectorDLQ),
			pub("take over sink es's consumer", api+"CONSUMER.CREATE."+topology.EventsStream+".sink-es"),
			pub("inspect sink es's consumer", api+"CONSUMER.INFO."+topology.AlertsStream+".sink-es"),
		}),
		// The binding holds both ways, and for each sink.
		collector2: {
			pub("publish as collector node1", ownRaw),
			pub("dead-letter as collector node1", ownCollectorDLQ),
		},
		sinkES: {
			pub("dead-letter as sink ch", chDLQ),
			pub("read sink ch's consumer", api+"CONSUMER.MSG.NEXT."+topology.EventsStream+".sink-ch"),
			pub("ack for sink ch", "$JS.ACK."+topology.AlertsStream+".sink-ch.1.1.1.1.1"),
		},
		admin: {
			pub("publish raw", ownRaw),
			pub("publish events", events),
			pub("publish alerts", alert),
			pub("dead-letter", procDLQ),
			sub("subscribe to raw", topology.RawSubjectPrefix+".>"),
			sub("subscribe to events", topology.EventSubjects),
			sub("subscribe to the shared inbox", "_INBOX.>"),
		},
	}
}

// TestForbiddenMatrix tries every forbidden action of every identity,
// several times, and wants the server's permissions violation each time;
// then checks that nothing reached the streams.
func TestForbiddenMatrix(t *testing.T) {
	b := startBus(t)
	for id, actions := range forbidden() {
		p := b.probe(t, id)
		for _, a := range actions {
			t.Run(id.Name()+"/"+a.name, func(t *testing.T) {
				for i := range attempts {
					var err error
					op := "publish"
					if a.sub {
						op = "subscription"
						var s *nats.Subscription
						s, err = p.nc.SubscribeSync(a.subject)
						if err == nil {
							defer s.Unsubscribe() //nolint:errcheck // a denied subscription may already be gone
						}
					} else {
						err = p.nc.PublishRequest(a.subject, id.InboxPrefix()+".probe", []byte(`{}`))
					}
					if err != nil {
						t.Fatalf("attempt %d: %s %s: client error before the server answered: %v", i, op, a.subject, err)
					}
					if err := p.nc.Flush(); err != nil {
						t.Fatalf("attempt %d: flush: %v", i, err)
					}
					if err := p.violation(op, a.subject); err != nil {
						t.Fatalf("attempt %d: %s %s as %s: %v", i, op, a.subject, id.Name(), err)
					}
				}
			})
		}
	}
	// Nothing got through: the streams hold nothing, the state bucket and
	// the processor's consumers are still there.
	_, js := b.connect(t, admin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{topology.EventsStream, topology.AlertsStream, topology.DeadLetterStream, topology.StateBucketStream, "CROWSNEST_RAW_K8S_AUDIT"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s after the matrix: %v", name, err)
		}
		if n := s.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("stream %s holds %d messages after only forbidden actions", name, n)
		}
	}
	if _, err := js.Stream(ctx, "EVIL"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream EVIL: got %v, want not found", err)
	}
}
