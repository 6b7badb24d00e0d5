package clickhouse_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/crowsnest-siem/crowsnest/schemas"
	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/internal/chtest"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// testSchema is the registry's schema with one more events column, as a
// registry with a new field would generate it.
func testSchema(t *testing.T) *chsink.Schema {
	t.Helper()
	ddl, err := schemas.ClickHouseDDL("events")
	if err != nil {
		t.Fatal(err)
	}
	const after = "    message String CODEC(ZSTD(1)) COMMENT 'message',\n"
	if !strings.Contains(string(ddl), after) {
		t.Fatal("the events DDL changed shape: adjust the test")
	}
	grown := strings.Replace(string(ddl), after, after+"    test_extra LowCardinality(String) CODEC(ZSTD(1)) COMMENT 'test.extra',\n", 1)
	events, err := chsink.ParseTableDDL("events", grown)
	if err != nil {
		t.Fatal(err)
	}
	s, err := chsink.RegistrySchema()
	if err != nil {
		t.Fatal(err)
	}
	s.Tables[slices.IndexFunc(s.Tables, func(tb chsink.Table) bool { return tb.Name == "events" })] = *events
	return s
}

func columns(t *testing.T, conn driver.Conn, table string) []string {
	t.Helper()
	rows, err := conn.Query(testCtx(t), "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '"+table+"' ORDER BY position")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func TestMigrate(t *testing.T) {
	cfg := chtest.Config(t)
	chtest.CreateDatabase(t, cfg)
	conn := chtest.Conn(t, cfg)
	ctx := testCtx(t)
	reg, err := chsink.RegistrySchema()
	if err != nil {
		t.Fatal(err)
	}
	keep := chsink.Retention{"events": 90, "alerts": 365}

	m, err := chsink.Migrate(ctx, conn, reg, keep)
	if err != nil {
		t.Fatalf("first migration: %v", err)
	}
	if m.Version != 1 || len(m.Statements) != 8 {
		t.Fatalf("first migration: version %d, %d statements, want 1 and 8 (5 tables, 3 views)", m.Version, len(m.Statements))
	}
	for _, table := range []string{"events", "alerts"} {
		want := 0
		for _, f := range schemas.Fields() {
			if table == "alerts" || !f.AlertOnly {
				want++
			}
		}
		if got := len(columns(t, conn, table)); got != want {
			t.Errorf("%s has %d columns, the registry %d", table, got, want)
		}
	}

	// Applied twice: the live tables match the schema exactly (types as the
	// server spells them, indexes, TTL, settings), so nothing runs.
	m, err = chsink.Migrate(ctx, conn, reg, keep)
	if err != nil {
		t.Fatalf("second migration: %v", err)
	}
	if m.Version != 1 || len(m.Statements) != 0 {
		t.Fatalf("second migration: version %d, statements %q, want version 1 and none", m.Version, m.Statements)
	}

	// A registry with a new field: one ADD COLUMN, in registry order.
	grown := testSchema(t)
	m, err = chsink.Migrate(ctx, conn, grown, keep)
	if err != nil {
		t.Fatalf("migration to the grown registry: %v", err)
	}
	want := "ALTER TABLE events ADD COLUMN IF NOT EXISTS test_extra LowCardinality(String) CODEC(ZSTD(1)) COMMENT 'test.extra' AFTER message"
	if m.Version != 2 || !slices.Equal(m.Statements, []string{want}) {
		t.Fatalf("grown: version %d, statements %q, want 2 and [%s]", m.Version, m.Statements, want)
	}
	cols := columns(t, conn, "events")
	if i := slices.Index(cols, "test_extra"); i < 0 || cols[i-1] != "message" {
		t.Fatalf("test_extra not after message: %v", cols[:4])
	}
	if m, err = chsink.Migrate(ctx, conn, grown, keep); err != nil || len(m.Statements) != 0 || m.Version != 2 {
		t.Fatalf("grown, again: %v %+v", err, m)
	}

	// Retention changes are migrations too.
	m, err = chsink.Migrate(ctx, conn, grown, chsink.Retention{"events": 30, "alerts": 365})
	if err != nil || len(m.Statements) != 1 || m.Version != 3 {
		t.Fatalf("retention: %v %+v", err, m)
	}
	if n := count(t, conn, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'events' AND engine_full LIKE '%toIntervalDay(30)%'"); n != 1 {
		t.Fatal("the events TTL is not 30 days")
	}

	// The history, one row per version.
	if n := count(t, conn, "SELECT count() FROM schema_migrations"); n != 3 {
		t.Fatalf("%d migrations recorded, want 3", n)
	}
	var stmts []string
	if err := conn.QueryRow(ctx, "SELECT statements FROM schema_migrations WHERE version = 2").Scan(&stmts); err != nil || !slices.Equal(stmts, []string{want}) {
		t.Fatalf("version 2 recorded %q, %v", stmts, err)
	}

	// A type the schema disagrees with stops the migration before it runs
	// anything.
	clash := testSchema(t)
	ev := clash.Table("events")
	ddl := strings.Replace(ev.DDL, "test_extra LowCardinality(String)", "test_extra Int64", 1)
	changed, err := chsink.ParseTableDDL("events", ddl)
	if err != nil {
		t.Fatal(err)
	}
	*ev = *changed
	if _, err := chsink.Migrate(ctx, conn, clash, keep); err == nil || !strings.Contains(err.Error(), "column test_extra is LowCardinality(String), the schema says Int64") {
		t.Fatalf("type clash: %v", err)
	}
	if n := count(t, conn, "SELECT count() FROM schema_migrations"); n != 3 {
		t.Fatal("a refused migration was recorded")
	}
}

// The sink creates the database and tables on its first write, and writes
// into a table that has columns the registry does not know.
func TestSinkCreatesSchema(t *testing.T) {
	cfg := chtest.Config(t)
	s := newSink(t, cfg)
	ctx := testCtx(t)
	if err := s.WriteBatch(ctx, []sink.Record{record(sink.KindEvents, "c1", minimalDoc("c1"))}); err != nil {
		t.Fatal(err)
	}
	conn := chtest.Conn(t, cfg)
	if n := count(t, conn, "SELECT count() FROM events"); n != 1 {
		t.Fatalf("%d rows", n)
	}
	if err := conn.Exec(ctx, "ALTER TABLE events ADD COLUMN operator_note String DEFAULT 'none'"); err != nil {
		t.Fatal(err)
	}
	// A fresh sink migrates (nothing to do: extra columns are kept) and writes.
	s2 := newSink(t, cfg)
	if err := s2.WriteBatch(ctx, []sink.Record{record(sink.KindEvents, "c2", minimalDoc("c2"))}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, conn, "SELECT count() FROM events WHERE operator_note = 'none'"); n != 2 {
		t.Fatalf("%d rows with the operator's default", n)
	}
	if n := count(t, conn, "SELECT count() FROM schema_migrations"); n != 1 {
		t.Fatalf("%d migrations recorded, want 1", n)
	}
}

// A table dropped under a running sink: the write fails (retryable), the
// next one checks the schema again and recreates it.
func TestSinkRecreatesDroppedTable(t *testing.T) {
	cfg := chtest.Config(t)
	s := newSink(t, cfg)
	ctx := testCtx(t)
	if err := s.WriteBatch(ctx, []sink.Record{record(sink.KindAlerts, "a1", minimalDoc("a1"))}); err != nil {
		t.Fatal(err)
	}
	conn := chtest.Conn(t, cfg)
	if err := conn.Exec(ctx, "DROP TABLE alerts SYNC"); err != nil {
		t.Fatal(err)
	}
	err := s.WriteBatch(ctx, []sink.Record{record(sink.KindAlerts, "a2", minimalDoc("a2"))})
	if err == nil || sink.IsPermanent(err) {
		t.Fatalf("write to a dropped table: %v, want a retryable error", err)
	}
	if err := s.WriteBatch(ctx, []sink.Record{record(sink.KindAlerts, "a2", minimalDoc("a2"))}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := count(t, conn, "SELECT count() FROM alerts"); n != 1 {
		t.Fatalf("%d rows", n)
	}
}
