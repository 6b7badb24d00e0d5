package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/cli/query"
	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/elasticsearch"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// -update-query rewrites the golden files of crowsnest query from
// ClickHouse's answers (Elasticsearch's must then match them).
var updateQuery = flag.Bool("update-query", false, "rewrite cli/testdata/query golden files")

// TestQueryList: --list describes every hunt, its parameters and columns.
func TestQueryList(t *testing.T) {
	out, errOut, code := execute(t, "", "query", "--list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "testdata/query/list.txt", out)
}

// TestQueryErrors: bad input is a clear error and a non-zero exit, before
// (2) or when (1) a server is asked.
func TestQueryErrors(t *testing.T) {
	t.Setenv("CROWSNEST_CONFIG", "")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no hunt", nil, 2, "name a hunt"},
		{"unknown hunt", []string{"exec_into_pods"}, 2, `unknown hunt "exec_into_pods": did you mean exec_into_pod_timeline?`},
		{"list and hunt", []string{"--list", "privileged_workloads"}, 2, "--list takes no hunt"},
		{"missing parameter", []string{"exec_into_pod_timeline"}, 2, "--namespace is required: the Kubernetes namespace"},
		{"parameter of another hunt", []string{"privileged_workloads", "--namespace", "x"}, 2, "--namespace: hunt privileged_workloads takes no such parameter"},
		{"bad time", []string{"privileged_workloads", "--from", "2026-02-30"}, 2, `--from: "2026-02-30" is not a time`},
		{"empty window", []string{"privileged_workloads", "--from", "2026-11-02", "--to", "2026-11-01"}, 2, "is not before --to"},
		{"bad limit", []string{"privileged_workloads", "--limit", "0"}, 2, "--limit must be at least 1"},
		{"bad backend", []string{"privileged_workloads", "--backend", "splunk"}, 2, `--backend "splunk": want clickhouse or elasticsearch`},
		{"bad url", []string{"privileged_workloads", "--clickhouse", "ftp://x"}, 2, `sinks.clickhouse: clickhouse: url: scheme "ftp"`},
		{"clickhouse unreachable", []string{"privileged_workloads", "--clickhouse", "http://127.0.0.1:1"}, 1, "unreachable: is the server running"},
		{"elasticsearch unreachable", []string{"privileged_workloads", "--elasticsearch", "http://127.0.0.1:1"}, 1, "unreachable: is the server running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := execute(t, "", append([]string{"query"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want %d; stderr %q, want it to say %q", code, tc.code, errOut, tc.want)
			}
			if out != "" {
				t.Errorf("printed rows on error: %q", out)
			}
		})
	}
}

