package tetragon_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/corpus"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/tetragon"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func newNormalizer(tb testing.TB, cfg normalize.Config) *normalize.Normalizer {
	tb.Helper()
	return golden.NewNormalizer(tb, cfg, tetragon.NewFactory())
}

// TestGolden maps every testdata/*.input.json and compares the events with
// testdata/*.golden.json. The same cases seed FuzzTetragon and feed the
// benchmarks.
func TestGolden(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.TrustedRegistries = normalize.TrustedRegistries{"registry.example.com/shop"}
	n := newNormalizer(t, cfg)
	for _, c := range golden.Cases(t, "testdata") {
		t.Run(c.Name, func(t *testing.T) {
			got := golden.Render(t, n, golden.Record(tetragon.Source, c.Input))
			golden.Check(t, filepath.Join("testdata", c.Name+".golden.json"), got, *update)
		})
	}
}

// FuzzTetragon: no input may panic; whatever maps must encode to valid JSON
// with a header-safe id, whatever does not must be a RejectError.
func FuzzTetragon(f *testing.F) {
	for _, c := range golden.Cases(f, "testdata") {
		f.Add(c.Input)
	}
	n := newNormalizer(f, normalize.NewDefaultConfig())
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev schemas.Event
		err := n.Normalize(golden.Record(tetragon.Source, data), &ev)
		if err != nil {
			if _, ok := normalize.RejectReason(err); !ok {
				t.Fatalf("error is not a RejectError: %v", err)
			}
			return
		}
		if out := ev.AppendJSON(nil); !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		if len(ev.Event.ID) == 0 || len(ev.Event.ID) > 128 {
			t.Fatalf("bad event.id %q", ev.Event.ID)
		}
		golden.CheckNoAliasing(t, &ev)
	})
}

// TestCorpus maps every Tetragon event of the cilium-tetragon corpus — a real
// GKE cluster's JSONL, the current docs' examples and a 2022 report's
// pretty-printed events in the older format — and checks none is rejected
// and each gets a class, a time and a process where it has one.
func TestCorpus(t *testing.T) {
	dir := corpus.Path(t, "cilium-tetragon")
	var records [][]byte
	for _, f := range []string{"testdata/events.json", "docs-extracted/events_from_docs.extracted.jsonl"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				records = append(records, line)
			}
		}
	}
	err := filepath.WalkDir(filepath.Join(dir, "docs"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		b, err := os.ReadFile(path)
		records = append(records, b) // one pretty-printed event per file
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 62 {
		t.Errorf("found %d corpus events, SOURCES.md promises 62", len(records))
	}
	n := newNormalizer(t, normalize.NewDefaultConfig())
	for i, rec := range records {
		var ev schemas.Event
		if err := n.Normalize(&normalize.Record{Source: tetragon.Source, Data: rec}, &ev); err != nil {
			t.Errorf("event %d rejected: %v\n%.300s", i, err, rec)
			continue
		}
		if ev.Event.Action == "" || ev.Timestamp.IsZero() || len(ev.Event.Category) == 0 {
			t.Errorf("event %d: action %q, @timestamp %v, category %v", i, ev.Event.Action, ev.Timestamp, ev.Event.Category)
		}
		if bytes.Contains(rec, []byte(`"exec_id"`)) && ev.Process.EntityID == "" {
			t.Errorf("event %d: no process.entity_id", i)
		}
		if !bytes.HasPrefix([]byte(ev.Event.ID), []byte("tetragon-")) {
			t.Errorf("event %d: id %q is not derived from the event", i, ev.Event.ID)
		}
		if out := ev.AppendJSON(nil); !json.Valid(out) {
			t.Errorf("event %d: invalid JSON", i)
		}
	}
}
