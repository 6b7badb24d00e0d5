package jsonmap_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/jsonmap"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// loadConfig reads a normalize configuration (defaults, then the file) the
// strict way the daemon does: an unknown key is an error.
func loadConfig(tb testing.TB, path string) normalize.Config {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := normalize.NewDefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return cfg
}

func newNormalizer(tb testing.TB) *normalize.Normalizer {
	tb.Helper()
	return golden.NewNormalizer(tb, loadConfig(tb, "testdata/mappings.yaml"), jsonmap.NewFactory())
}

// updating reports -update, which targets_test.go (package jsonmap, in the
// same test binary) declares.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// TestGolden maps every testdata/*.input.json with testdata/mappings.yaml
// and compares the events with testdata/*.golden.json (-update rewrites
// them). The same cases seed FuzzJSON and feed the benchmarks.
func TestGolden(t *testing.T) {
	n := newNormalizer(t)
	for _, c := range golden.Cases(t, "testdata") {
		t.Run(c.Name, func(t *testing.T) {
			got := golden.Render(t, n, golden.Record(jsonmap.Source, c.Input))
			golden.Check(t, filepath.Join("testdata", c.Name+".golden.json"), got, updating())
		})
	}
}

// FuzzJSON: no input may panic; whatever maps must encode to valid JSON
// with a header-safe id, whatever does not must be a RejectError.
func FuzzJSON(f *testing.F) {
	for _, c := range golden.Cases(f, "testdata") {
		f.Add(c.Input)
	}
	n := newNormalizer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev schemas.Event
		err := n.Normalize(golden.Record(jsonmap.Source, data), &ev)
		if err != nil {
			if _, ok := normalize.RejectReason(err); !ok {
				t.Fatalf("error is not a RejectError: %v", err)
			}
			return
		}
		if out := ev.AppendJSON(nil); !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		if len(ev.Event.ID) == 0 || len(ev.Event.ID) > 128 {
			t.Fatalf("bad event.id %q", ev.Event.ID)
		}
		golden.CheckNoAliasing(t, &ev)
	})
}

