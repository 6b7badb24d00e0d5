package clickhouse

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// base is a valid event with every required field; cases add to it.
const base = `"@timestamp":"2026-11-26T10:15:00.123Z","event":{"id":"e1","kind":"event","dataset":"crowsnest.k8s_audit","ingested":"2026-11-26T10:15:01.000Z"%s},"crowsnest":{"schema_version":"1.0.0","source":"k8s_audit"},"ocsf":{"class_uid":6003,"category_uid":6,"activity_id":2,"type_uid":600302,"severity_id":1}`

func doc(eventExtra, extra string) []byte {
	s := "{" + strings.Replace(base, "%s", eventExtra, 1)
	if extra != "" {
		s += "," + extra
	}
	return []byte(s + "}")
}

func newTestBuilder(t testing.TB, table string) *rowBuilder {
	t.Helper()
	m, err := newTableMap(table, schemas.Fields())
	if err != nil {
		t.Fatal(err)
	}
	return newRowBuilder(m)
}

// col returns the buffer of the column of field name.
func (b *rowBuilder) col(t testing.TB, name string) *colBuf {
	t.Helper()
	for i, c := range b.m.columns {
		if c.Field == name {
			return &b.cols[i]
		}
	}
	t.Fatalf("no column for %s", name)
	return nil
}

func TestRowBuilderAccepts(t *testing.T) {
	cases := []struct {
		name  string
		doc   []byte
		field string
		want  func(*colBuf) bool
	}{
		{"string", doc("", `"message":"hi"`), "message", func(c *colBuf) bool { return c.strs[0] == "hi" }},
		{"escaped string", doc("", `"message":"a\"b\u00e9\n"`), "message", func(c *colBuf) bool { return c.strs[0] == "a\"bé\n" }},
		{"absent string is empty", doc("", ""), "message", func(c *colBuf) bool { return c.strs[0] == "" }},
		{"null is absent", doc("", `"message":null`), "message", func(c *colBuf) bool { return c.strs[0] == "" }},
		{"array", doc("", `"tags":["a","b"]`), "tags", func(c *colBuf) bool { return len(c.strss[0]) == 2 && c.strss[0][1] == "b" }},
		{"lone string as array", doc("", `"tags":"a"`), "tags", func(c *colBuf) bool { return len(c.strss[0]) == 1 && c.strss[0][0] == "a" }},
		{"absent array", doc("", ""), "tags", func(c *colBuf) bool { return c.strss[0] == nil }},
		{"ipv4", doc("", `"source":{"ip":"10.0.0.1"}`), "source.ip", func(c *colBuf) bool { return c.ips[0] == netip.MustParseAddr("10.0.0.1") }},
		{"ipv6", doc("", `"source":{"ip":"2001:db8::1"}`), "source.ip", func(c *colBuf) bool { return c.ips[0] == netip.MustParseAddr("2001:db8::1") }},
		{"absent ip is ::", doc("", ""), "source.ip", func(c *colBuf) bool { return c.ips[0] == netip.IPv6Unspecified() }},
		{"empty ip is ::", doc("", `"source":{"ip":""}`), "source.ip", func(c *colBuf) bool { return c.ips[0] == netip.IPv6Unspecified() }},
		{"ip array", doc("", `"related":{"ip":["10.0.0.1","::1"]}`), "related.ip", func(c *colBuf) bool { return len(c.ipss[0]) == 2 }},
		{"int32", doc("", `"source":{"port":443}`), "source.port", func(c *colBuf) bool { return c.i32[0] == 443 }},
		{"int64 beyond int32", doc(`,"duration":8589934592`, ""), "event.duration", func(c *colBuf) bool { return c.i64[0] == 8589934592 }},
		{"integral float", doc(`,"duration":1.5e3`, ""), "event.duration", func(c *colBuf) bool { return c.i64[0] == 1500 }},
		{"nullable int set to 0", doc("", `"process":{"exit_code":0}`), "process.exit_code", func(c *colBuf) bool { return c.ni64[0] != nil && *c.ni64[0] == 0 }},
		{"nullable int absent", doc("", ""), "process.exit_code", func(c *colBuf) bool { return c.ni64[0] == nil }},
		{"bool", []byte(strings.Replace(string(doc("", "")), `"source":"k8s_audit"`, `"source":"k8s_audit","truncated":true`, 1)), "crowsnest.truncated", func(c *colBuf) bool { return c.bools[0] }},
		{"nullable bool false", doc("", `"process":{"tty":false}`), "process.tty", func(c *colBuf) bool { return c.nbools[0] != nil && !*c.nbools[0] }},
		{"time, crowsnest layout", doc("", ""), "@timestamp", func(c *colBuf) bool {
			return c.times[0].Equal(time.Date(2026, 11, 26, 10, 15, 0, 123e6, time.UTC))
		}},
		{"time, RFC 3339 with offset", doc(`,"start":"2026-11-26T12:15:00.5+02:00"`, ""), "event.start", func(c *colBuf) bool {
			return c.times[0].Equal(time.Date(2026, 11, 26, 10, 15, 0, 5e8, time.UTC))
		}},
		{"absent time is the epoch", doc("", ""), "event.start", func(c *colBuf) bool { return c.times[0].Equal(time.Unix(0, 0)) }},
		{"map", doc("", `"labels":{"a":"1","n":2,"o":{"x":1}}`), "labels", func(c *colBuf) bool {
			m := c.maps[0]
			return m["a"] == "1" && m["n"] == "2" && m["o"] == `{"x":1}`
		}},
		{"json kept raw", doc("", `"kubernetes":{"audit":{"requestObject":{"kind":"Pod","n":[1, 2]}}}`), "kubernetes.audit.requestObject", func(c *colBuf) bool {
			return c.strs[0] == `{"kind":"Pod","n":[1, 2]}`
		}},
		{"unknown keys ignored", doc("", `"future":{"field":[1,2,3]},"event_extra":1`), "message", func(c *colBuf) bool { return c.strs[0] == "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBuilder(t, "events")
			if err := b.Add(tc.doc); err != nil {
				t.Fatalf("Add: %v", err)
			}
			if !tc.want(b.col(t, tc.field)) {
				t.Errorf("%s: wrong value", tc.field)
			}
			checkColumns(t, b)
		})
	}
}

