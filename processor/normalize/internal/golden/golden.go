package golden

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Clock is the ingest time of every golden event; Observed the collector's
// read time of every golden record.
var (
	Clock    = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	Observed = time.Date(2026, 11, 26, 11, 59, 59, 500_000_000, time.UTC)
)

// A Case is one input file.
type Case struct {
	Name  string
	Input []byte
}

// Cases loads dir/*.input.json, sorted by name.
func Cases(tb testing.TB, dir string) []Case {
	tb.Helper()
	return CasesWith(tb, dir, ".input.json")
}

// CasesWith loads dir/*<suffix> (".input.log" for a text source), sorted by
// name; a case's name is its file name without the suffix.
func CasesWith(tb testing.TB, dir, suffix string) []Case {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden cases in %s (%v)", dir, err)
	}
	slices.Sort(files)
	out := make([]Case, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), suffix)
		out = append(out, Case{Name: name, Input: bytes.TrimRight(b, "\n")})
	}
	return out
}

// NewNormalizer builds a Normalizer for factories with a fixed clock.
func NewNormalizer(tb testing.TB, cfg normalize.Config, factories ...normalize.Factory) *normalize.Normalizer {
	tb.Helper()
	reg, err := normalize.NewRegistry(cfg, factories...)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := normalize.New(cfg, reg, normalize.WithClock(func() time.Time { return Clock }))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// Record wraps input as a record from a fixed collector.
func Record(source string, input []byte) *normalize.Record {
	return &normalize.Record{
		Source:    source,
		Data:      input,
		Subject:   "crowsnest.raw." + source + ".node-1",
		Collector: "node-1",
		Node:      "node-1",
		Observed:  Observed,
	}
}

// Render normalizes rec and returns the events as an indented JSON array;
// a rejected record or part appears as {"rejected": reason, "error": text}.
// It fails tb when an event's JSON is invalid or two of its slice fields
// share a backing array.
func Render(tb testing.TB, n *normalize.Normalizer, rec *normalize.Record) []byte {
	tb.Helper()
	var parts []json.RawMessage
	var ev schemas.Event
	reject := func(err error) {
		reason, _ := normalize.RejectReason(err)
		b, _ := json.Marshal(map[string]string{"rejected": string(reason), "error": err.Error()})
		parts = append(parts, b)
	}
	err := n.NormalizeEach(rec, &ev, func(ev *schemas.Event, err error) error {
		if err != nil {
			reject(err)
			return nil
		}
		out := ev.AppendJSON(nil)
		if !json.Valid(out) {
			tb.Errorf("invalid JSON: %s", out)
		}
		CheckNoAliasing(tb, ev)
		parts = append(parts, out)
		return nil
	})
	if err != nil {
		reject(err)
	}
	all, _ := json.Marshal(parts)
	var buf bytes.Buffer
	if err := json.Indent(&buf, all, "", "  "); err != nil {
		tb.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// Check compares got with the golden file, or rewrites it when update is set.
func Check(tb testing.TB, path string, got []byte, update bool) {
	tb.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		tb.Fatalf("%s missing: run go test -update", path)
	}
	if err != nil {
		tb.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs (go test -update rewrites it):\n%s", path, lineDiff(want, got))
	}
}

func lineDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}

// CheckNoAliasing fails tb when two slice fields of ev share a backing
// array: Reset reuses each field's array, so sharing would let one field's
// next event overwrite another's.
func CheckNoAliasing(tb testing.TB, ev *schemas.Event) {
	tb.Helper()
	type span struct {
		field      string
		start, end uintptr
	}
	var spans []span
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Slice:
			if v.Cap() == 0 {
				return
			}
			start := v.Pointer()
			spans = append(spans, span{path, start, start + uintptr(v.Cap())*v.Type().Elem().Size()})
		}
	}
	walk(reflect.ValueOf(ev).Elem(), "Event")
	for i, a := range spans {
		for _, b := range spans[i+1:] {
			if a.start < b.end && b.start < a.end {
				tb.Errorf("%s and %s share a backing array", a.field, b.field)
			}
		}
	}
}

// Bench measures the hot path on one record as processor/pipeline runs it:
// NormalizeEach into a reused Event, AppendJSON of each event into a reused
// buffer. It reports events/s (wall clock) and events/CPU-s (process CPU
// time, GC included: the per-core figure on a shared machine) alongside
// ns/op and allocs/op.
func Bench(b *testing.B, n *normalize.Normalizer, source string, input []byte) {
	b.Helper()
	rec := Record(source, input)
	var ev schemas.Event
	var buf []byte
	var failed error
	emit := func(ev *schemas.Event, err error) error {
		if err != nil {
			failed = err
			return err
		}
		buf = ev.AppendJSON(buf[:0])
		return nil
	}
	if err := n.NormalizeEach(rec, &ev, emit); err != nil || failed != nil {
		b.Fatalf("%s: %v %v", source, err, failed)
	}
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if err := n.NormalizeEach(rec, &ev, emit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/CPU-s")
	}
}

// Input returns the golden input testdata/<name>.input.json.
func Input(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".input.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.TrimRight(b, "\n")
}
