package elasticsearch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// richEvent is an event with most groups of the schema set, a request
// object (json → flattened) and addresses (ip).
func richEvent(id string) []byte {
	ts := time.Date(2026, 11, 26, 11, 0, 0, 123_000_000, time.UTC)
	e := schemas.Event{
		Timestamp: ts,
		Message:   "create pods in namespace payments",
		Tags:      []string{"k8s", "privileged"},
		Labels:    map[string]string{"cluster": "prod-eu-1"},
		Event: schemas.EventFields{ID: id, Kind: "event", Category: []string{"configuration"}, Type: []string{"creation"},
			Action: "create", Outcome: "success", Severity: 47, Dataset: "crowsnest.k8s_audit", Module: "crowsnest",
			Ingested: ts.Add(time.Second)},
		Crowsnest: schemas.Crowsnest{SchemaVersion: schemas.SchemaVersion, Source: topology.SourceK8sAudit,
			Collector: schemas.CrowsnestCollector{ID: "node-2", Node: "node-2"}},
		Host:        schemas.Host{Name: "node-2", IP: []string{"10.0.0.2", "fd00::2"}},
		Container:   schemas.Container{ID: "c0ffee", Name: "api", Runtime: "containerd", Labels: map[string]string{"app": "api"}},
		Process:     schemas.Process{PID: 4242, Name: "sh", Args: []string{"sh", "-c", "id"}, CommandLine: "sh -c id"},
		Destination: schemas.Destination{IP: "192.0.2.10", Port: 443, Domain: "example.com"},
		Kubernetes: schemas.Kubernetes{Audit: schemas.KubernetesAudit{AuditID: id, Stage: "ResponseComplete",
			Verb: "create", SourceIPs: []string{"10.12.4.17"},
			RequestObject: json.RawMessage(`{"kind":"Pod","spec":{"containers":[{"name":"api","securityContext":{"privileged":true}}]}}`)}},
	}
	return e.AppendJSON(nil)
}

