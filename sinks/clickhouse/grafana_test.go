package clickhouse_test

// The Grafana dashboards in deploy/grafana: decoded strictly (a misspelt key
// is an error), checked for what Grafana and the ClickHouse datasource plugin
// need, and every SQL query — panels and template variables — run against
// the engine over fixture rows written through the sink, after the plugin's
// macros are expanded the way the plugin expands them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/internal/chtest"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
	"go.yaml.in/yaml/v3"
)

const (
	grafanaDir       = "../../deploy/grafana"
	pluginType       = "grafana-clickhouse-datasource"
	datasourceRef    = "${datasource}"
	formatTimeSeries = 0 // the plugin's Format enum
	formatTable      = 1
)

// The subset of Grafana's dashboard model the dashboards use. Decoding
// refuses any other key, so a typo ("rawSQL", "gridpos") fails here rather
// than silently in Grafana.
type grafanaDashboard struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Description   string   `json:"description"`
	Tags          []string `json:"tags"`
	Editable      bool     `json:"editable"`
	SchemaVersion int      `json:"schemaVersion"`
	Version       int      `json:"version"`
	Timezone      string   `json:"timezone"`
	Refresh       string   `json:"refresh"`
	GraphTooltip  int      `json:"graphTooltip"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Templating struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []json.RawMessage `json:"list"`
	} `json:"annotations"`
	Links []struct {
		Title      string   `json:"title"`
		Type       string   `json:"type"`
		Tags       []string `json:"tags"`
		AsDropdown bool     `json:"asDropdown"`
	} `json:"links"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaVariable struct {
	Name       string             `json:"name"`
	Label      string             `json:"label"`
	Type       string             `json:"type"`
	Query      string             `json:"query"`
	Datasource *grafanaDatasource `json:"datasource"`
	Multi      bool               `json:"multi"`
	IncludeAll bool               `json:"includeAll"`
	Refresh    int                `json:"refresh"`
	Hide       int                `json:"hide"`
	Sort       int                `json:"sort"`
	Current    struct {
		Text  string `json:"text"`
		Value string `json:"value"`
	} `json:"current"`
}

type grafanaPanel struct {
	ID          int               `json:"id"`
	Type        string            `json:"type"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	Datasource  grafanaDatasource `json:"datasource"`
	GridPos     struct {
		X int `json:"x"`
		Y int `json:"y"`
		W int `json:"w"`
		H int `json:"h"`
	} `json:"gridPos"`
	Targets     []grafanaTarget `json:"targets"`
	FieldConfig *struct {
		Defaults struct {
			Unit   string `json:"unit"`
			Custom struct {
				DrawStyle   string `json:"drawStyle"`
				FillOpacity int    `json:"fillOpacity"`
				Stacking    *struct {
					Mode string `json:"mode"`
				} `json:"stacking"`
			} `json:"custom"`
		} `json:"defaults"`
		Overrides []json.RawMessage `json:"overrides"`
	} `json:"fieldConfig"`
}

type grafanaTarget struct {
	RefID      string            `json:"refId"`
	Datasource grafanaDatasource `json:"datasource"`
	EditorType string            `json:"editorType"`
	QueryType  string            `json:"queryType"`
	Format     *int              `json:"format"`
	RawSQL     string            `json:"rawSql"`
}

func loadDashboards(t *testing.T) map[string]grafanaDashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(grafanaDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s (%v)", grafanaDir, err)
	}
	out := map[string]grafanaDashboard{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		var d grafanaDashboard
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if dec.More() {
			t.Fatalf("%s: trailing data after the dashboard", f)
		}
		// encoding/json matches keys case-insensitively ("gridpos" would
		// fill GridPos); Grafana does not.
		var raw any
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		for _, e := range exactKeys(raw, reflect.TypeFor[grafanaDashboard](), "") {
			t.Errorf("%s: %s", f, e)
		}
		out[filepath.Base(f)] = d
	}
	return out
}

// exactKeys lists the keys of raw that match no json tag of typ exactly.
func exactKeys(raw any, typ reflect.Type, path string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == reflect.TypeFor[json.RawMessage]() {
		return nil
	}
	var bad []string
	switch v := raw.(type) {
	case map[string]any:
		if typ.Kind() != reflect.Struct {
			return nil
		}
		fields := map[string]reflect.Type{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields[name] = f.Type
		}
		for k, sub := range v {
			ft, ok := fields[k]
			if !ok {
				bad = append(bad, fmt.Sprintf("unknown key %s%s", path, k))
				continue
			}
			bad = append(bad, exactKeys(sub, ft, path+k+".")...)
		}
	case []any:
		if typ.Kind() == reflect.Slice {
			for i, sub := range v {
				bad = append(bad, exactKeys(sub, typ.Elem(), fmt.Sprintf("%s%d.", path, i))...)
			}
		}
	}
	return bad
}

// The variables every query may reference, and the plugin's macros.
var (
	varRef   = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`)
	macroRef = regexp.MustCompile(`\$__\w+`)
)