func TestRowBuilderRejects(t *testing.T) {
	cases := []struct {
		name, want string
		doc        []byte
	}{
		{"not JSON", "not a JSON document", []byte(`{not json`)},
		{"array document", "want a JSON object", []byte(`[1]`)},
		{"required missing", "event.id: required, missing", []byte(strings.Replace(string(doc("", "")), `"id":"e1",`, "", 1))},
		{"string for int", "source.port: want an integer", doc("", `"source":{"port":"443"}`)},
		{"fraction", "is not an integer", doc(`,"duration":1.5`, "")},
		{"int32 overflow", "out of range", doc("", `"source":{"port":4294967296}`)},
		{"int64 overflow", "not an integer in range", doc(`,"duration":1e30`, "")},
		{"number for string", "message: want a string", doc("", `"message":5`)},
		{"bad ip", "is not an IP address", doc("", `"source":{"ip":"10.0.0.300"}`)},
		{"bad ip in array", "is not an IP address", doc("", `"related":{"ip":["10.0.0.1","nope"]}`)},
		{"number in array", "want an array of strings", doc("", `"tags":["a",1]`)},
		{"bad time", "not an RFC 3339 time", doc(`,"start":"yesterday"`, "")},
		{"time out of range", "outside DateTime64", doc(`,"start":"1800-01-01T00:00:00.000Z"`, "")},
		{"group not an object", "source: want an object", doc("", `"source":"10.0.0.1"`)},
		{"map not an object", "labels: want an object", doc("", `"labels":["a"]`)},
		{"bool as string", "want true or false", doc("", `"process":{"tty":"yes"}`)},
		{"duplicate key", "duplicate key", doc("", `"message":"a","message":"b"`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestBuilder(t, "events")
			if err := b.Add(doc("", `"message":"kept"`)); err != nil {
				t.Fatal(err)
			}
			err := b.Add(tc.doc)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add = %v, want an error containing %q", err, tc.want)
			}
			// The rejected document left nothing behind; the good one is intact.
			if b.Rows() != 1 {
				t.Fatalf("rows = %d, want 1", b.Rows())
			}
			checkColumns(t, b)
			if got := b.col(t, "message").strs[0]; got != "kept" {
				t.Errorf("the earlier row changed: message = %q", got)
			}
		})
	}
}

