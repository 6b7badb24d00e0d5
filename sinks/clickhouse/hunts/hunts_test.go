package hunts_test

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/crowsnest-siem/crowsnest/schemas"
	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/hunts"
	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/internal/chtest"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

func TestAllParse(t *testing.T) {
	all, err := hunts.All()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range all {
		names = append(names, h.Name)
		if h.SchemaVersion != schemas.SchemaVersion {
			t.Errorf("%s was written for schema %s, the registry is %s: review it and bump its -- schema: line", h.Name, h.SchemaVersion, schemas.SchemaVersion)
		}
		if strings.Contains(h.SQL, "crowsnest.") {
			t.Errorf("%s names a database: tables must be unqualified", h.Name)
		}
	}
	want := []string{"alerts_by_rule_per_hour", "exec_into_pod_timeline", "privileged_workloads", "rbac_changes_by_user", "top_talkers_new_destinations"}
	if !slices.Equal(names, want) {
		t.Fatalf("hunts %v, want %v", names, want)
	}
	if _, err := hunts.Get("nope"); err == nil {
		t.Error("Get(nope) found a hunt")
	}
}

func TestParseRejects(t *testing.T) {
	head := "-- title: t\n-- description: d\n-- schema: 1\n-- column n (int): n\n"
	for name, sql := range map[string]string{
		"no header":          "SELECT 1",
		"undocumented param": head + "SELECT {a:String}",
		"unused param doc":   head + "-- param b: x\nSELECT 1",
		"two types":          head + "-- param a: x\nSELECT {a:String}, {a:UInt8}",
		"no column":          "-- title: t\n-- description: d\n-- schema: 1\nSELECT 1",
		"column type":        head + "-- column m (float): m\nSELECT 1 AS n, 2 AS m",
		"column twice":       head + "-- column n (int): again\nSELECT 1 AS n",
		"column syntax":      head + "-- column m: m\nSELECT 1 AS n, 2 AS m",
	} {
		if _, err := hunts.Parse("x", sql); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	h, err := hunts.Parse("x", head+"-- param a: x\nSELECT {a:String}")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Args(map[string]string{}); err == nil {
		t.Error("missing parameter accepted")
	}
	if _, err := h.Args(map[string]string{"a": "1", "b": "2"}); err == nil {
		t.Error("unknown parameter accepted")
	}
}

// clock returns the times of one day: each hunt test gets a day of its
// own, so the tests share one database without seeing each other's rows.
func clock(day time.Time) func(hh, mm int) time.Time {
	return func(hh, mm int) time.Time {
		return day.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
	}
}

func chTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// fixture is a store with events written through the sink.
type fixture struct {
	s    *chsink.Sink
	conn driver.Conn
	n    int
}

// TestHunts runs every hunt against the engine, over fixture events written
// through the sink into one database.
func TestHunts(t *testing.T) {
	f := newFixture(t)
	for i, tc := range []struct {
		name string
		run  func(*testing.T, *fixture, func(hh, mm int) time.Time)
	}{
		{"exec_into_pod_timeline", testExecIntoPodTimeline},
		{"privileged_workloads", testPrivilegedWorkloads},
		{"rbac_changes_by_user", testRBACChangesByUser},
		{"top_talkers_new_destinations", testTopTalkersNewDestinations},
		{"alerts_by_rule_per_hour", testAlertsByRulePerHour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, f, clock(time.Date(2026, 11, 1+2*i, 0, 0, 0, 0, time.UTC)))
		})
	}
}

