package clickhouse

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

func TestRegistrySchema(t *testing.T) {
	s, err := RegistrySchema()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tables) != 5 || len(s.Views) != 3 {
		t.Fatalf("%d tables and %d views, want events, alerts and 3 rollups", len(s.Tables), len(s.Views))
	}
	if ru := s.Table("alerts_by_rule_hourly"); ru == nil || ru.TTLDays != 730 || ru.TTLBase != "hour" || len(ru.Columns) != 6 {
		t.Errorf("rollup table: %+v", ru)
	}
	for _, name := range []string{"events", "alerts"} {
		tb := s.Table(name)
		if tb == nil {
			t.Fatalf("no %s table", name)
		}
		ddl, _ := schemas.ClickHouseDDL(name)
		// The DDL run is the generated one, less comments and semicolon.
		if !strings.Contains(string(ddl), tb.DDL+";") || strings.Contains(tb.DDL, "--") {
			t.Errorf("%s: DDL is not the generated statement", name)
		}
		if tb.TTLBase != "toDateTime(timestamp)" || tb.TTLDays == 0 {
			t.Errorf("%s: TTL %q %d", name, tb.TTLBase, tb.TTLDays)
		}
		if !slices.Contains(tb.Settings, "non_replicated_deduplication_window = 1000") {
			t.Errorf("%s: settings %q lack the deduplication window", name, tb.Settings)
		}
		if len(tb.Indexes) == 0 {
			t.Errorf("%s: no index", name)
		}
	}
	if s.Table("events").TTLDays != NewDefaultConfig().Schema.EventsTTLDays {
		t.Error("the default events retention is not the registry's")
	}
}

