package access_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"golang.org/x/crypto/bcrypt"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/access"
	essink "github.com/crowsnest-siem/crowsnest/sinks/elasticsearch"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

func TestElasticsearchPlan(t *testing.T) {
	c := exampleConfig(t)
	pw := passwords(c)
	plan, err := access.ElasticsearchPlan(c, pw, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range plan.Roles {
		j, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("PUT _security/role/" + r.Name + "\n" + string(j) + "\n")
	}
	golden(t, "elasticsearch-roles.txt", []byte(b.String()))
	// The tenant template renders to a terms query once mustache fills in
	// the user's namespaces.
	src := gjson.GetBytes(plan.Roles[2].Indices[0].Query, "template.source").String()
	rendered := strings.Replace(src, "{{#toJson}}_user.metadata.namespaces{{/toJson}}", `["payments","payments-jobs"]`, 1)
	if !json.Valid([]byte(rendered)) || gjson.Get(rendered, `terms.orchestrator\.namespace.1`).String() != "payments-jobs" {
		t.Errorf("template %s renders to %s", src, rendered)
	}
	want := map[string]struct {
		roles string
		ns    string
	}{
		"crowsnest_writer": {"crowsnest_writer", ""}, "alice": {"crowsnest_analyst", ""},
		"bob": {"crowsnest_tenant", "payments,payments-jobs"}, "carol": {"crowsnest_tenant", "search"}, "dave": {"crowsnest_tenant", "search"},
	}
	if len(plan.Users) != len(want) {
		t.Fatalf("%d users, want %d", len(plan.Users), len(want))
	}
	for _, u := range plan.Users {
		w := want[u.Name]
		if strings.Join(u.Roles, ",") != w.roles || strings.Join(u.Metadata.Namespaces, ",") != w.ns {
			t.Errorf("user %s: roles %v namespaces %v", u.Name, u.Roles, u.Metadata.Namespaces)
		}
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pw[u.Name].Value())) != nil {
			t.Errorf("user %s: the hash is not of the password", u.Name)
		}
		j, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(j), pw[u.Name].Value()) {
			t.Errorf("user %s: the body holds the password", u.Name)
		}
	}
}