// plugin macros the dashboards may use (grafana-clickhouse-datasource v4).
var knownMacros = []string{"$__timeFilter", "$__timeInterval", "$__fromTime", "$__toTime", "$__interval_s", "$__conditionalAll"}

func TestGrafanaDashboardsModel(t *testing.T) {
	uids := map[string]string{}
	for file, d := range loadDashboards(t) {
		t.Run(file, func(t *testing.T) {
			if d.UID == "" || d.Title == "" || d.Description == "" {
				t.Error("uid, title and description are required")
			}
			if other, ok := uids[d.UID]; ok {
				t.Errorf("uid %q also used by %s", d.UID, other)
			}
			uids[d.UID] = file
			if !slices.Contains(d.Tags, "crowsnest") {
				t.Error("not tagged crowsnest (the dashboards link each other by tag)")
			}
			vars := map[string]grafanaVariable{}
			for _, v := range d.Templating.List {
				if _, dup := vars[v.Name]; dup {
					t.Errorf("variable %s defined twice", v.Name)
				}
				vars[v.Name] = v
				switch v.Type {
				case "datasource":
					if v.Query != pluginType {
						t.Errorf("datasource variable %s selects %q, want %s", v.Name, v.Query, pluginType)
					}
				case "query":
					checkRef(t, "variable "+v.Name, v.Datasource)
				case "custom":
					if v.Query == "" {
						t.Errorf("custom variable %s has no values", v.Name)
					}
				default:
					t.Errorf("variable %s: type %q not used by these dashboards", v.Name, v.Type)
				}
			}
			if vars["datasource"].Type != "datasource" {
				t.Fatal("no datasource variable named datasource: panels refer to ${datasource}")
			}
			ids := map[int]bool{}
			var cells [][4]int
			for _, p := range d.Panels {
				where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
				if p.ID <= 0 || ids[p.ID] {
					t.Errorf("%s: id missing or repeated", where)
				}
				ids[p.ID] = true
				if p.Title == "" || p.Description == "" {
					t.Errorf("%s: title and description are required", where)
				}
				g := p.GridPos
				if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
					t.Errorf("%s: gridPos %+v outside the 24-column grid", where, g)
				}
				for _, c := range cells {
					if g.X < c[0]+c[2] && c[0] < g.X+g.W && g.Y < c[1]+c[3] && c[1] < g.Y+g.H {
						t.Errorf("%s: overlaps another panel at %v", where, c)
					}
				}
				cells = append(cells, [4]int{g.X, g.Y, g.W, g.H})
				checkRef(t, where, &p.Datasource)
				if len(p.Targets) == 0 {
					t.Errorf("%s: no query", where)
				}
				for _, q := range p.Targets {
					checkRef(t, where+" target", &q.Datasource)
					if q.RefID == "" || q.EditorType != "sql" || strings.TrimSpace(q.RawSQL) == "" || q.Format == nil {
						t.Errorf("%s: a target needs refId, editorType sql, format and rawSql", where)
						continue
					}
					wantFormat, wantQuery := formatTable, "table"
					switch p.Type {
					case "timeseries":
						wantFormat, wantQuery = formatTimeSeries, "timeseries"
					case "stat", "table":
					default:
						t.Errorf("%s: panel type %q not used by these dashboards", where, p.Type)
					}
					if *q.Format != wantFormat || q.QueryType != wantQuery {
						t.Errorf("%s: format %d, queryType %q; a %s panel wants %d, %q", where, *q.Format, q.QueryType, p.Type, wantFormat, wantQuery)
					}
					checkVars(t, where, q.RawSQL, vars)
				}
			}
			for _, v := range d.Templating.List {
				if v.Type == "query" {
					checkVars(t, "variable "+v.Name, v.Query, vars)
				}
			}
		})
	}
}