// The issue-3 wiring test: the templates from schemas/ installed, a batch
// written through go-elasticsearch/v8, read back and compared field by
// field, the mapping checked, a hostile document kept from the mapping.
func TestWiring(t *testing.T) {
	base := serverURL(t)
	ns := testNamespace(t, base)
	s := openSink(t, testConfig(base, ns))
	ctx := context.Background()

	var batch []sink.Record
	want := map[string][]byte{}
	add := func(k sink.Kind, id string, doc []byte) {
		batch = append(batch, sink.Record{Kind: k, ID: id, Data: doc})
		want[id] = doc
	}
	for i := range 30 {
		id := fmt.Sprintf("wiring-e%d", i)
		add(sink.KindEvents, id, sinktest.EventDoc(id))
	}
	for i := range 10 {
		id := fmt.Sprintf("wiring-a%d", i)
		add(sink.KindAlerts, id, sinktest.AlertDoc(id, "wiring-e0"))
	}
	add(sink.KindEvents, "wiring-rich", richEvent("wiring-rich"))
	if err := s.WriteBatch(ctx, batch); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}

	t.Run("templates installed from schemas", func(t *testing.T) {
		for _, k := range sink.Kinds() {
			tmpl := s.templates[k]
			status, body := esRequest(t, base, http.MethodGet, "/_component_template/"+tmpl.componentName, nil)
			if status != http.StatusOK {
				t.Fatalf("component template %s: %d %s", tmpl.componentName, status, body)
			}
			got := gjson.GetBytes(body, "component_templates.0.component_template.template.mappings").Raw
			if d := jsonDiff(t, []byte(got), tmpl.mappings); d != "" {
				t.Errorf("%s: installed mappings differ from schemas/: %s", k, d)
			}
			status, body = esRequest(t, base, http.MethodGet, "/_index_template/"+tmpl.prefix, nil)
			if status != http.StatusOK {
				t.Fatalf("index template %s: %d %s", tmpl.prefix, status, body)
			}
			it := gjson.GetBytes(body, "index_templates.0.index_template")
			if p := it.Get("index_patterns.0").String(); p != tmpl.prefix+"-*" {
				t.Errorf("%s: index pattern %q", k, p)
			}
			if c := it.Get("composed_of.0").String(); c != tmpl.componentName {
				t.Errorf("%s: composed of %q", k, c)
			}
			if !it.Get("data_stream").Exists() {
				t.Errorf("%s: not a data stream template", k)
			}
		}
	})

	t.Run("read back field by field", func(t *testing.T) {
		sources, counts := hits(t, base, ns)
		if len(counts) != len(want) {
			t.Errorf("%d documents, want %d", len(counts), len(want))
		}
		for id, doc := range want {
			if counts[id] != 1 {
				t.Errorf("%s stored %d times", id, counts[id])
				continue
			}
			if d := jsonDiff(t, sources[id], doc); d != "" {
				t.Errorf("%s: _source differs from what was written: %s", id, d)
			}
		}
	})

	t.Run("mapped types answer queries", func(t *testing.T) {
		ds := s.DataStream(sink.KindEvents)
		for _, q := range []struct {
			name, query string
			want        int64
		}{
			{"keyword", `{"term":{"orchestrator.namespace":"payments"}}`, 30},
			{"date range", `{"range":{"@timestamp":{"gte":"2026-11-26T11:00:00Z"}}}`, 1},
			{"ip cidr", `{"term":{"host.ip":"10.0.0.0/8"}}`, 1},
			{"ipv6", `{"term":{"host.ip":"fd00::2"}}`, 1},
			{"integer", `{"range":{"destination.port":{"gte":400,"lte":500}}}`, 1},
			{"flattened labels", `{"term":{"labels.cluster":"prod-eu-1"}}`, 31},
			{"flattened request object", `{"term":{"kubernetes.audit.requestObject.kind":"Pod"}}`, 1},
			{"text", `{"match":{"message":"secrets"}}`, 30},
		} {
			status, body := esRequest(t, base, http.MethodPost, "/"+ds+"/_count", []byte(`{"query":`+q.query+`}`))
			if status != http.StatusOK {
				t.Errorf("%s: %d %s", q.name, status, body)
				continue
			}
			if n := gjson.GetBytes(body, "count").Int(); n != q.want {
				t.Errorf("%s: %d documents, want %d", q.name, n, q.want)
			}
		}
	})

	fieldsBefore := mappedFields(t, base, s.DataStream(sink.KindEvents))
	t.Run("dynamic false holds", func(t *testing.T) {
		status, body := esRequest(t, base, http.MethodGet, "/"+s.DataStream(sink.KindEvents)+"/_mapping", nil)
		if status != http.StatusOK {
			t.Fatalf("mapping: %d %s", status, body)
		}
		gjson.ParseBytes(body).ForEach(func(idx, m gjson.Result) bool {
			if d := m.Get("mappings.dynamic").String(); d != "false" {
				t.Errorf("%s: dynamic = %q, want false", idx, d)
			}
			return true
		})
		want := countLeaves(gjson.GetBytes(s.templates[sink.KindEvents].mappings, "properties"))
		if len(fieldsBefore) != want {
			t.Errorf("data stream maps %d fields, the template %d", len(fieldsBefore), want)
		}
	})

	t.Run("hostile document adds no mappings", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`{"@timestamp":"2026-11-26T12:00:00Z","event":{"id":"wiring-hostile","kind":"event"},"labels":{`)
		for i := range 10_000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":"v%d"`, i, i)
		}
		b.WriteString(`}`)
		for i := range 10_000 {
			fmt.Fprintf(&b, `,"unknown_%d":{"deep":%d}`, i, i)
		}
		b.WriteString(`}`)
		err := s.WriteBatch(ctx, []sink.Record{{Kind: sink.KindEvents, ID: "wiring-hostile", Data: []byte(b.String())}})
		if err != nil {
			t.Fatalf("WriteBatch: %v", err)
		}
		after := mappedFields(t, base, s.DataStream(sink.KindEvents))
		if !slices.Equal(after, fieldsBefore) {
			t.Errorf("mapping grew from %d to %d fields", len(fieldsBefore), len(after))
		}
		// The labels are still searchable, under the one flattened field.
		esRequest(t, base, http.MethodPost, "/"+s.DataStream(sink.KindEvents)+"/_refresh", nil)
		_, body := esRequest(t, base, http.MethodPost, "/"+s.DataStream(sink.KindEvents)+"/_count",
			[]byte(`{"query":{"term":{"labels.k9999":"v9999"}}}`))
		if n := gjson.GetBytes(body, "count").Int(); n != 1 {
			t.Errorf("labels.k9999 matched %d documents, want 1: %s", n, body)
		}
	})

	t.Run("redelivery stores nothing twice", func(t *testing.T) {
		if err := s.WriteBatch(ctx, batch); err != nil {
			t.Fatalf("WriteBatch again: %v", err)
		}
		_, counts := hits(t, base, ns)
		for id, n := range counts {
			if n != 1 {
				t.Errorf("%s stored %d times", id, n)
			}
		}
		if len(counts) != len(want)+1 { // + the hostile one
			t.Errorf("%d documents, want %d", len(counts), len(want)+1)
		}
	})

	t.Run("gzip", func(t *testing.T) {
		cfg := testConfig(base, ns)
		cfg.Compression = CompressionGzip
		gz := openSink(t, cfg)
		if err := gz.WriteBatch(ctx, []sink.Record{{Kind: sink.KindEvents, ID: "wiring-gzip", Data: sinktest.EventDoc("wiring-gzip")}}); err != nil {
			t.Fatalf("WriteBatch: %v", err)
		}
		if _, counts := hits(t, base, ns); counts["wiring-gzip"] != 1 {
			t.Error("the gzip-compressed document is not stored")
		}
	})
}