// golden compares got with the file at path, or rewrites it with
// -update-query.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *updateQuery {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-query to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestQueryHunts writes one day of fixture events and alerts through the
// real ClickHouse and Elasticsearch sinks, runs every hunt through the CLI
// on each backend, and compares both with the same golden output: the
// backends must agree row for row.
func TestQueryHunts(t *testing.T) {
	chURL := os.Getenv("CROWSNEST_TEST_CLICKHOUSE_URL")
	esURL := strings.TrimSuffix(os.Getenv("CROWSNEST_TEST_ELASTICSEARCH_URL"), "/")
	if chURL == "" || esURL == "" {
		t.Skip("CROWSNEST_TEST_CLICKHOUSE_URL and CROWSNEST_TEST_ELASTICSEARCH_URL must both be set: the test compares the two backends " +
			"(make services-up, then eval \"$(bash deploy/dev/services.sh env)\")")
	}
	evs, alerts := queryFixtures()
	chCfg := writeClickHouse(t, chURL, evs, alerts)
	esCfg := writeElasticsearch(t, esURL, evs, alerts)

	// The connection settings come from a config file, as an analyst's do.
	cfgPath := filepath.Join(t.TempDir(), "crowsnest.yaml")
	yaml := fmt.Sprintf("sinks:\n  clickhouse:\n    url: %q\n    database: %q\n  elasticsearch:\n    addresses: [%q]\n    namespace: %q\n",
		chCfg.URL, chCfg.Database, esURL, esCfg.Namespace)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	at := func(hh, mm int) string {
		return queryDay.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute).Format(time.RFC3339)
	}
	cases := []struct {
		name string
		args []string
		// more is the note a cut-short result prints.
		more bool
	}{
		{"exec_into_pod_timeline", []string{"exec_into_pod_timeline", "--namespace", "payments", "--from", at(9, 0), "--to", at(12, 0)}, false},
		{"exec_into_pod_timeline_none", []string{"exec_into_pod_timeline", "--namespace", "nobody", "--from", at(0, 0), "--to", at(24, 0)}, false},
		{"privileged_workloads", []string{"privileged_workloads", "--from", at(0, 0), "--to", at(24, 0)}, false},
		{"rbac_changes_by_user", []string{"rbac_changes_by_user", "--from", at(0, 0), "--to", at(23, 0)}, false},
		{"rbac_changes_by_user_bob", []string{"rbac_changes_by_user", "--from", at(0, 0), "--to", at(23, 0), "--user", "bob"}, false},
		{"top_talkers_new_destinations", []string{"top_talkers_new_destinations", "--from", at(9, 0), "--to", at(11, 0), "--baseline-from", at(0, 0)}, false},
		{"top_talkers_new_destinations_limit", []string{"top_talkers_new_destinations", "--from", at(9, 0), "--to", at(11, 0), "--baseline-from", at(0, 0), "--limit", "1"}, true},
		{"alerts_by_rule_per_hour", []string{"alerts_by_rule_per_hour", "--from", at(10, 0), "--to", at(12, 0)}, false},
		{"alerts_by_rule_per_hour_limit", []string{"alerts_by_rule_per_hour", "--from", at(10, 0), "--to", at(12, 0), "--limit", "2"}, true},
	}
	catalog, err := query.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range catalog {
		covered := false
		for _, c := range cases {
			covered = covered || c.args[0] == h.Name
		}
		if !covered {
			t.Errorf("hunt %s has no case here: both backends must be tested on it", h.Name)
		}
	}
	for _, tc := range cases {
		for _, backend := range []string{backendClickHouse, backendElasticsearch} {
			for _, format := range []string{"txt", "jsonl"} {
				t.Run(tc.name+"/"+backend+"/"+format, func(t *testing.T) {
					args := append([]string{"query", "--config", cfgPath, "--backend", backend}, tc.args...)
					if format == "jsonl" {
						args = append(args, "--json")
					}
					out, errOut, code := execute(t, "", args...)
					if code != 0 {
						t.Fatalf("exit %d: %s", code, errOut)
					}
					if got := strings.Contains(errOut, "more match (raise --limit)"); got != tc.more {
						t.Errorf("stderr %q: 'more match' note %t, want %t", errOut, got, tc.more)
					}
					if format == "jsonl" {
						for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
							if line != "" && !json.Valid([]byte(line)) {
								t.Errorf("not JSON: %s", line)
							}
						}
					}
					path := "testdata/query/" + tc.name + "." + format
					if backend != backendClickHouse && *updateQuery {
						// The goldens are ClickHouse's; Elasticsearch is
						// checked against them even while updating.
						want, err := os.ReadFile(path)
						if err != nil {
							t.Fatal(err)
						}
						if out != string(want) {
							t.Errorf("elasticsearch differs from clickhouse:\n--- elasticsearch\n%s--- clickhouse\n%s", out, want)
						}
						return
					}
					golden(t, path, out)
				})
			}
		}
	}
}

// queryDay is the day the fixtures happen on.
var queryDay = time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)

