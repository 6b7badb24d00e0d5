package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// TestHostileInputsSmoke is issue #9's scenario 8 at CI size: the same
// records as TestHostileInputs (it is small already), under its own name so
// `make test` runs it.
func TestHostileInputsSmoke(t *testing.T) {
	if os.Getenv(envSmoke) == "" && os.Getenv(envFull) == "" {
		t.Skipf("fault smoke scenario: set %s=1 (or %s=1) to run it; it builds and starts real processes", envSmoke, envFull)
	}
	hostileInputs(t, 1)
}

// TestHostileInputs is issue #9's scenario 8: hostile records through every
// source that can be fed from a file or over HTTP — the audit webhook and
// audit file, Falco over HTTP, Tetragon JSON lines from a file, generic JSON
// lines over HTTP, auditd's log, Docker and procwatch records from files —
// all the way into ClickHouse and Elasticsearch. Oversized records,
// 100k-deep nesting, invalid UTF-8, NUL/CR/LF, 100k distinct label keys and
// SQL/identifier-injection strings in names (users, namespaces, label keys,
// rule names). Checked: no process
// panics or exits; each record is once in the events stream and then in both
// stores, or once in the dead-letter stream with a reason, or refused over
// HTTP with a 4xx (the sender is told); ClickHouse holds the injected
// strings verbatim and its tables are intact; the Elasticsearch data
// stream's mapping does not grow past the template's fields. The full run
// sends each record three times over (distinct markers).
//
// Docker and procwatch records go in as JSON lines under their own source
// names: their collectors read the Docker API socket and /proc, which
// cannot be fed arbitrary bytes without a fake, so their collectors'
// reading is not covered; the processor's mappers and the stores are.
func TestHostileInputs(t *testing.T) {
	requireFull(t)
	hostileInputs(t, 3)
}

// outcome is what should become of a hostile record.
type outcome int

const (
	stored   outcome = iota // in the events stream once, then in both stores
	rejected                // dead-lettered with a reason, or refused with a 4xx
	either                  // either is right (the report shows which)
)

func (o outcome) String() string {
	return [...]string{"stored", "rejected", "stored or rejected"}[o]
}

// hostileCase is one record.
type hostileCase struct {
	source string // the feed: k8swh, k8sfile, falco, tetragon, json, auditd
	kind   string // control, oversize, deep, badutf8, nulcrlf, labels, inject0..
	marker string // unique, early in the record (within a dead-letter sample)
	body   []byte // the record: a line, an EventList item, an HTTP body
	want   outcome
	// chChecks are ClickHouse conditions on the stored row (a {v:String}
	// parameter bound to value) that must hold: the string stored verbatim.
	chChecks []chCheck
}

type chCheck struct{ cond, value string }

// injections are strings that break a query built by concatenation, in
// either quoting style ClickHouse accepts, or that look like its parameter
// syntax; they must be stored as data.
var injections = []string{
	`x'); DROP TABLE events; --`,
	"`events`; DROP DATABASE default; --",
	`" OR 1=1 --`,
	`\'; SELECT 1; --`,
	`{v:String}`,
}

