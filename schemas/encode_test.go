package schemas_test

import (
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fill sets every field of v to a non-zero value derived from seed, so the
// round-trip test covers every generated branch.
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 26, 10, 0, seed%60, (seed%1000)*int(time.Millisecond), time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i), seed+i+1)
		}
	case reflect.String:
		v.SetString("v" + strings.Repeat("x", seed%3) + "<\"\\\n\u2028é>" + string(rune('a'+seed%26)))
	case reflect.Int64, reflect.Int32:
		v.SetInt(int64(seed))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), seed)
		if p.Elem().Kind() == reflect.Bool {
			p.Elem().SetBool(seed%2 == 0)
		}
		v.Set(p)
	case reflect.Slice:
		if v.Type() == reflect.TypeOf(json.RawMessage{}) {
			v.SetBytes([]byte(`{"spec":{"containers":[{"image":"nginx"}]},"n":1}`))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), seed)
		fill(s.Index(1), seed+7)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("b.key"), reflect.ValueOf("2"))
		m.SetMapIndex(reflect.ValueOf("a/key"), reflect.ValueOf("1"))
		v.Set(m)
	}
}

func TestEventRoundTrip(t *testing.T) {
	for seed := 0; seed < 5; seed++ {
		var in schemas.Event
		fill(reflect.ValueOf(&in).Elem(), seed)
		out := in.AppendJSON(nil)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		var back schemas.Event
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, back) {
			t.Fatalf("round trip differs\nin:   %+v\nback: %+v", in, back)
		}
	}
}

func TestAlertRoundTrip(t *testing.T) {
	var in schemas.Alert
	fill(reflect.ValueOf(&in).Elem(), 3)
	out, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var back schemas.Alert
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, back) {
		t.Fatalf("round trip differs")
	}
}

// TestEncodingGolden pins the exact bytes: key order, omission, time format.
func TestEncodingGolden(t *testing.T) {
	exit := int64(0)
	priv := false
	cases := []struct {
		name string
		ev   schemas.Event
	}{
		{"minimal", schemas.Event{
			Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("x", 3600)),
			Event:     schemas.EventFields{ID: "abc-ResponseComplete", Kind: "event", Dataset: "crowsnest.k8s_audit", Ingested: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)},
			Crowsnest: schemas.Crowsnest{SchemaVersion: schemas.SchemaVersion, Source: "k8s_audit"},
			OCSF:      schemas.OCSF{ClassUID: 6003, CategoryUID: 6, ActivityID: 2, TypeUID: 600302, SeverityID: 1},
		}},
		{"zero values that matter", schemas.Event{
			Timestamp:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Event:      schemas.EventFields{ID: "x", Kind: "event", Dataset: "crowsnest.procwatch"},
			Process:    schemas.Process{PID: 1, ExitCode: &exit, Args: []string{"sh", "-c", "id"}},
			Kubernetes: schemas.Kubernetes{PodSpec: schemas.KubernetesPodSpec{Privileged: &priv}},
			Labels:     map[string]string{"z": "1", "a": "invalid \xff utf8"},
		}},
	}
	var got strings.Builder
	for _, tc := range cases {
		got.WriteString(tc.name + ": ")
		got.Write(tc.ev.AppendJSON(nil))
		got.WriteString("\n")
	}
	golden := "testdata/encoding.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got.String() != string(want) {
		t.Fatalf("encoding changed:\n%s\nwant:\n%s", got.String(), want)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\x00\x1f\"\\", "\xff\xfe", "é\u2028\u2029<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ev := schemas.Event{Message: s, Event: schemas.EventFields{ID: s}}
		out := ev.AppendJSON(nil)
		var back schemas.Event
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("invalid JSON for %q: %v\n%s", s, err, out)
		}
		want, _ := json.Marshal(s) // encoding/json's own escaping is the reference
		var ref string
		_ = json.Unmarshal(want, &ref)
		if back.Message != ref {
			t.Fatalf("message %q decoded as %q, encoding/json gives %q", s, back.Message, ref)
		}
	})
}

func BenchmarkEventAppendJSON(b *testing.B) {
	var ev schemas.Event
	fill(reflect.ValueOf(&ev).Elem(), 1)
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = ev.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkEventEncodingJSON(b *testing.B) {
	type plain schemas.Event // no MarshalJSON: the reflection encoder, for comparison
	var ev schemas.Event
	fill(reflect.ValueOf(&ev).Elem(), 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(plain(ev)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendTimeMatchesLayout(t *testing.T) {
	for _, tc := range []time.Time{
		time.Date(2026, 11, 26, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 1, 2, 3, 4_000_000, time.FixedZone("x", -7*3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(1_700_000_000, 123_456_789),
	} {
		ev := schemas.Event{Timestamp: tc}
		got := string(ev.AppendJSON(nil))
		want := `{"@timestamp":"` + tc.UTC().Format(schemas.TimeLayout) + `"`
		if !strings.HasPrefix(got, want) {
			t.Errorf("%v: got %s, want prefix %s", tc, got, want)
		}
	}
}