func checkRef(t *testing.T, where string, ds *grafanaDatasource) {
	t.Helper()
	if ds == nil || ds.Type != pluginType || ds.UID != datasourceRef {
		t.Errorf("%s: datasource %+v, want {%s %s}", where, ds, pluginType, datasourceRef)
	}
}

// checkVars fails on a reference to an undefined variable or an unknown
// macro.
func checkVars(t *testing.T, where, sql string, vars map[string]grafanaVariable) {
	t.Helper()
	for _, m := range macroRef.FindAllString(sql, -1) {
		if !slices.Contains(knownMacros, m) {
			t.Errorf("%s: unknown macro %s", where, m)
		}
	}
	for _, m := range varRef.FindAllStringSubmatch(sql, -1) {
		name := m[1] + m[3]
		if strings.HasPrefix(name, "__") {
			continue
		}
		if _, ok := vars[name]; !ok {
			t.Errorf("%s: variable %s is not defined", where, name)
		}
		if m[2] != "" && m[2] != "singlequote" {
			t.Errorf("%s: format %s of %s: the dashboards quote with singlequote", where, m[2], name)
		}
	}
}

// expander expands the plugin's macros and the template variables the way
// Grafana and the plugin do, for one time range and one choice per
// variable.
type expander struct {
	from, to time.Time
	interval time.Duration
	// values is what each variable selects; all names the variables left
	// at All (then $__conditionalAll drops its condition, as the plugin does).
	values map[string][]string
	all    map[string]bool
}

func (e expander) expand(t *testing.T, sql string) string {
	t.Helper()
	from, to := e.from.Unix(), e.to.Unix()
	sql = replaceMacro(t, sql, "$__conditionalAll", func(args []string) string {
		if len(args) != 2 {
			t.Fatalf("$__conditionalAll takes 2 arguments, got %q", args)
		}
		name := strings.TrimPrefix(strings.Trim(strings.TrimSpace(args[1]), "{}$"), "{")
		if e.all[name] {
			return "1=1"
		}
		return args[0]
	})
	sql = replaceMacro(t, sql, "$__timeFilter", func(args []string) string {
		return fmt.Sprintf("%[1]s >= toDateTime(%[2]d) AND %[1]s <= toDateTime(%[3]d)", args[0], from, to)
	})
	sql = replaceMacro(t, sql, "$__timeInterval", func(args []string) string {
		return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", args[0], int(e.interval.Seconds()))
	})
	sql = strings.NewReplacer(
		"$__fromTime", fmt.Sprintf("toDateTime(%d)", from),
		"$__toTime", fmt.Sprintf("toDateTime(%d)", to),
		"$__interval_s", strconv.Itoa(int(e.interval.Seconds())),
	).Replace(sql)
	sql = varRef.ReplaceAllStringFunc(sql, func(ref string) string {
		m := varRef.FindStringSubmatch(ref)
		vals, ok := e.values[m[1]+m[3]]
		if !ok {
			t.Fatalf("no value for %s", ref)
		}
		quoted := make([]string, len(vals))
		for i, v := range vals {
			quoted[i] = "'" + strings.ReplaceAll(v, "'", "\\'") + "'"
		}
		return strings.Join(quoted, ",")
	})
	if strings.Contains(sql, "$") {
		t.Fatalf("unexpanded reference left in:\n%s", sql)
	}
	return sql
}