// queryFixtures are the events and alerts every hunt reads: for each hunt,
// rows it must find and rows it must leave out.
func queryFixtures() ([]schemas.Event, []schemas.Alert) {
	at := func(hh, mm int) time.Time {
		return queryDay.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
	}
	var evs []schemas.Event

	// exec_into_pod_timeline
	execURI := "/api/v1/namespaces/payments/pods/api-1/exec?command=sh&command=-c&command=id%20-u&container=app&stdin=true&tty=true"
	alice := qAudit{id: "a1", user: "alice", verb: "create", ns: "payments", resource: "pods", sub: "exec", name: "api-1", uri: execURI, code: 101, ts: at(10, 0)}
	aliceStarted := alice
	aliceStarted.stage = "ResponseStarted"
	evs = append(evs,
		aliceStarted.event(), alice.event(), // two stages of one request: one row
		qAudit{id: "b1", user: "bob", verb: "create", ns: "payments", resource: "pods", sub: "attach", name: "api-2",
			uri: "/api/v1/namespaces/payments/pods/api-2/attach?container=sidecar", code: 403, outcome: "failure", ts: at(10, 5)}.event(),
		qAudit{id: "c1", user: "carol", verb: "create", ns: "payments", resource: "pods", sub: "exec", name: "api-3",
			uri: "/api/v1/namespaces/payments/pods/api-3/exec?command=cat&command=%2Fetc%2Fshadow&container=app", code: 101, ts: at(11, 30), noSource: true}.event(),
		qAudit{id: "o1", user: "eve", verb: "create", ns: "default", resource: "pods", sub: "exec", name: "x", uri: execURI, ts: at(10, 1)}.event(),
		qAudit{id: "late", user: "eve", verb: "create", ns: "payments", resource: "pods", sub: "exec", name: "x", uri: execURI, ts: at(13, 0)}.event(),
		qAudit{id: "get", user: "eve", verb: "get", ns: "payments", resource: "pods", name: "api-1", uri: "/api/v1/namespaces/payments/pods/api-1", ts: at(10, 2)}.event(),
	)

	// privileged_workloads
	yes, no := true, false
	priv := &schemas.KubernetesPodSpec{Privileged: &yes, Images: []string{"xmrig:latest"}}
	host := &schemas.KubernetesPodSpec{Privileged: &no, HostPID: &yes, HostNetwork: &yes, AddedCapabilities: []string{"SYS_ADMIN", "NET_ADMIN"}, Images: []string{"agent:1", "sidecar:2"}}
	paths := &schemas.KubernetesPodSpec{HostIPC: &yes, HostPaths: []string{"/", "/var/run/docker.sock"}, Images: []string{"debug:1"}}
	plain := &schemas.KubernetesPodSpec{Privileged: &no, Images: []string{"web:1"}}
	miner := qAudit{id: "p1", user: "ci-bot", verb: "create", ns: "ci", resource: "pods", name: "miner", code: 201, ts: at(9, 0), spec: priv}
	minerReceived := miner
	minerReceived.stage = "RequestReceived"
	evs = append(evs,
		minerReceived.event(), miner.event(),
		qAudit{id: "p2", user: "mallory", verb: "create", ns: "kube-system", resource: "daemonsets", group: "apps", name: "agent", code: 201, ts: at(15, 30), spec: host}.event(),
		qAudit{id: "p7", user: "mallory", verb: "create", ns: "kube-system", resource: "pods", name: "debug", code: 201, ts: at(15, 45), spec: paths}.event(),
		qAudit{id: "p3", user: "dev", verb: "create", ns: "web", resource: "pods", name: "web", code: 201, ts: at(11, 0), spec: plain}.event(),
		qAudit{id: "p4", user: "dev", verb: "create", ns: "web", resource: "pods", name: "denied", code: 403, outcome: "failure", ts: at(11, 0), spec: priv}.event(),
		qAudit{id: "p5", user: "dev", verb: "update", ns: "ci", resource: "pods", name: "miner", code: 200, ts: at(12, 0), spec: priv}.event(),
		qAudit{id: "p6", user: "old", verb: "create", ns: "ci", resource: "pods", name: "yesterday", code: 201, ts: at(-2, 0), spec: priv}.event(),
	)

	// rbac_changes_by_user
	const rbac = "rbac.authorization.k8s.io"
	evs = append(evs,
		qAudit{id: "r1", user: "alice", verb: "create", resource: "clusterrolebindings", name: "crb-admin", group: rbac, code: 201, ts: at(10, 0)}.event(),
		qAudit{id: "r2", user: "alice", verb: "patch", ns: "ns1", resource: "roles", name: "r1", group: rbac, code: 200, ts: at(10, 30)}.event(),
		qAudit{id: "r6", user: "alice", verb: "patch", ns: "ns1", resource: "roles", name: "r1", group: rbac, code: 200, ts: at(10, 45)}.event(),
		qAudit{id: "r3", user: "bob", verb: "delete", ns: "ns2", resource: "rolebindings", name: "rb", group: rbac, code: 403, outcome: "failure", ts: at(11, 0)}.event(),
		qAudit{id: "r4", user: "carol", verb: "get", ns: "ns1", resource: "roles", name: "r1", group: rbac, code: 200, ts: at(11, 0)}.event(),
		qAudit{id: "r5", user: "dave", verb: "create", ns: "ns1", resource: "configmaps", name: "cm", code: 201, ts: at(11, 0)}.event(),
		qAudit{id: "r7", user: "zed", verb: "update", ns: "ns3", resource: "roles", name: "x", group: rbac, code: 200, ts: at(23, 30)}.event(),
	)

	// top_talkers_new_destinations
	evs = append(evs,
		qFlow("n1", "shop", "app-1", "10.0.0.9", 5432, at(1, 0)), // baseline
		qFlow("n2", "shop", "app-1", "10.0.0.9", 5432, at(10, 0)),
		qFlow("n3", "shop", "app-1", "203.0.113.7", 443, at(10, 1)),
		qFlow("n4", "shop", "app-1", "203.0.113.7", 443, at(10, 2)),
		qFlow("n5", "shop", "app-1", "203.0.113.7", 443, at(10, 3)),
		qFlow("n6", "shop", "app-1", "198.51.100.2", 4444, at(10, 4)),
		qFlow("n11", "shop", "app-1", "198.51.100.1", 4444, at(10, 7)), // ties with n6: by address
		qFlow("n7", "shop", "app-2", "2001:db8::7", 443, at(10, 5)),
		qFlow("n8", "shop", "", "203.0.113.7", 443, at(10, 6)),       // no pod
		qFlow("n9", "shop", "app-3", "10.0.0.9", 5432, at(1, 30)),    // baseline only
		qFlow("n10", "shop", "app-2", "203.0.113.7", 443, at(12, 0)), // after the window
		qFlow("n12", "web", "front", "192.0.2.1", 80, at(10, 30)),
		qFlow("n13", "web", "front", "192.0.2.1", 80, at(10, 31)),
	)

	// alerts_by_rule_per_hour (al1 is written twice, in two batches)
	alerts := []schemas.Alert{
		qAlert("al1", "r1", "high", "pod:shop/a", "shop", at(10, 5)),
		qAlert("al2", "r1", "high", "pod:shop/b", "shop", at(10, 20)),
		qAlert("al3", "r2", "low", "user:bob", "", at(10, 30)),
		qAlert("al4", "r1", "high", "pod:web/a", "web", at(11, 10)),
		qAlert("al7", "r1", "high", "pod:web/b", "web", at(11, 15)),
		qAlert("al8", "r3", "critical", "pod:ci/miner", "ci", at(11, 20)),
		qAlert("al5", "r1", "high", "pod:web/a", "web", at(14, 0)), // after the window
		qAlert("al6", "r2", "low", "user:bob", "", at(10, 40)),
	}
	return evs, alerts
}

