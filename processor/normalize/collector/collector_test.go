package collector_test

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/collector"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func newNormalizer(tb testing.TB) *normalize.Normalizer {
	tb.Helper()
	return golden.NewNormalizer(tb, normalize.NewDefaultConfig(), collector.NewFactory())
}

// TestGolden maps every testdata/*.input.json (gap records as
// collectors/spool writes them, and malformed ones) and compares the events
// with testdata/*.golden.json.
func TestGolden(t *testing.T) {
	n := newNormalizer(t)
	for _, c := range golden.Cases(t, "testdata") {
		t.Run(c.Name, func(t *testing.T) {
			got := golden.Render(t, n, golden.Record(collector.Source, c.Input))
			golden.Check(t, filepath.Join("testdata", c.Name+".golden.json"), got, *update)
		})
	}
}

// TestGapFields pins what a SIEM query about loss reads.
func TestGapFields(t *testing.T) {
	n := newNormalizer(t)
	var ev schemas.Event
	in := golden.Input(t, "spool_full")
	if err := n.Normalize(golden.Record(collector.Source, in), &ev); err != nil {
		t.Fatal(err)
	}
	g := ev.Crowsnest.Gap
	if ev.Event.Kind != "metric" || ev.Event.Action != "gap" || g.Source != "k8s_audit" || g.Records != 25 || g.Bytes != 7075 ||
		ev.Event.ID != "gap-spool_full-1700000000000000000-00112233aabbccdd" || ev.Host.Name != "node-1" || ev.Crowsnest.Collector.ID != "node-1" ||
		ev.Event.Start.IsZero() || !ev.Timestamp.Equal(ev.Event.End) {
		t.Errorf("gap event: %s", ev.AppendJSON(nil))
	}
}

// FuzzCollector: no input may panic; whatever maps must encode to valid
// JSON with a header-safe id, whatever does not must be a RejectError.
func FuzzCollector(f *testing.F) {
	for _, c := range golden.Cases(f, "testdata") {
		f.Add(c.Input)
	}
	n := newNormalizer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev schemas.Event
		err := n.Normalize(golden.Record(collector.Source, data), &ev)
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
		if ev.Crowsnest.Gap.Records < 0 || ev.Crowsnest.Gap.Bytes < 0 {
			t.Fatalf("negative gap counts: %+v", ev.Crowsnest.Gap)
		}
		golden.CheckNoAliasing(t, &ev)
	})
}