// replaceMacro replaces every call name(args...) by repl(args), the
// arguments split at top-level commas.
func replaceMacro(t *testing.T, sql, name string, repl func([]string) string) string {
	t.Helper()
	for {
		i := strings.Index(sql, name+"(")
		if i < 0 {
			return sql
		}
		depth, start := 0, i+len(name)+1
		var args []string
		end := -1
		argStart := start
		for j := start; j < len(sql) && end < 0; j++ {
			switch sql[j] {
			case '(':
				depth++
			case ')':
				if depth == 0 {
					args = append(args, strings.TrimSpace(sql[argStart:j]))
					end = j
				}
				depth--
			case ',':
				if depth == 0 {
					args = append(args, strings.TrimSpace(sql[argStart:j]))
					argStart = j + 1
				}
			}
		}
		if end < 0 {
			t.Fatalf("unbalanced %s( in:\n%s", name, sql)
		}
		sql = sql[:i] + repl(args) + sql[end+1:]
	}
}

// grafanaFixture writes events and alerts that every panel has something
// to show about, an hour before now (inside every TTL).
func grafanaFixture(t *testing.T, s *chsink.Sink, at time.Time) {
	t.Helper()
	doc := func(base []byte, set map[string]any) []byte {
		var m map[string]any
		if err := json.Unmarshal(base, &m); err != nil {
			t.Fatal(err)
		}
		for path, v := range set {
			cur := m
			parts := strings.Split(path, ".")
			for _, p := range parts[:len(parts)-1] {
				next, ok := cur[p].(map[string]any)
				if !ok {
					next = map[string]any{}
					cur[p] = next
				}
				cur = next
			}
			cur[parts[len(parts)-1]] = v
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ts := func(i int) string { return at.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano) }
	var events, alerts []sink.Record
	seq := uint64(0)
	add := func(list *[]sink.Record, k sink.Kind, id string, data []byte) {
		seq++
		*list = append(*list, sink.Record{Data: data, ID: id, Kind: k, Seq: seq, Delivered: 1})
	}
	for i := range 6 {
		id := fmt.Sprintf("g-e%d", i)
		ns := []string{"payments", "web"}[i%2]
		add(&events, sink.KindEvents, id, doc(sinktest.EventDoc(id), map[string]any{
			"@timestamp": ts(i), "orchestrator.namespace": ns,
			"container.image.name": []string{"ghcr.io/acme/api:1.2", "docker.io/library/nginx:1.27"}[i%2],
		}))
	}
	add(&events, sink.KindEvents, "g-exec", doc(sinktest.EventDoc("g-exec"), map[string]any{
		"@timestamp": ts(7), "event.action": "create", "orchestrator.resource.type": "pods",
		"orchestrator.resource.name": "api-7f9c", "kubernetes.audit.auditID": "audit-1",
		"kubernetes.audit.stage": "ResponseComplete", "kubernetes.audit.objectRef.subresource": "exec",
		"kubernetes.audit.requestURI": "/api/v1/namespaces/payments/pods/api-7f9c/exec?command=sh&command=-c&command=id&container=api",
	}))
	for i, level := range []string{"high", "critical", "high"} {
		id := fmt.Sprintf("g-a%d", i)
		add(&alerts, sink.KindAlerts, id, doc(sinktest.AlertDoc(id, "g-e0"), map[string]any{
			"@timestamp": ts(10 + i), "rule.level": level, "crowsnest.alert.suppressed_count": 2,
		}))
	}
	for _, b := range [][]sink.Record{events, alerts} {
		if err := s.WriteBatch(context.Background(), b); err != nil {
			t.Fatalf("write fixture: %v", err)
		}
	}
}

func TestGrafanaQueriesRun(t *testing.T) {
	cfg := chtest.Config(t)
	s, err := chsink.New(cfg, sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	conn := chtest.Conn(t, cfg)
	at := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	grafanaFixture(t, s, at)

	ranges := expander{from: at.Add(-time.Hour), to: at.Add(2 * time.Hour), interval: time.Minute}
	for file, d := range loadDashboards(t) {
		vars := map[string][]string{}
		for _, v := range d.Templating.List {
			switch v.Type {
			case "custom":
				vars[v.Name] = strings.Split(v.Query, ",")
			case "query":
				// The variable's own query must run and offer the fixture's
				// namespaces.
				vals := column(t, conn, ranges.expand(t, v.Query))
				if !slices.Contains(vals, "payments") {
					t.Errorf("%s: variable %s offers %v, want payments among them", file, v.Name, vals)
				}
				vars[v.Name] = vals
			}
		}
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				t.Run(fmt.Sprintf("%s/%d %s", file, p.ID, p.Title), func(t *testing.T) {
					// Every variable at All (what a dashboard opens with),
					// then each narrowed to one value.
					all := ranges
					all.values, all.all = vars, map[string]bool{}
					for name := range vars {
						all.all[name] = true
					}
					rows := query(t, conn, all.expand(t, q.RawSQL))
					if len(rows) == 0 || !someNonZero(rows) {
						t.Errorf("no data over the fixture: %v\n%s", rows, all.expand(t, q.RawSQL))
					}
					one := ranges
					one.values = map[string][]string{"namespace": {"payments"}, "severity": {"high"}}
					query(t, conn, one.expand(t, q.RawSQL))
				})
			}
		}
	}
}

