package k8saudit_test

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func newNormalizer(tb testing.TB, cfg normalize.Config) *normalize.Normalizer {
	tb.Helper()
	return golden.NewNormalizer(tb, cfg, k8saudit.NewFactory())
}

// TestGolden maps every testdata/*.input.json and compares the events with
// testdata/*.golden.json. The same cases seed FuzzK8sAudit and feed the
// benchmarks.
func TestGolden(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.TrustedRegistries = normalize.TrustedRegistries{"registry.k8s.io", "quay.io/prometheus", "docker.io/library"}
	n := newNormalizer(t, cfg)
	for _, c := range golden.Cases(t, "testdata") {
		t.Run(c.Name, func(t *testing.T) {
			got := golden.Render(t, n, golden.Record(k8saudit.Source, c.Input))
			golden.Check(t, filepath.Join("testdata", c.Name+".golden.json"), got, *update)
		})
	}
}

// FuzzK8sAudit: no input may panic; whatever maps must encode to valid JSON
// with a header-safe id, whatever does not must be a RejectError.
func FuzzK8sAudit(f *testing.F) {
	for _, c := range golden.Cases(f, "testdata") {
		f.Add(c.Input)
	}
	n := newNormalizer(f, normalize.NewDefaultConfig())
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev schemas.Event
		err := n.NormalizeEach(golden.Record(k8saudit.Source, data), &ev, func(ev *schemas.Event, err error) error {
			if err != nil {
				if _, ok := normalize.RejectReason(err); !ok {
					t.Fatalf("part error is not a RejectError: %v", err)
				}
				return nil
			}
			checkEvent(t, ev)
			return nil
		})
		if err != nil {
			if _, ok := normalize.RejectReason(err); !ok {
				t.Fatalf("error is not a RejectError: %v", err)
			}
		}
	})
}

func checkEvent(t *testing.T, ev *schemas.Event) {
	t.Helper()
	out := ev.AppendJSON(nil)
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	if ev.Event.ID == "" || len(ev.Event.ID) > 128 {
		t.Fatalf("bad event.id %q", ev.Event.ID)
	}
	for i := 0; i < len(ev.Event.ID); i++ {
		if c := ev.Event.ID[i]; c <= ' ' || c > '~' {
			t.Fatalf("event.id %q not header-safe", ev.Event.ID)
		}
	}
	golden.CheckNoAliasing(t, ev)
}