func newFixture(t *testing.T) *fixture {
	cfg := chtest.Config(t)
	s, err := chsink.New(cfg, sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return &fixture{s: s, conn: chtest.Conn(t, cfg)}
}

func base(id string, ts time.Time) schemas.Event {
	return schemas.Event{
		Timestamp: ts,
		Event:     schemas.EventFields{ID: id, Kind: "event", Dataset: "crowsnest.k8s_audit", Module: "crowsnest", Outcome: "success", Ingested: ts.Add(time.Second)},
		Crowsnest: schemas.Crowsnest{SchemaVersion: schemas.SchemaVersion, Source: "k8s_audit"},
		OCSF:      schemas.OCSF{ClassUID: 6003, CategoryUID: 6, ActivityID: 1, TypeUID: 600301, SeverityID: 1},
	}
}

// audit is a Kubernetes audit event of one request stage.
type audit struct {
	id, stage, user, verb, ns, resource, sub, name, group, uri, outcome string
	code                                                                int32
	ts                                                                  time.Time
	spec                                                                *schemas.KubernetesPodSpec
}

func (a audit) event() schemas.Event {
	if a.stage == "" {
		a.stage = "ResponseComplete"
	}
	e := base(a.id+"-"+a.stage, a.ts)
	e.Event.Action = a.verb
	if a.outcome != "" {
		e.Event.Outcome = a.outcome
	}
	e.User.Name = a.user
	e.Source.IP = "10.0.0.5"
	e.Orchestrator = schemas.Orchestrator{Type: "kubernetes", Namespace: a.ns,
		Resource: schemas.OrchestratorResource{Type: a.resource, Name: a.name}}
	k := &e.Kubernetes.Audit
	k.AuditID, k.Stage, k.Verb, k.RequestURI = a.id, a.stage, a.verb, a.uri
	k.ObjectRef.Resource, k.ObjectRef.Subresource, k.ObjectRef.Namespace, k.ObjectRef.Name, k.ObjectRef.APIGroup = a.resource, a.sub, a.ns, a.name, a.group
	k.ResponseStatus.Code = a.code
	if a.spec != nil {
		e.Kubernetes.PodSpec = *a.spec
	}
	return e
}

func (f *fixture) write(t *testing.T, evs ...schemas.Event) {
	t.Helper()
	batch := make([]sink.Record, len(evs))
	for i := range evs {
		f.n++
		batch[i] = sink.Record{Data: evs[i].AppendJSON(nil), ID: evs[i].Event.ID, Kind: sink.KindEvents, Seq: uint64(f.n), Delivered: 1}
	}
	if err := f.s.WriteBatch(context.Background(), batch); err != nil {
		t.Fatalf("write fixtures: %v", err)
	}
}

func (f *fixture) writeAlerts(t *testing.T, as ...schemas.Alert) {
	t.Helper()
	batch := make([]sink.Record, len(as))
	for i := range as {
		f.n++
		batch[i] = sink.Record{Data: as[i].AppendJSON(nil), ID: as[i].Event.ID, Kind: sink.KindAlerts, Seq: uint64(f.n), Delivered: 1}
	}
	if err := f.s.WriteBatch(context.Background(), batch); err != nil {
		t.Fatalf("write fixtures: %v", err)
	}
}

// run runs hunt name with args and returns its rows, each column rendered
// as text ("[a b]" for arrays, "15:04:05" for times: every test keeps to
// one day).
func (f *fixture) run(t *testing.T, name string, args map[string]string) []map[string]string {
	t.Helper()
	h, err := hunts.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	params, err := h.Args(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(params))
	rows, err := f.conn.Query(ctx, h.SQL)
	if err != nil {
		t.Fatalf("hunt %s: %v", name, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var want []string
	for _, c := range h.Columns {
		want = append(want, c.Name)
	}
	if got := rows.Columns(); !slices.Equal(got, want) {
		t.Fatalf("hunt %s returns columns %v, its -- column lines say %v", name, got, want)
	}
	var out []map[string]string
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("hunt %s: %v", name, err)
		}
		row := map[string]string{}
		for i, ct := range types {
			row[ct.Name()] = text(reflect.ValueOf(ptrs[i]).Elem().Interface())
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("hunt %s: %v", name, err)
	}
	return out
}

func text(v any) string {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format("15:04:05")
	case []string:
		return "[" + strings.Join(x, " ") + "]"
	case net.IP:
		return x.String()
	}
	return fmt.Sprint(v)
}

// pick keeps the named columns of each row, as "col=value" joined by "|".
func pick(rows []map[string]string, cols ...string) []string {
	var out []string
	for _, r := range rows {
		var parts []string
		for _, c := range cols {
			parts = append(parts, c+"="+r[c])
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

func check(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func window(from, to time.Time) map[string]string {
	return map[string]string{"from": chTime(from), "to": chTime(to)}
}

func testExecIntoPodTimeline(t *testing.T, f *fixture, at func(hh, mm int) time.Time) {
	execURI := "/api/v1/namespaces/payments/pods/api-1/exec?command=sh&command=-c&command=id%20-u&container=app&stdin=true&tty=true"
	alice := audit{id: "a1", user: "alice", verb: "create", ns: "payments", resource: "pods", sub: "exec", name: "api-1", uri: execURI, code: 101, ts: at(10, 0)}
	aliceStarted := alice
	aliceStarted.stage, aliceStarted.ts = "ResponseStarted", at(10, 0)
	f.write(t,
		aliceStarted.event(), alice.event(), // two stages, one request
		audit{id: "b1", user: "bob", verb: "create", ns: "payments", resource: "pods", sub: "attach", name: "api-2",
			uri: "/api/v1/namespaces/payments/pods/api-2/attach?container=sidecar", code: 403, outcome: "failure", ts: at(10, 5)}.event(),
		audit{id: "o1", user: "eve", verb: "create", ns: "default", resource: "pods", sub: "exec", name: "x", uri: execURI, ts: at(10, 1)}.event(),
		audit{id: "late", user: "eve", verb: "create", ns: "payments", resource: "pods", sub: "exec", name: "x", uri: execURI, ts: at(13, 0)}.event(),
		audit{id: "get", user: "eve", verb: "get", ns: "payments", resource: "pods", name: "api-1", uri: "/api/v1/namespaces/payments/pods/api-1", ts: at(10, 2)}.event(),
	)
	args := window(at(9, 0), at(12, 0))
	args["namespace"] = "payments"
	rows := f.run(t, "exec_into_pod_timeline", args)
	check(t, pick(rows, "timestamp", "user", "pod", "container", "how", "command", "source_ip", "outcome", "status"), []string{
		"timestamp=10:00:00|user=alice|pod=api-1|container=app|how=exec|command=sh -c id -u|source_ip=10.0.0.5|outcome=success|status=101",
		"timestamp=10:05:00|user=bob|pod=api-2|container=sidecar|how=attach|command=|source_ip=10.0.0.5|outcome=failure|status=403",
	})
}

func testPrivilegedWorkloads(t *testing.T, f *fixture, at func(hh, mm int) time.Time) {
	yes, no := true, false
	priv := &schemas.KubernetesPodSpec{Privileged: &yes, Images: []string{"xmrig:latest"}}
	host := &schemas.KubernetesPodSpec{Privileged: &no, HostPID: &yes, HostNetwork: &yes, AddedCapabilities: []string{"SYS_ADMIN"}, Images: []string{"agent:1"}}
	plain := &schemas.KubernetesPodSpec{Privileged: &no, Images: []string{"web:1"}}
	miner := audit{id: "p1", user: "ci-bot", verb: "create", ns: "ci", resource: "pods", name: "miner", code: 201, ts: at(9, 0), spec: priv}
	minerReceived := miner
	minerReceived.stage = "RequestReceived"
	f.write(t,
		minerReceived.event(), miner.event(),
		audit{id: "p2", user: "mallory", verb: "create", ns: "kube-system", resource: "daemonsets", group: "apps", name: "agent", code: 201, ts: at(15, 30), spec: host}.event(),
		audit{id: "p3", user: "dev", verb: "create", ns: "web", resource: "pods", name: "web", code: 201, ts: at(11, 0), spec: plain}.event(),
		audit{id: "p4", user: "dev", verb: "create", ns: "web", resource: "pods", name: "denied", code: 403, outcome: "failure", ts: at(11, 0), spec: priv}.event(),
		audit{id: "p5", user: "dev", verb: "update", ns: "ci", resource: "pods", name: "miner", code: 200, ts: at(12, 0), spec: priv}.event(),
		audit{id: "p6", user: "old", verb: "create", ns: "ci", resource: "pods", name: "yesterday", code: 201, ts: at(-2, 0), spec: priv}.event(),
	)
	rows := f.run(t, "privileged_workloads", window(at(0, 0), at(24, 0)))
	check(t, pick(rows, "created", "namespace", "kind", "name", "created_by", "reasons", "capabilities", "images"), []string{
		"created=09:00:00|namespace=ci|kind=pods|name=miner|created_by=ci-bot|reasons=[privileged]|capabilities=[]|images=[xmrig:latest]",
		"created=15:30:00|namespace=kube-system|kind=daemonsets|name=agent|created_by=mallory|reasons=[hostPID hostNetwork capabilities]|capabilities=[SYS_ADMIN]|images=[agent:1]",
	})
}

func testRBACChangesByUser(t *testing.T, f *fixture, at func(hh, mm int) time.Time) {
	const rbac = "rbac.authorization.k8s.io"
	f.write(t,
		audit{id: "r1", user: "alice", verb: "create", resource: "clusterrolebindings", name: "crb-admin", group: rbac, code: 201, ts: at(10, 0)}.event(),
		audit{id: "r2", user: "alice", verb: "patch", ns: "ns1", resource: "roles", name: "r1", group: rbac, code: 200, ts: at(10, 30)}.event(),
		audit{id: "r3", user: "bob", verb: "delete", ns: "ns2", resource: "rolebindings", name: "rb", group: rbac, code: 403, outcome: "failure", ts: at(11, 0)}.event(),
		audit{id: "r4", user: "carol", verb: "get", ns: "ns1", resource: "roles", name: "r1", group: rbac, code: 200, ts: at(11, 0)}.event(),
		audit{id: "r5", user: "dave", verb: "create", ns: "ns1", resource: "configmaps", name: "cm", code: 201, ts: at(11, 0)}.event(),
	)
	args := window(at(0, 0), at(23, 0))
	args["user"] = ""
	rows := f.run(t, "rbac_changes_by_user", args)
	check(t, pick(rows, "user", "changes", "refused", "first", "last", "verbs", "objects"), []string{
		"user=alice|changes=2|refused=0|first=10:00:00|last=10:30:00|verbs=[create patch]|objects=[clusterrolebindings/crb-admin ns1/roles/r1]",
		"user=bob|changes=1|refused=1|first=11:00:00|last=11:00:00|verbs=[delete]|objects=[ns2/rolebindings/rb]",
	})
	args["user"] = "bob"
	check(t, pick(f.run(t, "rbac_changes_by_user", args), "user", "changes"), []string{"user=bob|changes=1"})
}

func flow(id, ns, pod, ip string, port int32, ts time.Time) schemas.Event {
	e := base(id, ts)
	e.Event.Dataset, e.Crowsnest.Source = "crowsnest.tetragon", "tetragon"
	e.Event.Category, e.Event.Type, e.Event.Action = []string{"network"}, []string{"connection"}, "connect"
	e.Orchestrator = schemas.Orchestrator{Type: "kubernetes", Namespace: ns, Resource: schemas.OrchestratorResource{Type: "pods", Name: pod}}
	e.Destination = schemas.Destination{IP: ip, Port: port}
	return e
}

func testTopTalkersNewDestinations(t *testing.T, f *fixture, at func(hh, mm int) time.Time) {
	f.write(t,
		flow("n1", "shop", "app-1", "10.0.0.9", 5432, at(1, 0)), // baseline
		flow("n2", "shop", "app-1", "10.0.0.9", 5432, at(10, 0)),
		flow("n3", "shop", "app-1", "203.0.113.7", 443, at(10, 1)),
		flow("n4", "shop", "app-1", "203.0.113.7", 443, at(10, 2)),
		flow("n5", "shop", "app-1", "203.0.113.7", 443, at(10, 3)),
		flow("n6", "shop", "app-1", "198.51.100.2", 4444, at(10, 4)),
		flow("n7", "shop", "app-2", "2001:db8::7", 443, at(10, 5)),
		flow("n8", "shop", "", "203.0.113.7", 443, at(10, 6)),       // no pod
		flow("n9", "shop", "app-3", "10.0.0.9", 5432, at(1, 30)),    // baseline only
		flow("n10", "shop", "app-2", "203.0.113.7", 443, at(12, 0)), // after the window
	)
	args := window(at(9, 0), at(11, 0))
	args["baseline_from"], args["limit"] = chTime(at(0, 0)), "10"
	rows := f.run(t, "top_talkers_new_destinations", args)
	check(t, pick(rows, "namespace", "pod", "new_destinations", "connections", "first_seen", "top_destinations"), []string{
		"namespace=shop|pod=app-1|new_destinations=2|connections=4|first_seen=10:01:00|top_destinations=[203.0.113.7:443 198.51.100.2:4444]",
		"namespace=shop|pod=app-2|new_destinations=1|connections=1|first_seen=10:05:00|top_destinations=[2001:db8::7:443]",
	})
	args["limit"] = "1"
	check(t, pick(f.run(t, "top_talkers_new_destinations", args), "pod"), []string{"pod=app-1"})
}

func alert(id, rule, level, entity, ns string, ts time.Time) schemas.Alert {
	e := base(id, ts)
	var a schemas.Alert
	a.SetEvent(&e)
	a.Event.Kind = "alert"
	a.Rule = schemas.Rule{ID: rule, Name: "rule " + rule, Level: level}
	a.Crowsnest.Alert.Entity = entity
	a.Orchestrator.Namespace = ns
	return a
}

func testAlertsByRulePerHour(t *testing.T, f *fixture, at func(hh, mm int) time.Time) {
	first := alert("al1", "r1", "high", "pod:shop/a", "shop", at(10, 5))
	f.writeAlerts(t,
		first,
		alert("al2", "r1", "high", "pod:shop/b", "shop", at(10, 20)),
		alert("al3", "r2", "low", "user:bob", "", at(10, 30)),
		alert("al4", "r1", "high", "pod:web/a", "web", at(11, 10)),
		alert("al5", "r1", "high", "pod:web/a", "web", at(14, 0)), // after the window
	)
	// The same alert again in another batch: counted once.
	f.writeAlerts(t, first, alert("al6", "r2", "low", "user:bob", "", at(10, 40)))
	rows := f.run(t, "alerts_by_rule_per_hour", window(at(10, 0), at(12, 0)))
	check(t, pick(rows, "hour", "rule_id", "rule_level", "alerts", "entities", "namespaces"), []string{
		"hour=10:00:00|rule_id=r1|rule_level=high|alerts=2|entities=2|namespaces=[shop]",
		"hour=10:00:00|rule_id=r2|rule_level=low|alerts=2|entities=1|namespaces=[]",
		"hour=11:00:00|rule_id=r1|rule_level=high|alerts=1|entities=1|namespaces=[web]",
	})
}