// The generated roles and users, applied on a secured node over TLS, let
// each principal do its job and nothing more: the writer writes through the
// real sink (CA pinned) and cannot read, overwrite or delete; the analyst
// reads everything and cannot write; a tenant reads its namespaces' documents
// only; a sink trusting another CA refuses the node.
func TestElasticsearchOnSecuredNode(t *testing.T) {
	node := startSecuredES(t)
	ctx := testCtx(t)
	c := exampleConfig(t)
	pw := passwords(c)
	plan, err := access.ElasticsearchPlan(c, pw, bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	adminCfg := essink.NewDefaultConfig()
	adminCfg.Addresses = []string{node.URL}
	adminCfg.Username, adminCfg.Password = node.Admin, config.Secret(node.AdminPassword)
	adminCfg.TLS.CAFile = node.CAFile
	adminClient, err := essink.Open(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := access.ApplyElasticsearch(ctx, adminClient, plan); err != nil {
		t.Fatal(err)
	}
	// Applying again updates in place.
	if err := access.ApplyElasticsearch(ctx, adminClient, plan); err != nil {
		t.Fatalf("second apply: %v", err)
	}

	newSink := func(tb testing.TB, user string, mod func(*essink.Config)) *essink.Sink {
		cfg := essink.NewDefaultConfig()
		cfg.Addresses = []string{node.URL}
		cfg.Username, cfg.Password = user, pw[user]
		cfg.TLS.CAFile = node.CAFile
		cfg.ManageTemplates = false
		if mod != nil {
			mod(&cfg)
		}
		s, err := essink.New(cfg, sinktest.Settings(tb))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = s.Close(context.Background()) })
		return s
	}
	// The administrator installs the templates (the writer may not) by
	// writing the first alert.
	admin := newSink(t, "", func(c *essink.Config) {
		c.Username, c.Password, c.ManageTemplates = node.Admin, config.Secret(node.AdminPassword), true
	})
	if err := admin.WriteBatch(ctx, []sink.Record{record(t, sink.KindAlerts, "a0", "payments")}); err != nil {
		t.Fatalf("admin: %v", err)
	}
	// The writer creates the events data stream itself (auto_configure).
	writer := newSink(t, c.Writer, nil)
	batch := []sink.Record{
		record(t, sink.KindEvents, "e1", "payments"), record(t, sink.KindEvents, "e2", "payments-jobs"),
		record(t, sink.KindEvents, "e3", "search"), record(t, sink.KindEvents, "e4", "kube-system"),
		record(t, sink.KindAlerts, "a1", "search"),
	}
	if err := writer.WriteBatch(ctx, batch); err != nil {
		t.Fatalf("writer: %v", err)
	}
	// A redelivery is a create of an existing id: a conflict the sink
	// counts as stored, with create_doc only.
	if err := writer.WriteBatch(ctx, batch[:2]); err != nil {
		t.Fatalf("writer, redelivery: %v", err)
	}
	if st, body, err := node.call(node.Admin, node.AdminPassword, "POST", "/logs-crowsnest.*/_refresh", ""); err != nil || st != http.StatusOK {
		t.Fatalf("refresh: %d %v %s", st, err, body)
	}

	events, alerts := writer.DataStream(sink.KindEvents), writer.DataStream(sink.KindAlerts)
	count := func(user, index string) (int, []string) {
		t.Helper()
		st, body, err := node.call(user, pw[user].Value(), "POST", "/"+index+"/_search?size=100", `{"query":{"match_all":{}}}`)
		if err != nil || st != http.StatusOK {
			t.Fatalf("%s searches %s: %d %v %s", user, index, st, err, body)
		}
		var ns []string
		for _, h := range gjson.Get(body, "hits.hits").Array() {
			ns = append(ns, h.Get(`_source.orchestrator.namespace`).String())
		}
		slices.Sort(ns)
		return int(gjson.Get(body, "hits.total.value").Int()), ns
	}
	for _, tc := range []struct {
		user, index string
		want        string // the namespaces of the documents seen
	}{
		{"alice", events, "kube-system,payments,payments-jobs,search"},
		{"alice", alerts, "payments,search"},
		{"bob", events, "payments,payments-jobs"},
		{"bob", alerts, "payments"},
		{"carol", events, "search"},
		{"dave", alerts, "search"},
	} {
		n, ns := count(tc.user, tc.index)
		if strings.Join(ns, ",") != tc.want || n != len(ns) {
			t.Errorf("%s reads %s: %d documents of %v, want %s", tc.user, tc.index, n, ns, tc.want)
		}
	}
	// The tenant role given by hand to a user without namespaces in its
	// metadata shows it nothing: an error or no hits, never documents.
	if st, body, err := node.call(node.Admin, node.AdminPassword, "PUT", "/_security/user/cn_eve", `{"password":"cn-eve-Secret-1","roles":["`+c.Elasticsearch.TenantRole+`"]}`); err != nil || st != http.StatusOK {
		t.Fatalf("create cn_eve: %d %v %s", st, err, body)
	}
	st, body, err := node.call("cn_eve", "cn-eve-Secret-1", "POST", "/"+events+"/_search", `{"query":{"match_all":{}}}`)
	if err != nil || (st == http.StatusOK && gjson.Get(body, "hits.hits.#").Int() != 0) {
		t.Errorf("a tenant-role user without namespaces: %d %v %s", st, err, body)
	}
	t.Logf("a tenant-role user without namespaces searches: HTTP %d", st)
	forbidden := func(what, user, method, path, body string) {
		t.Helper()
		st, resp, err := node.call(user, pw[user].Value(), method, path, body)
		if err != nil || st != http.StatusForbidden {
			t.Errorf("%s: %d %v %s, want 403", what, st, err, resp)
		}
	}
	forbidden("writer searches", c.Writer, "POST", "/"+events+"/_search", `{"query":{"match_all":{}}}`)
	forbidden("writer gets a document", c.Writer, "GET", "/"+events+"/_doc/e1", "")
	// Deletes address the data stream's backing index.
	st, body, err = node.call(node.Admin, node.AdminPassword, "GET", "/"+events+"/_settings", "")
	var backing string
	gjson.Parse(body).ForEach(func(k, _ gjson.Result) bool { backing = k.String(); return false })
	if err != nil || st != http.StatusOK || !strings.HasPrefix(backing, ".ds-"+events) {
		t.Fatalf("backing index of %s: %d %v %s", events, st, err, body)
	}
	forbidden("writer deletes a document", c.Writer, "DELETE", "/"+backing+"/_doc/e1", "")
	forbidden("writer deletes the backing index", c.Writer, "DELETE", "/"+backing, "")
	forbidden("writer writes elsewhere", c.Writer, "POST", "/other-index/_doc", `{"a":1}`)
	forbidden("writer reads users", c.Writer, "GET", "/_security/user", "")
	forbidden("analyst deletes a document", "alice", "DELETE", "/"+backing+"/_doc/e1", "")
	forbidden("tenant writes", "bob", "POST", "/"+events+"/_doc", `{"orchestrator":{"namespace":"payments"}}`)
	forbidden("tenant creates a role", "bob", "PUT", "/_security/role/x", `{}`)

	// The analyst, through the sink: every document refused.
	if err := newSink(t, "alice", nil).WriteBatch(ctx, []sink.Record{record(t, sink.KindEvents, "x1", "payments")}); err == nil {
		t.Error("the analyst wrote through the sink")
	}
	// Pinning by fingerprint trusts the node as the CA file does.
	if err := newSink(t, c.Writer, func(c *essink.Config) { c.TLS.CAFile, c.TLS.CAFingerprint = "", node.CAFingerprint }).
		WriteBatch(ctx, []sink.Record{record(t, sink.KindEvents, "e5", "payments")}); err != nil {
		t.Errorf("writer pinned by fingerprint: %v", err)
	}
	// Another CA: the sink refuses the node and writes nothing.
	err = newSink(t, c.Writer, func(c *essink.Config) { c.TLS.CAFile = node.WrongCAFile }).
		WriteBatch(ctx, []sink.Record{record(t, sink.KindEvents, "e6", "payments")})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("writer trusting another CA: %v, want a certificate error", err)
	}
	if st, body, _ := node.call(node.Admin, node.AdminPassword, "POST", "/logs-crowsnest.*/_refresh", ""); st != http.StatusOK {
		t.Fatalf("refresh: %d %s", st, body)
	}
	if n, _ := count("alice", events); n != 5 {
		t.Errorf("%d events stored, want 5 (e1-e5; not e6, refused)", n)
	}
}
