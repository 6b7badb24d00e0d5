package procwatch_test

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/procwatch"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func newNormalizer(tb testing.TB) *normalize.Normalizer {
	tb.Helper()
	return golden.NewNormalizer(tb, normalize.NewDefaultConfig(), procwatch.NewFactory())
}

// TestGolden maps every testdata/*.input.json (the records of FORMAT.md and
// variations) and compares the events with testdata/*.golden.json.
func TestGolden(t *testing.T) {
	n := newNormalizer(t)
	for _, c := range golden.Cases(t, "testdata") {
		t.Run(c.Name, func(t *testing.T) {
			got := golden.Render(t, n, golden.Record(procwatch.Source, c.Input))
			golden.Check(t, filepath.Join("testdata", c.Name+".golden.json"), got, *update)
		})
	}
}

// FuzzProcwatch: no input may panic; whatever maps must encode to valid
// JSON with a header-safe id, whatever does not must be a RejectError.
func FuzzProcwatch(f *testing.F) {
	for _, c := range golden.Cases(f, "testdata") {
		f.Add(c.Input)
	}
	n := newNormalizer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev schemas.Event
		err := n.Normalize(golden.Record(procwatch.Source, data), &ev)
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

// TestProcessJoins: the exec, the exit and a connection of one process
// share process.entity_id; another process (or the same pid after a
// reboot) does not.
func TestProcessJoins(t *testing.T) {
	n := newNormalizer(t)
	entity := func(name string) string {
		t.Helper()
		var ev schemas.Event
		if err := n.Normalize(golden.Record(procwatch.Source, golden.Input(t, name)), &ev); err != nil {
			t.Fatal(err)
		}
		return ev.Process.EntityID
	}
	exec, exit, conn := entity("exec_curl_metadata"), entity("exit_curl"), entity("connection_outbound_metadata")
	if exec == "" || exec != exit || exec != conn {
		t.Errorf("one process, entity ids %q %q %q", exec, exit, conn)
	}
	if other := entity("exec_seen_at_startup"); other == exec {
		t.Error("two processes share an entity id")
	}
}

// TestCollectorIDIsEventID: the collector's message id (derived from the
// event's identity) becomes event.id.
func TestCollectorIDIsEventID(t *testing.T) {
	n := newNormalizer(t)
	rec := golden.Record(procwatch.Source, golden.Input(t, "exec_curl_metadata"))
	rec.ID = "procwatch-0123456789abcdef0123456789abcdef"
	var ev schemas.Event
	if err := n.Normalize(rec, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Event.ID != rec.ID {
		t.Errorf("event.id %q, want the collector's %q", ev.Event.ID, rec.ID)
	}
}