func qBase(id string, ts time.Time) schemas.Event {
	return schemas.Event{
		Timestamp: ts,
		Event:     schemas.EventFields{ID: id, Kind: "event", Dataset: "crowsnest.k8s_audit", Module: "crowsnest", Outcome: "success", Ingested: ts.Add(time.Second)},
		Crowsnest: schemas.Crowsnest{SchemaVersion: schemas.SchemaVersion, Source: "k8s_audit"},
		OCSF:      schemas.OCSF{ClassUID: 6003, CategoryUID: 6, ActivityID: 1, TypeUID: 600301, SeverityID: 1},
	}
}

// qAudit is a Kubernetes audit event of one request stage.
type qAudit struct {
	id, stage, user, verb, ns, resource, sub, name, group, uri, outcome string
	code                                                                int32
	ts                                                                  time.Time
	spec                                                                *schemas.KubernetesPodSpec
	noSource                                                            bool
}

func (a qAudit) event() schemas.Event {
	if a.stage == "" {
		a.stage = "ResponseComplete"
	}
	e := qBase(a.id+"-"+a.stage, a.ts)
	e.Event.Action = a.verb
	if a.outcome != "" {
		e.Event.Outcome = a.outcome
	}
	e.User.Name = a.user
	if !a.noSource {
		e.Source.IP = "10.0.0.5"
	}
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

func qFlow(id, ns, pod, ip string, port int32, ts time.Time) schemas.Event {
	e := qBase(id, ts)
	e.Event.Dataset, e.Crowsnest.Source = "crowsnest.tetragon", "tetragon"
	e.Event.Category, e.Event.Type, e.Event.Action = []string{"network"}, []string{"connection"}, "connect"
	e.Orchestrator = schemas.Orchestrator{Type: "kubernetes", Namespace: ns, Resource: schemas.OrchestratorResource{Type: "pods", Name: pod}}
	e.Destination = schemas.Destination{IP: ip, Port: port}
	return e
}

func qAlert(id, rule, level, entity, ns string, ts time.Time) schemas.Alert {
	e := qBase(id, ts)
	var a schemas.Alert
	a.SetEvent(&e)
	a.Event.Kind = "alert"
	a.Rule = schemas.Rule{ID: rule, Name: "rule " + rule, Level: level}
	a.Crowsnest.Alert.Entity = entity
	a.Orchestrator.Namespace = ns
	return a
}

// records turns fixtures into the records a sink is handed; the first
// alert goes again in a batch of its own (a redelivery: stored once).
func records(evs []schemas.Event, alerts []schemas.Alert) [][]sink.Record {
	var batch []sink.Record
	seq := uint64(0)
	for i := range evs {
		seq++
		batch = append(batch, sink.Record{Data: evs[i].AppendJSON(nil), ID: evs[i].Event.ID, Kind: sink.KindEvents, Seq: seq, Delivered: 1})
	}
	for i := range alerts {
		seq++
		batch = append(batch, sink.Record{Data: alerts[i].AppendJSON(nil), ID: alerts[i].Event.ID, Kind: sink.KindAlerts, Seq: seq, Delivered: 1})
	}
	again := sink.Record{Data: alerts[0].AppendJSON(nil), ID: alerts[0].Event.ID, Kind: sink.KindAlerts, Seq: seq + 1, Delivered: 2}
	return [][]sink.Record{batch, {again}}
}

func write(t *testing.T, s sink.Sink, evs []schemas.Event, alerts []schemas.Alert) {
	t.Helper()
	defer func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	for _, b := range records(evs, alerts) {
		if err := s.WriteBatch(context.Background(), b); err != nil {
			t.Fatalf("write fixtures: %v", err)
		}
	}
}

// writeClickHouse writes the fixtures into a database of the test's own,
// dropped when it ends.
func writeClickHouse(t *testing.T, raw string, evs []schemas.Event, alerts []schemas.Alert) clickhouse.Config {
	t.Helper()
	cfg := clickhouse.NewDefaultConfig()
	cfg.URL = raw
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	cfg.Database = "cn_test_query_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		admin := cfg
		admin.Database = "default"
		conn, err := clickhouse.Open(admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		if err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("drop %s: %v", cfg.Database, err)
		}
	})
	s, err := clickhouse.New(cfg, sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, evs, alerts)
	return cfg
}

