package clickhouse_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/crowsnest-siem/crowsnest/schemas"
	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
	"github.com/tidwall/gjson"
)

// tableFields returns the registry fields a table holds.
func tableFields(table string) []schemas.FieldInfo {
	var out []schemas.FieldInfo
	for _, f := range schemas.Fields() {
		if table == "events" && f.AlertOnly {
			continue
		}
		out = append(out, f)
	}
	return out
}

// fullDoc returns a document of table with every registry field set to a
// value of its type that tells it apart from every other field, so a value
// landing in the wrong column shows. It follows the registry, so a field
// added later is covered without touching this test.
func fullDoc(table, id string, seq int) []byte {
	root := map[string]any{}
	for i, f := range tableFields(table) {
		var v any
		switch f.Type {
		case "keyword", "text":
			s := fmt.Sprintf("%s-%d", f.Name, seq)
			if f.Array {
				v = []string{s + "-a", s + "-b", "ünïcode ✓ \"quoted\" \\ \t"}
			} else {
				v = s
			}
		case "ip":
			if f.Array {
				v = []string{fmt.Sprintf("10.1.%d.%d", seq%250, i%250), "2001:db8::" + strconv.Itoa(i)}
			} else {
				v = fmt.Sprintf("192.168.%d.%d", seq%250, i%250)
			}
		case "long":
			v = int64(1)<<40 + int64(i)
		case "integer":
			v = 1000 + i
		case "boolean":
			// false, not true: a nullable false must stay false, not null.
			v = false
			if !f.Nullable {
				v = true
			}
		case "date":
			v = time.Date(2026, 11, 26, 10, 15, i%60, (seq%1000)*1_000_000, time.UTC).Format(schemas.TimeLayout)
		case "flattened":
			v = map[string]any{"app": "api", "tier": fmt.Sprintf("t%d", i), "dotted.key": "x"}
		case "json":
			v = map[string]any{"kind": "Pod", "spec": map[string]any{"n": []int{1, 2, i}}}
		}
		if f.Name == "event.id" {
			v = id
		}
		setPath(root, f.Name, v)
	}
	b, err := json.Marshal(root)
	if err != nil {
		panic(err) // a map of plain values always marshals
	}
	return b
}

func setPath(root map[string]any, name string, v any) {
	parts := strings.Split(name, ".")
	cur := root
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

// minimalDoc has the required fields only.
func minimalDoc(id string) []byte {
	return fmt.Appendf(nil, `{"@timestamp":"2026-11-26T10:15:00.000Z","event":{"id":%q,"kind":"event","dataset":"crowsnest.json","ingested":"2026-11-26T10:15:01.000Z"},"crowsnest":{"schema_version":"1.0.0","source":"json"},"ocsf":{"class_uid":0,"category_uid":0,"activity_id":0,"type_uid":0,"severity_id":0}}`, id)
}

// expected is the canonical form of the value the table must hold for
// field f of doc: the document's value, or the column default when absent.
func expected(f schemas.FieldInfo, doc []byte) string {
	v := gjson.GetBytes(doc, f.Name)
	if !v.Exists() || v.Type == gjson.Null {
		switch {
		case f.Array:
			return "[]"
		case f.Type == "ip":
			return "::"
		case f.Nullable:
			return "null"
		case f.Type == "long" || f.Type == "integer":
			return "0"
		case f.Type == "boolean":
			return "false"
		case f.Type == "date":
			return "1970-01-01T00:00:00.000Z"
		case f.Type == "flattened":
			return "{}"
		}
		return `""`
	}
	switch f.Type {
	case "keyword", "text":
		if f.Array {
			var ss []string
			for _, e := range v.Array() {
				ss = append(ss, e.String())
			}
			return canon(ss)
		}
		return canon(v.String())
	case "ip":
		if f.Array {
			var ips []string
			for _, e := range v.Array() {
				ips = append(ips, netip.MustParseAddr(e.String()).Unmap().String())
			}
			return canon(ips)
		}
		return netip.MustParseAddr(v.String()).Unmap().String()
	case "long", "integer":
		return v.Raw
	case "boolean":
		return v.Raw
	case "date":
		t, err := time.Parse(time.RFC3339Nano, v.String())
		if err != nil {
			return "bad time " + v.Raw
		}
		return t.UTC().Format(schemas.TimeLayout)
	case "flattened":
		m := map[string]string{}
		v.ForEach(func(k, e gjson.Result) bool {
			if e.Type == gjson.String {
				m[k.String()] = e.String()
			} else {
				m[k.String()] = e.Raw
			}
			return true
		})
		return canon(m)
	case "json":
		return canon(v.Raw)
	}
	return "unknown type " + f.Type
}

// canon renders a value read back from ClickHouse (or built by expected) in
// one canonical text form.
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case []string:
		if len(x) == 0 {
			return "[]"
		}
		b, _ := json.Marshal(x)
		return string(b)
	case net.IP:
		a, ok := netip.AddrFromSlice(x)
		if !ok {
			return "bad ip"
		}
		return a.Unmap().String()
	case []net.IP:
		var out []string
		for _, ip := range x {
			a, _ := netip.AddrFromSlice(ip)
			out = append(out, a.Unmap().String())
		}
		return canon(out)
	case netip.Addr:
		return x.Unmap().String()
	case time.Time:
		return x.UTC().Format(schemas.TimeLayout)
	case map[string]string:
		keys := slices.Sorted(maps.Keys(x))
		var b strings.Builder
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(strconv.Quote(k) + ":" + strconv.Quote(x[k]))
		}
		b.WriteString("}")
		return b.String()
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "null"
		}
		return canon(rv.Elem().Interface())
	}
	return fmt.Sprint(v)
}

// readRow reads the row of table with event_id id through clickhouse-go,
// every column scanned into the type the driver picks, keyed by column.
func readRow(tb testing.TB, conn driver.Conn, table, id string) map[string]any {
	tb.Helper()
	ctx := clickhouse.Context(context.Background(), clickhouse.WithParameters(clickhouse.Parameters{"id": id}))
	rows, err := conn.Query(ctx, "SELECT * FROM "+table+" WHERE event_id = {id:String}")
	if err != nil {
		tb.Fatalf("read %s %s: %v", table, id, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out map[string]any
	for rows.Next() {
		if out != nil {
			tb.Fatalf("%s %s: more than one row", table, id)
		}
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatalf("scan %s %s: %v", table, id, err)
		}
		out = map[string]any{}
		for i, ct := range types {
			out[ct.Name()] = reflect.ValueOf(ptrs[i]).Elem().Interface()
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if out == nil {
		tb.Fatalf("%s %s: not stored", table, id)
	}
	return out
}

// record makes a sink record of kind k.
func record(k sink.Kind, id string, data []byte) sink.Record {
	return sink.Record{Data: data, ID: id, Kind: k, Delivered: 1}
}

// newSink opens the sink for cfg, closed when the test ends.
func newSink(tb testing.TB, cfg chsink.Config) *chsink.Sink {
	tb.Helper()
	s, err := chsink.New(cfg, sinktest.Settings(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

// count runs a query returning one UInt64.
func count(tb testing.TB, conn driver.Conn, query string) uint64 {
	tb.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