// Events ignore alert-only fields; alerts take them.
func TestAlertOnlyFields(t *testing.T) {
	d := doc(`,"risk_score":73`, `"rule":{"id":"r1","description":"d"}`)
	ev := newTestBuilder(t, "events")
	if err := ev.Add(d); err != nil {
		t.Fatal(err)
	}
	for _, c := range ev.m.columns {
		if c.Name == "event_risk_score" || c.Name == "rule_description" {
			t.Errorf("events table maps alert-only %s", c.Field)
		}
	}
	al := newTestBuilder(t, "alerts")
	if err := al.Add(d); err != nil {
		t.Fatal(err)
	}
	if got := al.col(t, "event.risk_score").i64[0]; got != 73 {
		t.Errorf("risk_score = %d", got)
	}
}

func TestRowBuilderKeep(t *testing.T) {
	b := newTestBuilder(t, "events")
	for _, id := range []string{"a", "b", "c", "d"} {
		if err := b.Add([]byte(strings.Replace(string(doc("", `"tags":["`+id+`"]`)), `"id":"e1"`, `"id":"`+id+`"`, 1))); err != nil {
			t.Fatal(err)
		}
	}
	b.Keep([]bool{true, false, true, false})
	if b.Rows() != 2 || b.ID(0) != "a" || b.ID(1) != "c" || b.col(t, "tags").strss[1][0] != "c" {
		t.Fatalf("after Keep: rows %d, ids %s %s", b.Rows(), b.ID(0), b.ID(1))
	}
	checkColumns(t, b)
	b.Reset()
	if b.Rows() != 0 {
		t.Fatal("Reset kept rows")
	}
	checkColumns(t, b)
}

// checkColumns fails unless every column holds exactly one value per row.
func checkColumns(t testing.TB, b *rowBuilder) {
	t.Helper()
	for i := range b.cols {
		if n := b.cols[i].len(); n != b.rows {
			t.Fatalf("column %s holds %d values for %d rows", b.m.columns[i].Name, n, b.rows)
		}
	}
}

func TestParseLayoutFast(t *testing.T) {
	for _, s := range []string{"2026-11-26T10:15:00.123Z", "2024-02-29T23:59:59.999Z", "1900-01-01T00:00:00.000Z"} {
		got, ok := parseLayoutFast(s)
		want, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil || !got.Equal(want) {
			t.Errorf("%s: got %v %v, want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"2026-02-30T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-11-26T24:00:00.000Z", "2026-11-26 10:15:00.123Z", "2026-11-26T10:15:00Z"} {
		if _, ok := parseLayoutFast(s); ok {
			t.Errorf("%s: accepted", s)
		}
	}
}

func TestStringArrayParam(t *testing.T) {
	got := stringArrayParam([]string{"a", `it's`, `back\slash`, "tab\there"})
	want := `['a','it\'s','back\\slash','tab\there']`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestDedupToken(t *testing.T) {
	a := dedupToken([]string{"x", "y"})
	if a != dedupToken([]string{"x", "y"}) {
		t.Fatal("not deterministic")
	}
	for _, other := range [][]string{{"y", "x"}, {"xy"}, {"x"}, {"x", "y", ""}} {
		if dedupToken(other) == a {
			t.Errorf("%q has the token of [x y]", other)
		}
	}
}

// FuzzRowBuilderAdd: no input panics, and whatever Add says, every column
// holds one value per accepted row.
func FuzzRowBuilderAdd(f *testing.F) {
	f.Add(doc("", ""))
	f.Add(doc(`,"start":"2026-11-26T12:15:00.5+02:00"`, `"labels":{"a":"1"},"related":{"ip":["::1"]},"process":{"exit_code":3}`))
	f.Add([]byte(`{"event":{"id":null}}`))
	f.Add([]byte(`{"@timestamp":1e400}`))
	f.Add([]byte(`{"kubernetes":{"audit":{"requestObject":{"a":[{"b":"\ud800"}]}}}}`))
	m, err := newTableMap("alerts", schemas.Fields())
	if err != nil {
		f.Fatal(err)
	}
	b := newRowBuilder(m)
	f.Fuzz(func(t *testing.T, data []byte) {
		before := b.Rows()
		err := b.Add(data)
		if (err == nil) != (b.Rows() == before+1) || (err != nil && b.Rows() != before) {
			t.Fatalf("Add = %v, rows %d → %d", err, before, b.Rows())
		}
		checkColumns(t, b)
		if b.Rows() > 1000 {
			b.Reset()
		}
	})
}
