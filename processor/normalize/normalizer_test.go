package normalize_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

var (
	clock    = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	observed = time.Date(2026, 11, 26, 11, 59, 59, 0, time.UTC)
)

func newNormalizer(tb testing.TB, cfg normalize.Config) *normalize.Normalizer {
	tb.Helper()
	reg, err := sources.NewRegistry(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := normalize.New(cfg, reg, normalize.WithClock(func() time.Time { return clock }))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

const auditEvent = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"0b6a2f7e-4c1d-4e8a-9a55-7c2e1f3d9b10","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/payments/pods","verb":"list","user":{"username":"alice","groups":["dev"]},"sourceIPs":["10.0.0.1","10.0.0.1","192.0.2.1"],"objectRef":{"resource":"pods","namespace":"payments","apiVersion":"v1"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-11-20T09:14:03.120311Z","stageTimestamp":"2026-11-20T09:14:03.124907Z"}`

const falcoAlert = `{"output":"x","priority":"Warning","rule":"Read sensitive file untrusted","source":"syscall","time":"2026-11-20T10:00:00Z","output_fields":{"fd.name":"/etc/shadow","evt.type":"openat"}}`

func TestCommonFields(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	rec := &normalize.Record{
		Source: "k8s_audit", Data: []byte(auditEvent), ID: "collector-msg-id",
		Subject: "crowsnest.raw.k8s_audit.node-1", Collector: "node-1", Node: "node-1.example", Observed: observed,
	}
	var ev schemas.Event
	if err := n.Normalize(rec, &ev); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"event.id (natural, not the message id)", ev.Event.ID, "0b6a2f7e-4c1d-4e8a-9a55-7c2e1f3d9b10-ResponseComplete"},
		{"event.ingested", ev.Event.Ingested, clock},
		{"event.created", ev.Event.Created, observed},
		{"event.dataset", ev.Event.Dataset, "crowsnest.k8s_audit"},
		{"event.module", ev.Event.Module, "crowsnest"},
		{"event.kind", ev.Event.Kind, "event"},
		{"event.original", ev.Event.Original, auditEvent},
		{"crowsnest.schema_version", ev.Crowsnest.SchemaVersion, schemas.SchemaVersion},
		{"crowsnest.source", ev.Crowsnest.Source, "k8s_audit"},
		{"crowsnest.collector.id", ev.Crowsnest.Collector.ID, "node-1"},
		{"crowsnest.collector.node", ev.Crowsnest.Collector.Node, "node-1.example"},
		{"crowsnest.truncated", ev.Crowsnest.Truncated, false},
		{"ocsf.type_uid", ev.OCSF.TypeUID, int64(600302)},
		{"related.ip (de-duplicated, in order)", ev.Related.IP, []string{"10.0.0.1", "192.0.2.1"}},
		{"@timestamp", ev.Timestamp, time.Date(2026, 11, 20, 9, 14, 3, 124907000, time.UTC)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if rec.Text() != auditEvent {
		t.Errorf("the record's text cache leaked: %q", rec.Text())
	}
}

func TestIDFallbacks(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	noStage := strings.Replace(auditEvent, `"stage":"ResponseComplete",`, "", 1)
	hostileUUID := strings.Replace(falcoAlert, `"output":"x"`, `"uuid":"a\nb","output":"x"`, 1)
	longUUID := strings.Replace(falcoAlert, `"output":"x"`, `"uuid":"`+strings.Repeat("u", 300)+`","output":"x"`, 1)
	tests := []struct {
		name, source, data, msgID string
		want                      string // exact id, or a prefix ending in '-'
	}{
		{"no natural id: the collector's message id", "k8s_audit", noStage, "collector-msg-1", "collector-msg-1"},
		{"no natural id, unusable message id: content hash", "k8s_audit", noStage, "has space", "k8s_audit-"},
		{"no natural id, no message id: content hash", "falco", falcoAlert, "", "falco-"},
		{"natural id with a newline is not trusted", "falco", hostileUUID, "", "falco-"},
		{"natural id longer than 128 bytes is not trusted", "falco", longUUID, "", "falco-"},
	}
	for _, tt := range tests {
		var ev schemas.Event
		err := n.Normalize(&normalize.Record{Source: tt.source, Data: []byte(tt.data), ID: tt.msgID}, &ev)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		id := ev.Event.ID
		switch {
		case strings.HasSuffix(tt.want, "-"):
			if !strings.HasPrefix(id, tt.want) || len(id) != len(tt.want)+32 {
				t.Errorf("%s: id %q, want %s<32 hex>", tt.name, id, tt.want)
			}
		case id != tt.want:
			t.Errorf("%s: id %q, want %q", tt.name, id, tt.want)
		}
	}
	// The same bytes always give the same content id.
	var a, b schemas.Event
	_ = n.Normalize(&normalize.Record{Source: "falco", Data: []byte(falcoAlert)}, &a)
	_ = n.Normalize(&normalize.Record{Source: "falco", Data: []byte(falcoAlert)}, &b)
	if a.Event.ID != b.Event.ID {
		t.Errorf("content id not deterministic: %s vs %s", a.Event.ID, b.Event.ID)
	}
}

// TestHostileInput: every limit rejects with its stable reason, and wrong
// shapes are told apart per source.
func TestHostileInput(t *testing.T) {
	small := normalize.NewDefaultConfig()
	small.MaxRecordBytes = 4 * config.KiB
	small.MaxOriginalBytes = 1 * config.KiB
	small.MaxJSONBytes = 1 * config.KiB
	ns := newNormalizer(t, small)
	n := newNormalizer(t, normalize.NewDefaultConfig())
	tests := []struct {
		name   string
		n      *normalize.Normalizer
		source string
		data   []byte
		want   normalize.Reason
	}{
		{"oversized record", ns, "k8s_audit", []byte(`{"a":"` + strings.Repeat("x", 5000) + `"}`), normalize.ReasonTooLarge},
		{"depth bomb", n, "k8s_audit", []byte(strings.Repeat("[", 1<<20)), normalize.ReasonTooDeep},
		{"object depth bomb", n, "falco", []byte(strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)), normalize.ReasonTooDeep},
		{"not JSON", n, "k8s_audit", []byte("Nov 20 10:00:00 worker-1 kube-apiserver[1]: hello"), normalize.ReasonInvalidJSON},
		{"empty record", n, "falco", nil, normalize.ReasonInvalidJSON},
		{"truncated JSON", n, "k8s_audit", []byte(auditEvent[:len(auditEvent)/2]), normalize.ReasonInvalidJSON},
		{"two records on one line", n, "k8s_audit", []byte(auditEvent + auditEvent), normalize.ReasonInvalidJSON},
		{"raw NUL inside a string", n, "k8s_audit", []byte(strings.Replace(auditEvent, "alice", "ali\x00ce", 1)), normalize.ReasonInvalidJSON},
		{"NUL padding after the record", n, "k8s_audit", []byte(auditEvent + "\x00\x00\x00"), normalize.ReasonInvalidJSON},
		{"invalid UTF-8", n, "k8s_audit", []byte(strings.Replace(auditEvent, "alice", "ali\xffce", 1)), normalize.ReasonInvalidUTF8},
		{"overlong UTF-8 encoding of '/'", n, "falco", []byte(strings.Replace(falcoAlert, "/etc/shadow", "\xc0\xafetc/shadow", 1)), normalize.ReasonInvalidUTF8},
		{"unknown source", n, "syslog", []byte(`{}`), normalize.ReasonUnknownSource},
		{"Falco alert to k8s_audit", n, "k8s_audit", []byte(falcoAlert), normalize.NotSource("k8s_audit")},
		{"audit event to falco", n, "falco", []byte(auditEvent), normalize.NotSource("falco")},
		{"audit event to tetragon", n, "tetragon", []byte(auditEvent), normalize.NotSource("tetragon")},
		{"JSON array to k8s_audit", n, "k8s_audit", []byte(`[` + auditEvent + `]`), normalize.NotSource("k8s_audit")},
		{"JSON string to tetragon", n, "tetragon", []byte(`"process_exec"`), normalize.NotSource("tetragon")},
		{"EventList through Normalize", n, "k8s_audit", []byte(`{"kind":"EventList","items":[` + auditEvent + `,` + auditEvent + `]}`), normalize.ReasonMultipleRecords},
		{"AKS log that is a depth bomb", n, "k8s_audit", []byte(`{"properties":{"log":"` + strings.Repeat("[", 200) + `"}}`), normalize.ReasonTooDeep},
		{"AKS log that is not JSON", n, "k8s_audit", []byte(`{"properties":{"log":"I0101 00:00:00 not json"}}`), normalize.ReasonInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev schemas.Event
			err := tt.n.Normalize(&normalize.Record{Source: tt.source, Data: tt.data}, &ev)
			got, ok := normalize.RejectReason(err)
			if !ok || got != tt.want {
				t.Errorf("got %v (reason %q), want reason %q", err, got, tt.want)
			}
		})
	}
}

func TestInvalidUTF8Replace(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.InvalidUTF8 = normalize.UTF8Replace
	n := newNormalizer(t, cfg)
	data := []byte(strings.Replace(auditEvent, "alice", "ali\xff\xfece", 1))
	var ev schemas.Event
	if err := n.Normalize(&normalize.Record{Source: "k8s_audit", Data: data}, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.User.Name != "ali\uFFFDce" {
		t.Errorf("user.name %q, want one U+FFFD for the invalid run", ev.User.Name)
	}
	if !utf8.ValidString(ev.Event.Original) || !strings.Contains(ev.Event.Original, "ali\uFFFDce") {
		t.Errorf("event.original %q", ev.Event.Original)
	}
	if out := ev.AppendJSON(nil); !json.Valid(out) || !utf8.Valid(out) {
		t.Errorf("invalid output %q", out)
	}
}

func TestOriginalCap(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.MaxOriginalBytes = 101
	n := newNormalizer(t, cfg)
	// "é" is two bytes; place one across the cap so the cut must back off.
	data := strings.Replace(auditEvent, `"level":"Metadata"`, `"level":"Metadata","x":"`+strings.Repeat("é", 40)+`"`, 1)
	var ev schemas.Event
	if err := n.Normalize(&normalize.Record{Source: "k8s_audit", Data: []byte(data)}, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Event.Original) > 101 || len(ev.Event.Original) < 100 || !utf8.ValidString(ev.Event.Original) || !strings.HasPrefix(data, ev.Event.Original) {
		t.Errorf("event.original %d bytes %q", len(ev.Event.Original), ev.Event.Original)
	}
	if !ev.Crowsnest.Truncated {
		t.Error("crowsnest.truncated not set")
	}

	cfg.KeepOriginal = false
	n = newNormalizer(t, cfg)
	if err := n.Normalize(&normalize.Record{Source: "k8s_audit", Data: []byte(auditEvent)}, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Event.Original != "" || ev.Crowsnest.Truncated {
		t.Errorf("keep_original false: original %q truncated %v", ev.Event.Original, ev.Crowsnest.Truncated)
	}
}

// Test10kAnnotations: a record with 10,000 distinct annotation keys keeps
// max_map_entries of them, marks the event truncated, and stays fast.
func Test10kAnnotations(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"a.k8s.io/0":"v"`)
	for i := 1; i < 10_000; i++ {
		fmt.Fprintf(&b, `,"a.k8s.io/%d":"v%d"`, i, i)
	}
	b.WriteString("}")
	data := strings.Replace(auditEvent, `"responseStatus"`, `"annotations":`+b.String()+`,"responseStatus"`, 1)
	n := newNormalizer(t, normalize.NewDefaultConfig())
	var ev schemas.Event
	start := time.Now()
	if err := n.Normalize(&normalize.Record{Source: "k8s_audit", Data: []byte(data)}, &ev); err != nil {
		t.Fatal(err)
	}
	if got := len(ev.Kubernetes.Audit.Annotations); got != 64 {
		t.Errorf("%d annotations kept, want 64", got)
	}
	if !ev.Crowsnest.Truncated {
		t.Error("crowsnest.truncated not set")
	}
	for k := range ev.Kubernetes.Audit.Annotations {
		if strings.Contains(k, ".") {
			t.Errorf("annotation key %q keeps a '.'", k)
		}
	}
	if out := ev.AppendJSON(nil); !json.Valid(out) || len(out) > 32*1024 {
		t.Errorf("output %d bytes, valid %v", len(out), json.Valid(out))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// TestKeptObjectTooLarge: a requestObject beyond max_json_bytes is dropped
// whole (the document stays valid JSON) and the event marked truncated; the
// pod spec is still flattened from the record.
func TestKeptObjectTooLarge(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.MaxJSONBytes = 200
	n := newNormalizer(t, cfg)
	pod := `{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","annotations":{"big":"` + strings.Repeat("x", 500) + `"}},"spec":{"hostPID":true,"containers":[{"name":"c","image":"nginx","securityContext":{"privileged":true}}]}}`
	data := strings.Replace(auditEvent, `"verb":"list"`, `"verb":"create","requestObject":`+pod, 1)
	var ev schemas.Event
	if err := n.Normalize(&normalize.Record{Source: "k8s_audit", Data: []byte(data)}, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Kubernetes.Audit.RequestObject) != 0 || !ev.Crowsnest.Truncated {
		t.Errorf("requestObject %d bytes, truncated %v", len(ev.Kubernetes.Audit.RequestObject), ev.Crowsnest.Truncated)
	}
	ps := ev.Kubernetes.PodSpec
	if ps.Privileged == nil || !*ps.Privileged || ps.HostPID == nil || !*ps.HostPID {
		t.Errorf("pod spec not flattened: %+v", ps)
	}
	if out := ev.AppendJSON(nil); !json.Valid(out) {
		t.Errorf("invalid JSON: %s", out)
	}
}

// textMapper accepts any text: it stands for a FormatText source (auditd).
type textMapper struct{}

func (textMapper) Map(rec *normalize.Record, ev *schemas.Event) error {
	ev.Message = rec.Text()
	return nil
}

// TestTextFormat: a FormatText source's records reach the mapper without the
// JSON checks, and still pass the size and UTF-8 ones; JSON sources keep
// rejecting text.
func TestTextFormat(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.MaxRecordBytes = 64
	cfg.MaxOriginalBytes = 64
	cfg.MaxJSONBytes = 64
	reg, err := normalize.NewRegistry(cfg,
		normalize.Factory{Source: "text", Format: normalize.FormatText, New: func(normalize.Config) (normalize.Mapper, error) { return textMapper{}, nil }},
		normalize.Factory{Source: "json", New: func(normalize.Config) (normalize.Mapper, error) { return textMapper{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	n, err := normalize.New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	const line = "type=EOE msg=audit(1700000000.100:100): "
	for _, c := range []struct {
		source, data string
		want         normalize.Reason
	}{
		{"text", line, ""},
		{"json", line, normalize.ReasonInvalidJSON},
		{"text", strings.Repeat("x", 65), normalize.ReasonTooLarge},
		{"text", "bad \xff byte", normalize.ReasonInvalidUTF8},
	} {
		var ev schemas.Event
		err := n.Normalize(&normalize.Record{Source: c.source, Data: []byte(c.data)}, &ev)
		got, _ := normalize.RejectReason(err)
		if got != c.want {
			t.Errorf("%s %q: reason %q (%v), want %q", c.source, c.data, got, err, c.want)
		}
		if err == nil && ev.Message != c.data {
			t.Errorf("%s %q: mapper saw %q", c.source, c.data, ev.Message)
		}
	}
}

type fakeBrokenMapper struct{}

func (fakeBrokenMapper) Map(*normalize.Record, *schemas.Event) error { return errors.New("mapper bug") }

func TestMapperErrorIsAlwaysAReject(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	reg, err := normalize.NewRegistry(cfg, normalize.Factory{Source: "broken", New: func(normalize.Config) (normalize.Mapper, error) { return fakeBrokenMapper{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	n, err := normalize.New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	var ev schemas.Event
	err = n.Normalize(&normalize.Record{Source: "broken", Data: []byte(`{}`)}, &ev)
	if r, _ := normalize.RejectReason(err); r != normalize.ReasonMappingFailed || !strings.Contains(err.Error(), "mapper bug") {
		t.Errorf("got %v", err)
	}
}

func TestNormalizeEachBatch(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	second := strings.Replace(auditEvent, "0b6a2f7e", "1b6a2f7e", 1)
	data := `{"records":[{"properties":{"log":` + quote(auditEvent) + `}},{"properties":{"log":"{}"}},{"properties":{"log":` + quote(second) + `}}]}`
	var ids, errs []string
	var ev schemas.Event
	err := n.NormalizeEach(&normalize.Record{Source: "k8s_audit", Data: []byte(data), ID: "batch-id"}, &ev, func(ev *schemas.Event, err error) error {
		if err != nil {
			errs = append(errs, err.Error())
			return nil
		}
		ids = append(ids, ev.Event.ID)
		if ev.Event.Original == data {
			t.Error("a part's event.original is the whole batch")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0b6a2f7e-4c1d-4e8a-9a55-7c2e1f3d9b10-ResponseComplete", "1b6a2f7e-4c1d-4e8a-9a55-7c2e1f3d9b10-ResponseComplete"}
	if !slices.Equal(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "record 2 of the batch: not_k8s_audit") {
		t.Errorf("part errors %v", errs)
	}
	stop := errors.New("stop")
	calls := 0
	err = n.NormalizeEach(&normalize.Record{Source: "k8s_audit", Data: []byte(data)}, &ev, func(*schemas.Event, error) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("emit's error must stop the batch: %v after %d calls", err, calls)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestResetCoversEverySlice fills every field of an Event, resets it, and
// checks it is empty again — so a field added to fields.yml cannot leak from
// one record into the next.
func TestResetCoversEverySlice(t *testing.T) {
	var ev schemas.Event
	fill(reflect.ValueOf(&ev).Elem())
	normalize.Reset(&ev)
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				if !v.Interface().(time.Time).IsZero() {
					t.Errorf("%s not reset", path)
				}
				return
			}
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Slice, reflect.Map:
			if v.Len() != 0 {
				t.Errorf("%s not reset", path)
			}
		default:
			if !v.IsZero() {
				t.Errorf("%s not reset", path)
			}
		}
	}
	walk(reflect.ValueOf(ev), "Event")
	if cap(ev.Event.Category) == 0 || cap(ev.Kubernetes.Audit.RequestObject) == 0 || ev.Falco.OutputFields == nil {
		t.Error("Reset dropped the backing arrays it should keep")
	}
}

func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(clock))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i))
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 4)
		for i := 0; i < 2; i++ {
			fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf("v"))
		v.Set(m)
	}
}

// goldenInputs returns every mapper's golden inputs.
func goldenInputs(tb testing.TB) []*normalize.Record {
	tb.Helper()
	var out []*normalize.Record
	for _, src := range []struct{ source, dir string }{{"k8s_audit", "k8saudit"}, {"falco", "falco"}, {"tetragon", "tetragon"}, {"docker", "docker"}, {"auditd", "auditd"}, {"procwatch", "procwatch"}} {
		files, _ := filepath.Glob(filepath.Join(src.dir, "testdata", "*.input.json"))
		more, _ := filepath.Glob(filepath.Join(src.dir, "testdata", "*.input.log")) // text sources
		files = append(files, more...)
		if len(files) == 0 {
			tb.Fatalf("no inputs in %s", src.dir)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, &normalize.Record{Source: src.source, Data: bytes.TrimSpace(b), Observed: observed, Collector: "c"})
		}
	}
	return out
}

// TestEventReuse: normalizing record B into an Event that held record A
// gives byte for byte the document a fresh Event gives — for every pair of
// consecutive golden inputs of every source.
func TestEventReuse(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	recs := goldenInputs(t)
	var reused schemas.Event
	for i, rec := range recs {
		var fresh schemas.Event
		errFresh := n.NormalizeEach(rec, &fresh, func(*schemas.Event, error) error { return nil })
		want := render(n, rec, &fresh)
		got := render(n, rec, &reused)
		if errFresh != nil || !bytes.Equal(got, want) {
			t.Errorf("record %d (%s): reused event differs from a fresh one:\n got %s\nwant %s", i, rec.Source, got, want)
		}
	}
}

// TestOwnedRecord: a record whose Data is Owned is read in place (no copy:
// event.original aliases Data), and every golden record, every source
// (text formats, batches, rejects) normalizes byte for byte as from a copy.
func TestOwnedRecord(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	for i, rec := range goldenInputs(t) {
		want := render(n, rec, new(schemas.Event))
		owned := *rec
		owned.Data, owned.Owned = bytes.Clone(rec.Data), true
		if got := render(n, &owned, new(schemas.Event)); !bytes.Equal(got, want) {
			t.Errorf("record %d (%s): owned record differs:\n got %s\nwant %s", i, rec.Source, got, want)
		}
	}
	data := []byte(auditEvent)
	var ev schemas.Event
	if err := n.Normalize(&normalize.Record{Source: "k8s_audit", Data: data, Owned: true}, &ev); err != nil {
		t.Fatal(err)
	}
	if o := ev.Event.Original; o != auditEvent || unsafe.StringData(o) != &data[0] {
		t.Errorf("event.original of an owned record is a copy, want Data read in place")
	}
	if err := n.Normalize(&normalize.Record{Source: "k8s_audit", Data: data}, &ev); err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(ev.Event.Original) == &data[0] {
		t.Errorf("event.original aliases Data of a record not Owned")
	}
	// Invalid UTF-8 replaced: the repaired copy is read, never Data.
	cfg := normalize.NewDefaultConfig()
	cfg.InvalidUTF8 = normalize.UTF8Replace
	bad := []byte(strings.Replace(auditEvent, "alice", "ali\xffce", 1))
	if err := newNormalizer(t, cfg).Normalize(&normalize.Record{Source: "k8s_audit", Data: bad, Owned: true}, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.User.Name != "ali\uFFFDce" || !utf8.ValidString(ev.Event.Original) {
		t.Errorf("repaired owned record: user.name %q", ev.User.Name)
	}
}

func render(n *normalize.Normalizer, rec *normalize.Record, ev *schemas.Event) []byte {
	var out []byte
	_ = n.NormalizeEach(rec, ev, func(ev *schemas.Event, err error) error {
		if err != nil {
			out = append(out, err.Error()...)
		} else {
			out = ev.AppendJSON(out)
		}
		out = append(out, '\n')
		return nil
	})
	return out
}

// TestConcurrentUse runs one Normalizer from many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	recs := goldenInputs(t)
	want := make([][]byte, len(recs))
	for i, rec := range recs {
		var ev schemas.Event
		want[i] = render(n, rec, &ev)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			var ev schemas.Event
			for round := 0; round < 20; round++ {
				for i := range recs {
					rec := *recs[i] // a Record is per goroutine; the Normalizer is shared
					if got := render(n, &rec, &ev); !bytes.Equal(got, want[i]) {
						t.Errorf("record %d differs under concurrency", i)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// FuzzNormalizer drives the limits with tight settings: whatever the bytes
// and the source, no panic; every error is a RejectError; every event
// encodes to valid UTF-8 JSON with a header-safe id, an original within its
// cap, and bounded maps.
func FuzzNormalizer(f *testing.F) {
	for i, rec := range goldenInputs(f) {
		f.Add(rec.Data, uint8(i))
	}
	f.Add([]byte(strings.Repeat("[", 100)), uint8(0))
	f.Add([]byte("{\"a\":\"\xff\"}"), uint8(1))
	cfg := normalize.NewDefaultConfig()
	cfg.MaxRecordBytes = 8 * config.KiB
	cfg.MaxDepth = 8
	cfg.MaxOriginalBytes = 256
	cfg.MaxMapEntries = 4
	cfg.MaxJSONBytes = 128
	cfg.InvalidUTF8 = normalize.UTF8Replace
	cfg.TrustedRegistries = normalize.TrustedRegistries{"docker.io/library"}
	n := newNormalizer(f, cfg)
	srcs := []string{"k8s_audit", "falco", "tetragon", "docker", "auditd", "procwatch"}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		var ev schemas.Event
		rec := &normalize.Record{Source: srcs[int(which)%len(srcs)], Data: data, ID: "fuzz-1"}
		err := n.NormalizeEach(rec, &ev, func(ev *schemas.Event, err error) error {
			if err != nil {
				if _, ok := normalize.RejectReason(err); !ok {
					t.Fatalf("part error is not a RejectError: %v", err)
				}
				return nil
			}
			out := ev.AppendJSON(nil)
			if !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("invalid output: %q", out)
			}
			if len(ev.Event.Original) > 256 || !utf8.ValidString(ev.Event.Original) {
				t.Fatalf("event.original %d bytes", len(ev.Event.Original))
			}
			if len(ev.Event.ID) == 0 || len(ev.Event.ID) > 128 || strings.ContainsAny(ev.Event.ID, " \r\n\t") {
				t.Fatalf("bad id %q", ev.Event.ID)
			}
			if len(ev.Kubernetes.Audit.Annotations) > 4 || len(ev.Falco.OutputFields) > 4 || len(ev.Kubernetes.Audit.RequestObject) > 128 ||
				len(ev.Container.Labels) > 4 || len(ev.Process.Args) > 4 {
				t.Fatal("a bound was exceeded")
			}
			return nil
		})
		if err != nil {
			if _, ok := normalize.RejectReason(err); !ok {
				t.Fatalf("error is not a RejectError: %v", err)
			}
		}
	})
}

// ipFields are the fields of type ip in the registry; the Normalizer drops
// malformed values from each, since one would make Elasticsearch reject the
// whole document.
var ipFields = []string{"destination.ip", "host.ip", "kubernetes.audit.sourceIPs", "related.ip", "source.ip"}

func TestIPFieldsListMatchesRegistry(t *testing.T) {
	var got []string
	for _, f := range schemas.Fields() {
		if f.Type == "ip" {
			got = append(got, f.Name)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, ipFields) {
		t.Errorf("ip fields in fields.yml %v; the Normalizer sanitizes %v: update finish()", got, ipFields)
	}
}

func TestMalformedIPsDropped(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	data := strings.Replace(auditEvent, `"sourceIPs":["10.0.0.1","10.0.0.1","192.0.2.1"]`, `"sourceIPs":["not-an-ip","fe80::1%eth0","2001:db8::7"]`, 1)
	var ev schemas.Event
	if err := n.Normalize(&normalize.Record{Source: "k8s_audit", Data: []byte(data)}, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Source.IP != "" || !slices.Equal(ev.Kubernetes.Audit.SourceIPs, []string{"2001:db8::7"}) || !slices.Equal(ev.Related.IP, []string{"2001:db8::7"}) {
		t.Errorf("source.ip %q sourceIPs %v related.ip %v", ev.Source.IP, ev.Kubernetes.Audit.SourceIPs, ev.Related.IP)
	}
}