func TestParseTableDDLRejects(t *testing.T) {
	for name, ddl := range map[string]string{
		"qualified name": "CREATE TABLE IF NOT EXISTS db.events\n(\n    a String\n)\nENGINE = MergeTree ORDER BY a;",
		"no columns":     "CREATE TABLE IF NOT EXISTS events\n(\n)\nENGINE = MergeTree ORDER BY a;",
		"odd ttl":        "CREATE TABLE IF NOT EXISTS events\n(\n    a String\n)\nTTL a + 1;",
		"bad column":     "CREATE TABLE IF NOT EXISTS events\n(\n    `a b` String\n);",
	} {
		if _, err := ParseTableDDL("events", ddl); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// liveFrom describes tables exactly as the schema creates them, as the
// server would.
func liveFrom(s *Schema) map[string]*liveTable {
	live := map[string]*liveTable{}
	for _, t := range s.Tables {
		lt := &liveTable{columns: map[string]string{}, indexes: map[string]bool{}}
		for _, c := range t.Columns {
			lt.columns[c.Name] = strings.ReplaceAll(c.Type, ", ", ",") // spacing may differ
		}
		for _, ix := range t.Indexes {
			lt.indexes[ix.Name] = true
		}
		lt.engineFull = "ReplacingMergeTree(event_ingested) PARTITION BY toDate(timestamp) ORDER BY (x) TTL toDateTime(timestamp) + toIntervalDay(" +
			strconv.Itoa(t.TTLDays) + ") SETTINGS " + strings.Join(append(slices.Clone(t.Settings), "index_granularity = 8192"), ", ")
		live[t.Name] = lt
	}
	for _, v := range s.Views {
		live[v.Name] = &liveTable{engineFull: "MaterializedView"}
	}
	return live
}

func TestPlan(t *testing.T) {
	s, err := RegistrySchema()
	if err != nil {
		t.Fatal(err)
	}
	ev := s.Table("events")

	t.Run("empty database: tables, then views", func(t *testing.T) {
		stmts, problems := s.Plan(map[string]*liveTable{}, nil)
		want := []string{
			"CREATE TABLE IF NOT EXISTS events …",
			"CREATE TABLE IF NOT EXISTS alerts …",
			"CREATE TABLE IF NOT EXISTS alerts_by_rule_hourly …",
			"CREATE TABLE IF NOT EXISTS events_by_namespace_hourly …",
			"CREATE TABLE IF NOT EXISTS events_by_image_hourly …",
			"CREATE MATERIALIZED VIEW IF NOT EXISTS alerts_by_rule_hourly_mv TO alerts_by_rule_hourly AS …",
			"CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_namespace_hourly_mv TO events_by_namespace_hourly AS …",
			"CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_image_hourly_mv TO events_by_image_hourly AS …",
		}
		if len(problems) != 0 || !slices.Equal(firstLines(stmts), want) {
			t.Fatalf("statements %q, problems %v", firstLines(stmts), problems)
		}
	})
	t.Run("missing view", func(t *testing.T) {
		live := liveFrom(s)
		delete(live, "events_by_image_hourly_mv")
		stmts, _ := s.Plan(live, nil)
		if len(stmts) != 1 || !strings.HasPrefix(stmts[0], "CREATE MATERIALIZED VIEW IF NOT EXISTS events_by_image_hourly_mv") {
			t.Fatalf("statements %q", firstLines(stmts))
		}
	})
	t.Run("current: nothing", func(t *testing.T) {
		if stmts, problems := s.Plan(liveFrom(s), nil); len(stmts)+len(problems) != 0 {
			t.Fatalf("statements %v, problems %v", stmts, problems)
		}
	})
	t.Run("missing column: added after its predecessor", func(t *testing.T) {
		live := liveFrom(s)
		delete(live["events"].columns, ev.Columns[3].Name)
		delete(live["events"].columns, ev.Columns[0].Name)
		stmts, _ := s.Plan(live, nil)
		want := []string{
			"ALTER TABLE events ADD COLUMN IF NOT EXISTS " + ev.Columns[0].Definition + " FIRST",
			"ALTER TABLE events ADD COLUMN IF NOT EXISTS " + ev.Columns[3].Definition + " AFTER " + ev.Columns[2].Name,
		}
		if !slices.Equal(stmts, want) {
			t.Fatalf("got %q\nwant %q", stmts, want)
		}
	})
	t.Run("changed type: a problem, no statement", func(t *testing.T) {
		live := liveFrom(s)
		live["events"].columns["message"] = "Int64"
		stmts, problems := s.Plan(live, nil)
		if len(stmts) != 0 || len(problems) != 1 || !strings.Contains(problems[0].Error(), "column message is Int64") {
			t.Fatalf("statements %v, problems %v", stmts, problems)
		}
	})
	t.Run("retention", func(t *testing.T) {
		stmts, _ := s.Plan(liveFrom(s), Retention{"events": 30, "alerts": 0})
		want := []string{
			"ALTER TABLE events MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY",
			"ALTER TABLE alerts REMOVE TTL",
		}
		if !slices.Equal(stmts, want) {
			t.Fatalf("got %q, want %q", stmts, want)
		}
		stmts, _ = s.Plan(map[string]*liveTable{}, Retention{"events": 30})
		if len(stmts) != 9 || stmts[1] != want[0] {
			t.Fatalf("new tables with retention: %q", firstLines(stmts))
		}
	})
	t.Run("missing index and setting", func(t *testing.T) {
		live := liveFrom(s)
		delete(live["alerts"].indexes, "idx_event_id")
		live["alerts"].engineFull = strings.Replace(live["alerts"].engineFull, "non_replicated_deduplication_window = 1000, ", "", 1)
		stmts, _ := s.Plan(live, nil)
		want := []string{
			"ALTER TABLE alerts ADD INDEX IF NOT EXISTS idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4",
			"ALTER TABLE alerts MODIFY SETTING non_replicated_deduplication_window = 1000",
		}
		if !slices.Equal(stmts, want) {
			t.Fatalf("got %q, want %q", stmts, want)
		}
	})
}

func TestLiveTTLDays(t *testing.T) {
	for in, want := range map[string]int{
		"MergeTree ORDER BY a TTL toDateTime(timestamp) + toIntervalDay(90) SETTINGS x = 1": 90,
		"MergeTree ORDER BY a SETTINGS index_granularity = 8192":                            0,
	} {
		if got := liveTTLDays(in); got != want {
			t.Errorf("%q: %d, want %d", in, got, want)
		}
	}
}

func TestValidateDatabase(t *testing.T) {
	for _, ok := range []string{"crowsnest", "cn_test_1", "_x", "default"} {
		if err := validateDatabase(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1db", "a-b", "a.b", "a b", "db;DROP", "system", "INFORMATION_SCHEMA", "`x`", strings.Repeat("a", 65)} {
		if err := validateDatabase(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func firstLines(stmts []string) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = firstLine(s)
	}
	return out
}