// mappedFields lists the leaf fields the data stream's backing indices map.
func mappedFields(tb testing.TB, base, ds string) []string {
	tb.Helper()
	status, body := esRequest(tb, base, http.MethodGet, "/"+ds+"/_mapping", nil)
	if status != http.StatusOK {
		tb.Fatalf("mapping of %s: %d %s", ds, status, body)
	}
	seen := map[string]bool{}
	gjson.ParseBytes(body).ForEach(func(_, m gjson.Result) bool {
		var walk func(prefix string, props gjson.Result)
		walk = func(prefix string, props gjson.Result) {
			props.ForEach(func(k, v gjson.Result) bool {
				if sub := v.Get("properties"); sub.Exists() {
					walk(prefix+k.String()+".", sub)
				} else {
					seen[prefix+k.String()] = true
				}
				return true
			})
		}
		walk("", m.Get("mappings.properties"))
		return true
	})
	out := make([]string, 0, len(seen))
	for f := range seen {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

func countLeaves(props gjson.Result) int {
	n := 0
	props.ForEach(func(_, v gjson.Result) bool {
		if sub := v.Get("properties"); sub.Exists() {
			n += countLeaves(sub)
		} else {
			n++
		}
		return true
	})
	return n
}

// jsonDiff compares two JSON documents value by value and describes the
// first differences by path; "" when they are equal.
func jsonDiff(tb testing.TB, got, want []byte) string {
	tb.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return "got is not JSON: " + err.Error()
	}
	if err := json.Unmarshal(want, &w); err != nil {
		tb.Fatalf("want is not JSON: %v", err)
	}
	var diffs []string
	var walk func(path string, g, w any)
	walk = func(path string, g, w any) {
		gm, gok := g.(map[string]any)
		wm, wok := w.(map[string]any)
		if gok && wok {
			keys := map[string]bool{}
			for k := range gm {
				keys[k] = true
			}
			for k := range wm {
				keys[k] = true
			}
			for k := range keys {
				walk(path+"."+k, gm[k], wm[k])
			}
			return
		}
		if !reflect.DeepEqual(g, w) {
			diffs = append(diffs, fmt.Sprintf("%s: got %v, want %v", path, g, w))
		}
	}
	walk("", g, w)
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return strings.Join(diffs, "; ")
}
