package schemas_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/schemas"
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
}