func hostileInputs(t *testing.T, rounds int) {
	chURL, esURL := storeURLs(t)
	env := newEnv(t)
	start := time.Now()
	id := runID("hostile")
	cleanupStores(t, chURL, id, esURL, id)
	var cases []hostileCase
	for r := range rounds {
		cases = append(cases, hostileCases(fmt.Sprintf("%s-r%d", id, r))...)
	}
	markerRE := regexp.MustCompile(regexp.QuoteMeta(id) + `-r[0-9]+-[a-z0-9]+-[a-z0-9]+`)

	// The file sources read files written before they start.
	files := map[string]string{"k8sfile": env.Path("k8s-audit.log"), "tetragon": env.Path("tetragon.log"), "auditd": env.Path("audit.log"),
		"docker": env.Path("docker.log"), "procwatch": env.Path("procwatch.log")}
	for src, path := range files {
		var buf bytes.Buffer
		for _, c := range cases {
			if c.source == src {
				buf.Write(c.body)
				if c.kind == "nulcrlf" {
					buf.WriteString("\r\n")
				} else {
					buf.WriteByte('\n')
				}
			}
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o640); err != nil {
			t.Fatal(err)
		}
	}

	d := newDeployment(env, "")
	d.add("sink", env.Bin.Sink, fmt.Sprintf("data_dir: %s\nsinks:\n  file:\n    enabled: false\n  clickhouse:\n    enabled: true\n    url: %s\n    database: %s\n  elasticsearch:\n    enabled: true\n    addresses: [%q]\n    namespace: %s\n",
		env.Path("sink", "data"), chURL, id, esURL, id))
	// The generic json source needs a mapping: the hostile strings land in
	// user.name, orchestrator.namespace and the labels map.
	d.add("processor", env.Bin.Processor, `processor:
  normalize:
    json:
      mappings:
        - source: hostileapp
          id_field: id
          fields:
            - {from: user, to: user.name}
            - {from: namespace, to: orchestrator.namespace}
            - {from: labels, to: labels}
`)
	ports := env.Ports(3)
	token := "chaos-" + id
	tokenFile := env.WriteFile("collector/token", token+"\n")
	d.add("collector", env.Bin.Collector, fmt.Sprintf(`data_dir: %s
collectors:
  publish:
    collector_id: hostile
    node: hostile
  replay:
    enabled: false
  k8s_audit_file:
    enabled: true
    paths: [%q]
  k8s_audit_webhook:
    enabled: true
    listen: 127.0.0.1:%d
    allow_insecure_loopback: true
    bearer_token_file: %s
  falco_http:
    enabled: true
    listen: 127.0.0.1:%d
    allow_insecure_loopback: true
  auditd:
    enabled: true
    paths: [%q]
  json_lines:
    enabled: true
    source: tetragon
    files:
      paths: [%q]
`, env.Path("collector", "data"), files["k8sfile"], ports[0], tokenFile, ports[1], files["auditd"], files["tetragon"]))
	// A second collector: one json_lines block per collector, and this one
	// takes generic JSON over HTTP.
	d.add("collector-json", env.Bin.Collector, fmt.Sprintf(`data_dir: %s
collectors:
  publish:
    collector_id: hostile-json
    node: hostile
  replay:
    enabled: false
  json_lines:
    enabled: true
    source: json
    http:
      enabled: true
      listen: 127.0.0.1:%d
      allow_insecure_loopback: true
`, env.Path("collector-json", "data"), ports[2]))

	// Docker and procwatch records as JSON lines under their own source
	// names: their collectors read the Docker API socket and /proc, which
	// cannot be fed arbitrary bytes, but the processor's mappers and the
	// stores see the same bytes either way. One json_lines block per
	// collector, so one collector each.
	for _, src := range []string{"docker", "procwatch"} {
		d.add("collector-"+src, env.Bin.Collector, fmt.Sprintf(`data_dir: %s
collectors:
  publish:
    collector_id: hostile-%s
    node: hostile
  replay:
    enabled: false
  json_lines:
    enabled: true
    source: %s
    files:
      paths: [%q]
`, env.Path("collector-"+src, "data"), src, src, files[src]))
	}

	// The push sources, one request per record so each answer belongs to
	// one record.
	refused := map[string]string{} // marker → HTTP status, for 4xx answers
	client := &http.Client{Timeout: time.Minute}
	for _, c := range cases {
		var u, body, auth string
		switch c.source {
		case "k8swh":
			u, auth = fmt.Sprintf("http://127.0.0.1:%d/audit", ports[0]), "Bearer "+token
			body = `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + string(c.body) + `]}`
		case "falco":
			u, body = fmt.Sprintf("http://127.0.0.1:%d/", ports[1]), string(c.body)
		case "json":
			u, body = fmt.Sprintf("http://127.0.0.1:%d/", ports[2]), string(c.body)
		default:
			continue
		}
		status, err := postOnce(client, u, auth, body)
		if err != nil {
			t.Fatalf("%s %s: %v", c.source, c.kind, err)
		}
		switch {
		case status/100 == 2:
		case status/100 == 4:
			refused[c.marker] = http.StatusText(status)
		default:
			t.Fatalf("%s %s: answered %d, want 2xx or a 4xx refusal", c.source, c.kind, status)
		}
	}
	t.Logf("%d hostile records (%d rounds) written or sent; %d refused over HTTP", len(cases), rounds, len(refused))

	// Wait until every record is accounted for somewhere, then a little
	// longer for late duplicates.
	url := d.nats.URL
	deadline := start.Add(5 * time.Minute)
	var res hostileResult
	for {
		var err error
		res, err = readHostile(url, markerRE)
		if err != nil {
			t.Fatal(err)
		}
		if res.accounted()+len(refused) >= len(cases) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("only %d of %d records accounted for (events %d, dead-letter %d, refused %d) before the deadline",
				res.accounted()+len(refused), len(cases), len(res.events), len(res.dead), len(refused))
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(5 * time.Second)
	res, err := readHostile(url, markerRE)
	if err != nil {
		t.Fatal(err)
	}
	waitDrained(t, url, start.Add(8*time.Minute), "clickhouse", "elasticsearch")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	chIDs, err := harness.ClickHouseCensus(ctx, chURL, id, "events")
	if err != nil {
		t.Fatal(err)
	}
	esIndex := "logs-crowsnest.events-" + id
	var storedIDs []string
	for _, e := range res.events {
		storedIDs = append(storedIDs, e...)
	}
	esIDs, err := elasticsearchIDs(ctx, esURL, esIndex, storedIDs)
	if err != nil {
		t.Fatal(err)
	}

	// Every record, against what it should have become.
	byOutcome := map[string]int{}
	checked := 0
	for _, c := range cases {
		ev, dl, st := res.events[c.marker], res.dead[c.marker], refused[c.marker]
		got := ""
		switch {
		case len(ev)+len(dl) > 1 || (st != "" && len(ev)+len(dl) > 0):
			t.Errorf("%s %s (%s): found more than once: events %v, dead-letter %q, refused %q", c.source, c.kind, c.marker, ev, dl, st)
			continue
		case len(ev) == 1:
			got = "stored"
			if chIDs.Count[ev[0]] != 1 {
				t.Errorf("%s %s: event %s in ClickHouse %d times, want 1", c.source, c.kind, ev[0], chIDs.Count[ev[0]])
			}
			if !esIDs[ev[0]] {
				t.Errorf("%s %s: event %s not in Elasticsearch %s", c.source, c.kind, ev[0], esIndex)
			}
			for _, chk := range c.chChecks {
				checked++
				q := fmt.Sprintf("SELECT count() FROM `%s`.events WHERE event_id = {id:String} AND %s FORMAT TSV", id, chk.cond)
				out, err := clickHouseParamQuery(ctx, chURL, q, map[string]string{"id": ev[0], "v": chk.value})
				if err != nil {
					t.Errorf("%s %s: %v", c.source, c.kind, err)
				} else if strings.TrimSpace(out) != "1" {
					t.Errorf("%s %s: ClickHouse row does not hold %q verbatim (%s): count %s", c.source, c.kind, chk.value, chk.cond, strings.TrimSpace(out))
				}
			}
		case len(dl) == 1:
			got = "dead-lettered: " + dl[0]
			if strings.TrimSpace(strings.SplitN(dl[0], ": ", 2)[1]) == "" {
				t.Errorf("%s %s: dead-lettered without a reason", c.source, c.kind)
			}
		case st != "":
			got = "refused: " + st
		default:
			t.Errorf("%s %s (%s): LOST: not in the events stream, not dead-lettered, not refused", c.source, c.kind, c.marker)
			continue
		}
		isStored := got == "stored"
		if (c.want == stored && !isStored) || (c.want == rejected && isStored) {
			t.Errorf("%s %s: %s, want %s", c.source, c.kind, got, c.want)
		}
		byOutcome[fmt.Sprintf("%-8s %-8s %s", c.source, c.kind, shorten(got))]++
	}
	keys := make([]string, 0, len(byOutcome))
	for k := range byOutcome {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var tbl strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&tbl, "\n  %s ×%d", k, byOutcome[k])
	}
	t.Logf("outcome by source and kind:%s", tbl.String())
	t.Logf("%d verbatim ClickHouse checks made (a failed one is an error above)", checked)

	// Stores: exactly the stored events, tables intact, mapping bounded.
	tally := chIDs.Compare(storedIDs)
	report(t, tally)
	tables, err := harness.ClickHouseQuery(ctx, chURL, fmt.Sprintf("SELECT name FROM system.tables WHERE database = '%s' ORDER BY name FORMAT TSV", id))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clickhouse tables of %s: %s", id, strings.Join(strings.Fields(tables), ", "))
	for _, want := range []string{"events", "alerts"} {
		if !slices.Contains(strings.Fields(tables), want) {
			t.Errorf("clickhouse table %s.%s missing after the injections", id, want)
		}
	}
	if n, err := harness.ElasticsearchCount(ctx, esURL, esIndex); err != nil {
		t.Error(err)
	} else if n != len(storedIDs) {
		t.Errorf("elasticsearch %s: %d documents, want %d", esIndex, n, len(storedIDs))
	}
	fields, err := elasticsearchFieldCount(ctx, esURL, esIndex)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := templateFieldCount()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("elasticsearch %s mapping: %d fields (the events template declares %d)", esIndex, fields, tmpl)
	if fields > tmpl {
		t.Errorf("elasticsearch mapping grew to %d fields, more than the template's %d: hostile keys became fields", fields, tmpl)
	}

	for name, p := range d.procs {
		if exited, err := p.Exited(); exited {
			t.Errorf("%s exited: %v; see %s", name, err, p.LogPath())
		}
		s, err := harness.ScanLog(p.LogPath())
		if err != nil {
			t.Error(err)
			continue
		}
		t.Logf("%s log: %s", name, s)
		if len(s.Panics) > 0 {
			t.Errorf("%s panicked: %q", name, s.Panics)
		}
	}
	t.Logf("scenario took %s", time.Since(start).Round(time.Second))
}

func shorten(s string) string {
	if len(s) > 140 {
		return s[:140] + "…"
	}
	return s
}

// hostileResult is where the markers were found: the event ids carrying
// each marker in the events stream, and each dead-letter record's stage and
// reason.
type hostileResult struct {
	events map[string][]string // marker → event ids
	dead   map[string][]string // marker → "stage: reason"
}

func (r hostileResult) accounted() int {
	n := len(r.events)
	for m := range r.dead {
		if _, ok := r.events[m]; !ok {
			n++
		}
	}
	return n
}

func readHostile(url string, re *regexp.Regexp) (hostileResult, error) {
	res := hostileResult{events: map[string][]string{}, dead: map[string][]string{}}
	nc, js, err := harness.Connect(url)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	find := harness.MarkerOf(re)
	_, err = harness.StreamCensus(ctx, js, topology.EventsStream, func(m jetstream.Msg) (string, error) {
		marker, err := find(m)
		if err != nil {
			return "", err
		}
		id, err := harness.EventID(m.Data())
		if err != nil {
			return "", err
		}
		res.events[marker] = append(res.events[marker], id)
		return marker, nil
	})
	if err != nil {
		return res, err
	}
	_, err = harness.StreamCensus(ctx, js, topology.DeadLetterStream, func(m jetstream.Msg) (string, error) {
		marker, err := find(m)
		if err != nil {
			return "", err
		}
		res.dead[marker] = append(res.dead[marker], m.Headers().Get("Crowsnest-Stage")+": "+m.Headers().Get("Crowsnest-Error"))
		return marker, nil
	})
	return res, err
}

func postOnce(client *http.Client, u, auth, body string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// clickHouseParamQuery runs query with its {name:Type} parameters bound
// over HTTP (param_<name>), so the test's own query interpolates nothing.
// Parameter values are read with TSV escaping.
func clickHouseParamQuery(ctx context.Context, base, query string, params map[string]string) (string, error) {
	q := url.Values{}
	for k, v := range params {
		q.Set("param_"+k, tsvEscape(v))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/?"+q.Encode(), strings.NewReader(query))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("clickhouse %q: %w", query, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse %q: %s: %s", query, resp.Status, bytes.TrimSpace(b))
	}
	return string(b), nil
}

func tsvEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`, "\x00", `\0`).Replace(s)
}

