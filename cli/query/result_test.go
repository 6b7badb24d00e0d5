package query

import (
	"bytes"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/hunts"
)

func TestWrite(t *testing.T) {
	res := Result{
		Columns: []hunts.Column{{Name: "at", Type: "time"}, {Name: "who", Type: "string"}, {Name: "n", Type: "int"}, {Name: "tags", Type: "strings"}},
		Rows: [][]any{
			{time.Date(2026, 11, 1, 10, 0, 0, 5_000_000, time.UTC), "alice", int64(3), []string{"a", "b"}},
			// A hostile value: a tab would shift the columns, an escape
			// sequence would drive the terminal.
			{time.Date(2026, 11, 1, 11, 0, 0, 0, time.FixedZone("x", 3600)), "ev\til\x1b[31m\n", int64(-1), []string{}},
		},
	}
	if err := res.check("test", "t"); err != nil {
		t.Fatal(err)
	}
	var table, lines bytes.Buffer
	if err := WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	wantTable := "AT                        WHO               N   TAGS\n" +
		"2026-11-01T10:00:00.005Z  alice             3   a,b\n" +
		`2026-11-01T10:00:00.000Z  ev\til\x1b[31m\n  -1  ` + "\n"
	if table.String() != wantTable {
		t.Errorf("table:\n%s\nwant:\n%s", table.String(), wantTable)
	}
	if err := WriteJSONLines(&lines, res); err != nil {
		t.Fatal(err)
	}
	wantLines := `{"at":"2026-11-01T10:00:00.005Z","who":"alice","n":3,"tags":["a","b"]}` + "\n" +
		`{"at":"2026-11-01T10:00:00.000Z","who":"ev\til\u001b[31m\n","n":-1,"tags":[]}` + "\n"
	if lines.String() != wantLines {
		t.Errorf("json lines:\n%s\nwant:\n%s", lines.String(), wantLines)
	}
}

func TestCheckRejectsWrongTypes(t *testing.T) {
	cols := []hunts.Column{{Name: "n", Type: "int"}}
	for _, row := range [][]any{{"3"}, {3}, {int64(1), int64(2)}, {nil}} {
		r := Result{Columns: cols, Rows: [][]any{row}}
		if err := r.check("test", "t"); err == nil {
			t.Errorf("row %#v accepted for %v", row, cols)
		}
	}
}

func TestLimit(t *testing.T) {
	r := Result{Rows: [][]any{{1}, {2}, {3}}}
	r.limit(3)
	if len(r.Rows) != 3 || r.More {
		t.Fatalf("limit 3 of 3: %d rows, more %t", len(r.Rows), r.More)
	}
	r.limit(2)
	if len(r.Rows) != 2 || !r.More {
		t.Fatalf("limit 2 of 3: %d rows, more %t", len(r.Rows), r.More)
	}
}
