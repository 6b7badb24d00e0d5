package schemas_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/crowsnest-siem/crowsnest/schemas/internal/gen"
)

func TestClickHouseDDLEmbedded(t *testing.T) {
	for _, table := range []string{"events", "alerts"} {
		got, err := schemas.ClickHouseDDL(table)
		if err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		want, err := os.ReadFile("clickhouse/" + table + ".sql")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: embedded bytes differ from the file", table)
		}
		if !strings.Contains(string(got), "\nCREATE TABLE IF NOT EXISTS "+table+"\n") {
			t.Errorf("%s: no unqualified CREATE TABLE IF NOT EXISTS %s line", table, table)
		}
		if !strings.Contains(string(got), "non_replicated_deduplication_window") {
			t.Errorf("%s: no deduplication window: insert_deduplication_token would do nothing", table)
		}
	}
	if _, err := schemas.ClickHouseDDL("logs"); err == nil {
		t.Error("unknown table accepted")
	}
	rollups, err := schemas.ClickHouseRollupsDDL()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := os.ReadFile("clickhouse/rollups.sql"); !bytes.Equal(rollups, want) {
		t.Error("rollups: embedded bytes differ from the file")
	}
	if n := strings.Count(string(rollups), "CREATE MATERIALIZED VIEW IF NOT EXISTS "); n < 3 {
		t.Errorf("rollups: %d views, want one per rollup (3)", n)
	}
}

func TestRegistryRejectsBadRollups(t *testing.T) {
	base := "schema_version: x\nfields: [{name: a, type: keyword, description: d}, {name: al, type: keyword, alert_only: true, description: d}, {name: t, type: keyword, array: true, description: d}]\n" +
		"elasticsearch: {data_streams: {events: e, alerts: a}}\n" +
		"clickhouse: {database: d, tables: {events: {engine: E, partition_by: p, order_by: [a]}, alerts: {engine: E, partition_by: p, order_by: [a]}}, rollups: [%s]}\n"
	for name, tc := range map[string]struct{ rollup, want string }{
		"unknown column": {"{name: r, table: events, group_by: [nope], ttl_days: 1}", "is not a column"},
		"alert-only":     {"{name: r, table: events, group_by: [al], ttl_days: 1}", "is alert-only"},
		"array":          {"{name: r, table: alerts, group_by: [t], ttl_days: 1}", "is not a scalar"},
		"bad table":      {"{name: r, table: logs, group_by: [a], ttl_days: 1}", "table must be"},
		"bad name":       {"{name: events, table: events, group_by: [a], ttl_days: 1}", "name must be"},
		"no ttl":         {"{name: r, table: events, group_by: [a]}", "ttl_days are required"},
	} {
		_, err := gen.Parse([]byte(strings.Replace(base, "%s", tc.rollup, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}
