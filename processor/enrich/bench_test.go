package enrich_test

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/enrich"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// BenchmarkEnrich: the cost per event on the pipeline's hot path — an event
// that teaches what the cache already knows (a Tetragon exec with its pod),
// and one that gains its pod and image (a Falco alert with a short id).
func BenchmarkEnrich(b *testing.B) {
	n := normalizer(b)
	e, _ := enrich.New(enrich.NewDefaultConfig())
	teach := event(b, n, "tetragon", tetragonWithPod)
	e.Enrich(teach)
	gain := event(b, n, "falco", falcoBare)
	for _, c := range []struct {
		name string
		ev   *schemas.Event
	}{{"learn_known_container", teach}, {"fill_short_id", gain}} {
		b.Run(c.name, func(b *testing.B) {
			var ev schemas.Event
			b.ReportAllocs()
			for b.Loop() {
				ev = *c.ev // a shallow copy: the fill writes strings and reuses the slices
				ev.Orchestrator = c.ev.Orchestrator
				e.Enrich(&ev)
			}
		})
	}
}