// esQueryNamespace is the test's data stream namespace. Its name is fixed
// because the development server cannot delete a data stream: the test
// empties it (rollover, then delete the older backing indices) instead.
const esQueryNamespace = "crowsnest_test.cli_query"

// writeElasticsearch writes the fixtures into the test's namespace, emptied
// first, and refreshes it so that searches see them.
func writeElasticsearch(t *testing.T, base string, evs []schemas.Event, alerts []schemas.Alert) elasticsearch.Config {
	t.Helper()
	cfg := elasticsearch.NewDefaultConfig()
	cfg.Addresses, cfg.Namespace = []string{base}, esQueryNamespace
	var streams []string
	for _, k := range []sink.Kind{sink.KindEvents, sink.KindAlerts} {
		ds, err := elasticsearch.DataStreamName(k, cfg.Namespace)
		if err != nil {
			t.Fatal(err)
		}
		emptyDataStream(t, base, ds)
		streams = append(streams, ds)
	}
	s, err := elasticsearch.New(cfg, sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, evs, alerts)
	if status, body := esCall(t, base, http.MethodPost, "/"+strings.Join(streams, ",")+"/_refresh"); status != http.StatusOK {
		t.Fatalf("refresh: %d %s", status, body)
	}
	return cfg
}

// emptyDataStream rolls ds over and deletes its older backing indices.
func emptyDataStream(t *testing.T, base, ds string) {
	t.Helper()
	status, body := esCall(t, base, http.MethodGet, "/_resolve/index/"+url.PathEscape(ds))
	if status == http.StatusNotFound {
		return
	}
	var resolved struct {
		DataStreams []struct {
			BackingIndices []string `json:"backing_indices"`
		} `json:"data_streams"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &resolved) != nil {
		t.Fatalf("resolve %s: %d %s", ds, status, body)
	}
	if len(resolved.DataStreams) == 0 || len(resolved.DataStreams[0].BackingIndices) == 0 {
		return
	}
	if status, body := esCall(t, base, http.MethodPost, "/"+ds+"/_rollover"); status != http.StatusOK {
		t.Fatalf("rollover %s: %d %s", ds, status, body)
	}
	for _, idx := range resolved.DataStreams[0].BackingIndices {
		if status, body := esCall(t, base, http.MethodDelete, "/"+idx); status != http.StatusOK {
			t.Fatalf("delete %s: %d %s", idx, status, body)
		}
	}
}

func esCall(t *testing.T, base, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}