// query runs sql and returns its rows as values.
func query(t *testing.T, conn driver.Conn, sql string) [][]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		cols := rows.ColumnTypes()
		ptrs := make([]any, len(cols))
		for i, c := range cols {
			ptrs[i] = reflect.New(c.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("scan: %v\n%s", err, sql)
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			row[i] = reflect.ValueOf(p).Elem().Interface()
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
	return out
}

// column runs sql and returns its first column as text.
func column(t *testing.T, conn driver.Conn, sql string) []string {
	t.Helper()
	var out []string
	for _, r := range query(t, conn, sql) {
		out = append(out, fmt.Sprint(r[0]))
	}
	return out
}

// someNonZero reports whether any value is neither zero nor empty.
func someNonZero(rows [][]any) bool {
	for _, r := range rows {
		for _, v := range r {
			if v != nil && !reflect.ValueOf(v).IsZero() {
				return true
			}
		}
	}
	return false
}

// The provisioning files decode strictly into what Grafana reads, and the
// datasource they provision is the plugin the dashboards select.
func TestGrafanaProvisioning(t *testing.T) {
	type datasources struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name     string `yaml:"name"`
			Type     string `yaml:"type"`
			JSONData struct {
				Host            string `yaml:"host"`
				Port            int    `yaml:"port"`
				Protocol        string `yaml:"protocol"`
				Secure          bool   `yaml:"secure"`
				Username        string `yaml:"username"`
				DefaultDatabase string `yaml:"defaultDatabase"`
			} `yaml:"jsonData"`
			SecureJSONData struct {
				Password string `yaml:"password"`
			} `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	type dashboards struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name            string `yaml:"name"`
			Folder          string `yaml:"folder"`
			Type            string `yaml:"type"`
			DisableDeletion bool   `yaml:"disableDeletion"`
			AllowUIUpdates  bool   `yaml:"allowUiUpdates"`
			Options         struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decode := func(name string, into any) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(grafanaDir, "provisioning", name))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(into); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var ds datasources
	decode("datasources/crowsnest-clickhouse.yaml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: %+v", ds)
	}
	d := ds.Datasources[0]
	if d.Type != pluginType || d.JSONData.DefaultDatabase != chsink.NewDefaultConfig().Database ||
		(d.JSONData.Protocol != "http" && d.JSONData.Protocol != "native") || d.JSONData.Port == 0 ||
		!strings.HasPrefix(d.SecureJSONData.Password, "$") {
		t.Errorf("datasource %+v: want the plugin, the sink's database, a protocol and port, a password from the environment", d)
	}
	var db dashboards
	decode("dashboards/crowsnest.yaml", &db)
	if db.APIVersion != 1 || len(db.Providers) != 1 || db.Providers[0].Type != "file" || db.Providers[0].Options.Path == "" {
		t.Errorf("dashboard providers: %+v", db)
	}
}