// TestCollectorSelectsMapping: a record takes the mapping naming its
// collector, else the default; with no default an unclaimed collector's
// record is rejected, as is every record when nothing is configured.
func TestCollectorSelectsMapping(t *testing.T) {
	cfg := loadConfig(t, "testdata/mappings.yaml")
	n := golden.NewNormalizer(t, cfg, jsonmap.NewFactory())
	edge := []byte(`{"time_local":"10/Mar/2026:09:00:05 +0100","remote_addr":"192.0.2.7","request_uri":"/admin","status":"404","http_user_agent":"curl/8.5.0"}`)
	rec := golden.Record(jsonmap.Source, edge)
	rec.Collector = "edge-1"
	var ev schemas.Event
	if err := n.Normalize(rec, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Event.Provider != "edge" || ev.URL.Original != "/admin" || ev.Source.IP != "192.0.2.7" ||
		!ev.Timestamp.Equal(time.Date(2026, 3, 10, 8, 0, 5, 0, time.UTC)) || ev.Event.Category[0] != "web" {
		t.Errorf("edge-1 record: provider %q url %q ip %q time %v category %v", ev.Event.Provider, ev.URL.Original, ev.Source.IP, ev.Timestamp, ev.Event.Category)
	}
	rec.Collector = "node-1" // not claimed: the default (webapp) takes it
	if err := n.Normalize(rec, &ev); err != nil || ev.Event.Provider != "webapp" {
		t.Errorf("default mapping: %v %q", err, ev.Event.Provider)
	}

	cfg.JSON.Mappings = cfg.JSON.Mappings[1:] // only edge-1's
	n = golden.NewNormalizer(t, cfg, jsonmap.NewFactory())
	if err := n.Normalize(rec, &ev); !isReason(err, jsonmap.ReasonNoMapping) {
		t.Errorf("unclaimed collector without a default: %v", err)
	}
	cfg.JSON.Mappings = nil
	n = golden.NewNormalizer(t, cfg, jsonmap.NewFactory())
	if err := n.Normalize(rec, &ev); !isReason(err, jsonmap.ReasonNoMapping) || !strings.Contains(err.Error(), "no json mapping is configured") {
		t.Errorf("nothing configured: %v", err)
	}
}

func isReason(err error, want normalize.Reason) bool {
	r, ok := normalize.RejectReason(err)
	return ok && r == want
}

// TestTimeLayouts reads the same instant in every layout.
func TestTimeLayouts(t *testing.T) {
	want := time.Date(2026, 3, 10, 9, 0, 5, 250_000_000, time.UTC)
	for _, c := range []struct{ layout, value string }{
		{"", `"2026-03-10T09:00:05.25Z"`},
		{"rfc3339", `"2026-03-10T10:00:05.25+01:00"`},
		{"unix", `1773133205.25`},
		{"unix", `"1773133205.25"`},
		{"unix_ms", `1773133205250`},
		{"unix_us", `1773133205250000`},
		{"unix_ns", `1773133205250000000`},
		{"unix_ns", `"1773133205250000000"`},
		{"2006-01-02 15:04:05.000", `"2026-03-10 09:00:05.250"`},
	} {
		cfg := normalize.NewDefaultConfig()
		cfg.JSON.Mappings = []normalize.JSONMapping{{Source: "t", Timestamp: normalize.JSONTimestamp{Field: "t", Layout: c.layout},
			Fields: []normalize.JSONField{{From: "m", To: "message"}}}}
		n := golden.NewNormalizer(t, cfg, jsonmap.NewFactory())
		var ev schemas.Event
		if err := n.Normalize(golden.Record(jsonmap.Source, []byte(`{"t":`+c.value+`}`)), &ev); err != nil {
			t.Fatal(err)
		}
		if !ev.Timestamp.Equal(want) {
			t.Errorf("layout %q value %s: %v, want %v", c.layout, c.value, ev.Timestamp, want)
		}
	}
}

// TestConfigErrors: every mistake is reported at config load, with its path.
func TestConfigErrors(t *testing.T) {
	base := func() normalize.JSONMapping {
		return normalize.JSONMapping{Source: "app", Fields: []normalize.JSONField{{From: "u", To: "user.name"}}}
	}
	for _, c := range []struct {
		name  string
		edit  func(m *normalize.JSONMapping)
		wants []string
	}{
		{"typo in a field name", func(m *normalize.JSONMapping) { m.Fields[0].To = "user.nmae" },
			[]string{`json.mappings[0].fields[0].to: no event field "user.nmae" (did you mean user.name?)`}},
		{"unknown field", func(m *normalize.JSONMapping) { m.Fields[0].To = "shoe.size" },
			[]string{`json.mappings[0].fields[0].to: no event field "shoe.size"; fields are listed in docs/fields.md`}},
		{"reserved field", func(m *normalize.JSONMapping) { m.Fields[0].To = "event.id" },
			[]string{"json.mappings[0].fields[0].to: event.id is not for mappings: set by id_field"}},
		{"normalizer's field", func(m *normalize.JSONMapping) { m.Fields[0].To = "crowsnest.source" },
			[]string{"crowsnest.source is not for mappings: set by the normalizer"}},
		{"alert-only field", func(m *normalize.JSONMapping) { m.Fields[0].To = "rule.level" },
			[]string{`no event field "rule.level"`}},
		{"empty from", func(m *normalize.JSONMapping) { m.Fields[0].From = "" },
			[]string{"json.mappings[0].fields[0].from: must be a gjson path"}},
		{"two writers of a scalar", func(m *normalize.JSONMapping) {
			m.Fields = append(m.Fields, normalize.JSONField{From: "v", To: "user.name"})
		}, []string{"json.mappings[0].fields[1].to: user.name is also written by mappings[0].fields[0]"}},
		{"layout on a keyword", func(m *normalize.JSONMapping) { m.Fields[0].Layout = "unix" },
			[]string{"json.mappings[0].fields[0].layout: only date fields take a layout; user.name is keyword"}},
		{"bad timestamp layout", func(m *normalize.JSONMapping) { m.Timestamp = normalize.JSONTimestamp{Field: "t", Layout: "epoch"} },
			[]string{`json.mappings[0].timestamp.layout: "epoch" is not rfc3339`}},
		{"set value of the wrong type", func(m *normalize.JSONMapping) { m.Set = []normalize.JSONSet{{To: "ocsf.class_uid", Value: "auth"}} },
			[]string{`json.mappings[0].set[0].value: "auth" is not a valid integer for ocsf.class_uid`}},
		{"set out of range", func(m *normalize.JSONMapping) {
			m.Set = []normalize.JSONSet{{To: "ocsf.class_uid", Value: "99999999999"}}
		},
			[]string{"json.mappings[0].set[0].value"}},
		{"bad source name", func(m *normalize.JSONMapping) { m.Source = "My App" },
			[]string{`json.mappings[0].source: must be 1-64 of a-z`}},
		{"nothing to map", func(m *normalize.JSONMapping) { m.Fields = nil },
			[]string{"json.mappings[0].fields: a mapping needs fields (or set)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := normalize.NewDefaultConfig()
			m := base()
			c.edit(&m)
			cfg.JSON.Mappings = []normalize.JSONMapping{m}
			err := cfg.Validate()
			if err == nil {
				t.Fatal("validated")
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := jsonmap.New(cfg); err == nil {
				t.Error("jsonmap.New accepted an invalid configuration")
			}
		})
	}

	cfg := normalize.NewDefaultConfig()
	cfg.JSON.Mappings = []normalize.JSONMapping{base(), base()}
	cfg.JSON.Mappings[1].Collectors = []string{"c1"}
	cfg.JSON.Mappings = append(cfg.JSON.Mappings, normalize.JSONMapping{Source: "other", Fields: base().Fields})
	cfg.JSON.Mappings = append(cfg.JSON.Mappings, normalize.JSONMapping{Source: "third", Collectors: []string{"c1"}, Fields: base().Fields})
	err := cfg.Validate()
	for _, w := range []string{
		`json.mappings[1].source: "app" is also mappings[0].source`,
		"json.mappings[2].collectors: two mappings without collectors",
		`json.mappings[3].collectors[0]: collector "c1" is also taken by mappings[1]`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}