// elasticsearchIDs returns which of ids are documents (_id) of index.
func elasticsearchIDs(ctx context.Context, base, index string, ids []string) (map[string]bool, error) {
	found := map[string]bool{}
	for lo := 0; lo < len(ids); lo += 500 {
		chunk := ids[lo:min(lo+500, len(ids))]
		q, _ := json.Marshal(map[string]any{"size": len(chunk), "_source": false, "query": map[string]any{"ids": map[string]any{"values": chunk}}})
		b, err := esRequest(ctx, http.MethodPost, base+"/"+index+"/_search", q)
		if err != nil {
			return nil, err
		}
		var r struct {
			Hits struct {
				Hits []struct {
					ID string `json:"_id"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("elasticsearch search %s: %w", index, err)
		}
		for _, h := range r.Hits.Hits {
			found[h.ID] = true
		}
	}
	return found, nil
}

// elasticsearchFieldCount is the most fields any backing index of index
// maps (properties at every level, multi-fields included).
func elasticsearchFieldCount(ctx context.Context, base, index string) (int, error) {
	b, err := esRequest(ctx, http.MethodGet, base+"/"+index+"/_mapping", nil)
	if err != nil {
		return 0, err
	}
	var r map[string]struct {
		Mappings map[string]any `json:"mappings"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("elasticsearch mapping %s: %w", index, err)
	}
	most := 0
	for _, idx := range r {
		most = max(most, countFields(idx.Mappings))
	}
	return most, nil
}

// templateFieldCount counts the fields of the events component template in
// the source tree, the same way.
func templateFieldCount() (int, error) {
	root, err := harness.SourceRoot(".")
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(root, "schemas", "elasticsearch", "events-component-template.json"))
	if err != nil {
		return 0, err
	}
	var tmpl struct {
		Template struct {
			Mappings map[string]any `json:"mappings"`
		} `json:"template"`
	}
	if err := json.Unmarshal(b, &tmpl); err != nil {
		return 0, fmt.Errorf("events template: %w", err)
	}
	return countFields(tmpl.Template.Mappings), nil
}

func countFields(m map[string]any) int {
	n := 0
	for _, key := range []string{"properties", "fields"} {
		props, _ := m[key].(map[string]any)
		for _, v := range props {
			n++
			if sub, ok := v.(map[string]any); ok {
				n += countFields(sub)
			}
		}
	}
	return n
}

func esRequest(ctx context.Context, method, u string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("elasticsearch %s %s: %s: %s", method, u, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// hostileCases builds one round of records, markers starting with prefix.
func hostileCases(prefix string) []hostileCase {
	now := time.Now().UTC()
	ts := now.Format(time.RFC3339Nano)
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	// JSON records of each source, from JSON-encoded parts (so a part can
	// carry raw invalid UTF-8): the user, the namespace, the inside of a
	// label map, and more members of the top-level object.
	type parts struct{ user, ns, labels, extra string }
	builders := map[string]func(marker string, p parts) string{
		"k8swh":   nil, // same as k8sfile, set below
		"k8sfile": nil,
		"falco": func(m string, p parts) string {
			rule := p.user // the rule name carries the user's string too
			return `{"output":"` + m + ` hostile input","priority":"Warning","rule":` + rule + `,"time":"` + ts + `","source":"syscall","hostname":"chaos","output_fields":{"k8s.ns.name":` + p.ns + `,"user.name":` + p.user + sep(p.labels) + `}` + p.extra + `}`
		},
		"tetragon": func(m string, p parts) string {
			return `{"process_exec":{"process":{"exec_id":"` + m + `","pid":4242,"uid":0,"cwd":"/","binary":"/bin/sh","arguments":` + p.user + `,"flags":"execve","start_time":"` + ts + `","auid":0,"pod":{"namespace":` + p.ns + `,"name":"web-0","pod_labels":{` + p.labels + `},"container":{"id":"containerd://0123456789abcdef","name":"web","image":{"id":"registry.example/web@sha256:00","name":"registry.example/web:1"},"start_time":"` + ts + `","pid":1},"workload":"web","workload_kind":"StatefulSet"},"parent_exec_id":"cGFyZW50","tid":4242}` + p.extra + `},"node_name":"worker-1","time":"` + ts + `"}`
		},
		"json": func(m string, p parts) string {
			return `{"id":"` + m + `","user":` + p.user + `,"namespace":` + p.ns + `,"labels":{` + p.labels + `}` + p.extra + `}`
		},
		// A Docker engine event: the user's string is the container name,
		// the labels are the container's (Attributes).
		"docker": func(m string, p parts) string {
			return `{"Type":"container","Action":"start","Actor":{"ID":"` + m + `","Attributes":{"image":"registry.example/web:1","name":` + p.user + `,"io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":` + p.ns + sep(p.labels) + `}},"scope":"local","time":` + strconv.FormatInt(now.Unix(), 10) + `,"timeNano":` + strconv.FormatInt(now.UnixNano(), 10) + p.extra + `}`
		},
		// A procwatch exec record: the user's string is the process name;
		// procwatch carries no namespace and no labels, so those ride in a
		// member the mapper does not read (the record still carries them).
		"procwatch": func(m string, p parts) string {
			return `{"kind":"process_exec","format":1,"time":"` + ts + `","host":{"hostname":"` + m + `","boot_id":"b324a236-8eb0-4926-b3f3-6e553c8589d6"},"seen":"poll","process":{"pid":4242,"ppid":1,"start_time":"` + ts + `","name":` + p.user + `,"exe":"/bin/sh","args":["sh"],"cwd":"/","uid":0,"gid":0,"euid":0,"egid":0},"unread":{"namespace":` + p.ns + `,"labels":{` + p.labels + `}}` + p.extra + `}`
		},
	}
	k8s := func(m string, p parts) string {
		return `{"auditID":"` + m + `","kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/x/pods","verb":"list","user":{"username":` + p.user + `,"groups":["system:authenticated"]},"sourceIPs":["192.0.2.7"],"userAgent":"chaos/1.0","objectRef":{"resource":"pods","namespace":` + p.ns + `,"apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"` + ts + `","stageTimestamp":"` + ts + `","annotations":{` + p.labels + `}` + p.extra + `}`
	}
	builders["k8swh"], builders["k8sfile"] = k8s, k8s

	// Where each source's strings land in ClickHouse, for the verbatim
	// checks (sources without a known column are checked for being stored
	// and the tables intact).
	userCols := map[string][]string{
		"k8swh":     {"user_name = {v:String}"},
		"k8sfile":   {"user_name = {v:String}"},
		"falco":     {"falco_output_fields['user.name'] = {v:String}", "falco_rule = {v:String}"},
		"json":      {"user_name = {v:String}"},
		"docker":    {"container_name = {v:String}"},
		"procwatch": {"process_name = {v:String}"},
	}
	nsCols := map[string][]string{
		"k8swh":    {"kubernetes_audit_objectRef_namespace = {v:String}"},
		"k8sfile":  {"kubernetes_audit_objectRef_namespace = {v:String}"},
		"falco":    {"falco_output_fields['k8s.ns.name'] = {v:String}"},
		"tetragon": {"orchestrator_namespace = {v:String}"},
		"json":     {"orchestrator_namespace = {v:String}"},
		"docker":   {"orchestrator_namespace = {v:String}"},
	}
	keyCols := map[string][]string{
		"k8swh":    {"mapContains(kubernetes_audit_annotations, {v:String})"},
		"k8sfile":  {"mapContains(kubernetes_audit_annotations, {v:String})"},
		"falco":    {"mapContains(falco_output_fields, {v:String})"},
		"tetragon": {"has(orchestrator_resource_label, concat({v:String}, '=v'))"},
		"json":     {"mapContains(labels, {v:String})"},
		"docker":   {"mapContains(container_labels, {v:String})"},
	}
	checks := func(cols map[string][]string, src, v string) []chCheck {
		var out []chCheck
		for _, c := range cols[src] {
			out = append(out, chCheck{c, v})
		}
		return out
	}

	// 100k distinct label keys, the injection strings first (maps are cut
	// to max_map_entries in document order; the first must survive). Three
	// characters of 62 keep a key at 9 bytes, so the record stays under
	// NATS's 1 MiB max_payload.
	const alnum = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var lb strings.Builder
	for _, inj := range injections {
		lb.WriteString(q(inj) + `:"v",`)
	}
	for i := range 100_000 {
		lb.WriteString(`"` + string([]byte{alnum[i/3844], alnum[i/62%62], alnum[i%62]}) + `":"",`)
	}
	manyLabels := strings.TrimSuffix(lb.String(), ",")
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	big := strings.Repeat("x", 2<<20)
	nulcrlf := "nul\x00cr\rlf\nboth\r\nend"

	var out []hostileCase
	for _, src := range []string{"k8swh", "k8sfile", "falco", "tetragon", "json", "docker", "procwatch"} {
		build := builders[src]
		add := func(kind string, p parts, want outcome, chk []chCheck) {
			m := prefix + "-" + src + "-" + kind
			out = append(out, hostileCase{source: src, kind: kind, marker: m, body: []byte(build(m, p)), want: want, chChecks: chk})
		}
		plain := parts{user: q("alice@example.com"), ns: q("shop"), labels: `"app":"web"`}
		add("control", plain, stored, nil)
		p := plain
		p.extra = `,"pad":"` + big + `"`
		add("oversize", p, rejected, nil)
		p = plain
		p.extra = `,"nest":` + deep
		add("deep", p, either, nil)
		p = plain
		p.user = "\"bad\xff\xfeutf8\xc3\""
		add("badutf8", p, rejected, nil)
		p = plain
		p.user = q(nulcrlf)
		add("nulcrlf", p, stored, checks(userCols, src, nulcrlf))
		p = plain
		p.labels = manyLabels
		add("labels", p, stored, checks(keyCols, src, injections[0]))
		for i, inj := range injections {
			p = parts{user: q(inj), ns: q(inj), labels: q(inj) + `:"v"`}
			var chk []chCheck
			chk = append(chk, checks(userCols, src, inj)...)
			chk = append(chk, checks(nsCols, src, inj)...)
			chk = append(chk, checks(keyCols, src, inj)...)
			add(fmt.Sprintf("inject%d", i), p, stored, chk)
		}
	}

	// auditd: lines, not JSON. The marker is the key= of the first record.
	serial := now.UnixNano() % 1e9
	epoch := fmt.Sprintf("%d.%03d", now.Unix(), now.Nanosecond()/1e6)
	auditd := func(kind, comm, exe, eol string, want outcome) {
		m := prefix + "-auditd-" + kind
		serial++
		hdr := fmt.Sprintf("msg=audit(%s:%d):", epoch, serial)
		body := "type=SYSCALL " + hdr + ` key="` + m + `" arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=0 ppid=1 pid=4242 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="` + comm + `" exe="` + exe + `"` +
			eol + "type=EOE " + hdr + " "
		out = append(out, hostileCase{source: "auditd", kind: kind, marker: m, body: []byte(body), want: want})
	}
	auditd("control", "sh", "/bin/sh", "\n", stored)
	auditd("badutf8", "ba\xff\xfed", "/bin/\xc3", "\n", either)
	auditd("nulcrlf", "nul\x00", "/bin/cr\rlf", "\r\n", either)
	for i, inj := range injections {
		auditd(fmt.Sprintf("inject%d", i), inj, "/bin/"+inj, "\n", either)
	}
	// One standalone record longer than max_line_bytes (1 MiB).
	m := prefix + "-auditd-oversize"
	serial++
	out = append(out, hostileCase{source: "auditd", kind: "oversize", marker: m, want: rejected,
		body: []byte(fmt.Sprintf("type=USER_CMD msg=audit(%s:%d): pid=1 uid=0 auid=0 ses=1 msg='key=%s cmd=%s res=success'", epoch, serial, m, big))})
	return out
}

// sep puts a comma before a non-empty list of members.
func sep(members string) string {
	if members == "" {
		return ""
	}
	return "," + members
}
