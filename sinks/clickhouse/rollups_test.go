package clickhouse_test

import (
	"bytes"
	"testing"

	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/internal/chtest"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// The rollups count what the tables hold, hour by hour, and a batch the
// server drops as a duplicate (same token) does not count twice.
func TestRollups(t *testing.T) {
	cfg := chtest.Config(t)
	s := newSink(t, cfg)
	ctx := testCtx(t)
	var alerts []sink.Record
	for i, rule := range []string{"r1", "r1", "r2", "r1"} {
		id := "ra" + string(rune('0'+i))
		doc := sinktest.AlertDoc(id, "trigger")
		doc = bytes.Replace(doc, []byte(`"id":"cn-0001"`), []byte(`"id":"`+rule+`"`), 1)
		if i == 3 { // the next hour
			doc = bytes.Replace(doc, []byte(`"@timestamp":"2026-11-26T10:15:02.000Z"`), []byte(`"@timestamp":"2026-11-26T11:01:00.000Z"`), 1)
		}
		alerts = append(alerts, sink.Record{Data: doc, ID: id, Kind: sink.KindAlerts, Delivered: 1})
	}
	evs := events("roll", 25, 1)
	for range 3 { // retried as is: the token drops the copies, in the views too
		if err := s.WriteBatch(ctx, append(alerts, evs...)); err != nil {
			t.Fatal(err)
		}
	}
	conn := chtest.Conn(t, cfg)
	rows, err := conn.Query(ctx, "SELECT toString(hour), rule_id, sum(rows), uniqMerge(event_ids) FROM alerts_by_rule_hourly GROUP BY hour, rule_id ORDER BY hour, rule_id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var hour, rule string
		var n, uniq uint64
		if err := rows.Scan(&hour, &rule, &n, &uniq); err != nil {
			t.Fatal(err)
		}
		got = append(got, hour+" "+rule+" "+itoa(n)+" "+itoa(uniq))
	}
	rows.Close()
	want := []string{"2026-11-26 10:00:00 r1 2 2", "2026-11-26 10:00:00 r2 1 1", "2026-11-26 11:00:00 r1 1 1"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("alerts_by_rule_hourly:\n got %q\nwant %q", got, want)
	}
	if n := count(t, conn, "SELECT sum(rows) FROM events_by_namespace_hourly WHERE orchestrator_namespace = 'payments' AND event_action = 'get'"); n != 25 {
		t.Errorf("events_by_namespace_hourly counts %d, want 25", n)
	}
	if n := count(t, conn, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND engine = 'MaterializedView'"); n != 3 {
		t.Errorf("%d views, want 3", n)
	}
}

func itoa(n uint64) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}
