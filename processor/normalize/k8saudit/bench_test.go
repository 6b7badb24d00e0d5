package k8saudit_test

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// BenchmarkK8sAudit: full mapping plus the AppendJSON encode, per record
// shape. native_get_pod_metadata is the ~1 KB Metadata-level event that
// dominates real audit logs; the RequestResponse pod create (~4 KB) carries
// request and response objects and a pod spec to flatten.
func BenchmarkK8sAudit(b *testing.B) {
	n := newNormalizer(b, normalize.NewDefaultConfig())
	for _, name := range []string{
		"native_get_pod_metadata",
		"native_create_privileged_pod_requestresponse",
		"gke_create_pod",
		"aks_diagnostic_log_string",
	} {
		b.Run(name, func(b *testing.B) {
			golden.Bench(b, n, k8saudit.Source, golden.Input(b, name))
		})
	}
}

// BenchmarkK8sAuditParts splits the 1 KB event's cost, in the same run as
// BenchmarkK8sAudit so that machine-to-machine drift cancels: the
// calibration is PEERS.md's yardstick (one gjson ForEach over the top-level
// keys, ~474k/s per core where it was measured), encode-only is
// schemas.Event.AppendJSON of the mapped event, normalize-only the rest.
func BenchmarkK8sAuditParts(b *testing.B) {
	input := golden.Input(b, "native_get_pod_metadata")
	n := newNormalizer(b, normalize.NewDefaultConfig())
	b.Run("calibration-gjson-foreach", func(b *testing.B) {
		s := string(input)
		keys := 0
		for b.Loop() {
			gjson.Parse(s).ForEach(func(_, _ gjson.Result) bool { keys++; return true })
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	rec := golden.Record(k8saudit.Source, input)
	var ev schemas.Event
	b.Run("normalize-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := n.Normalize(rec, &ev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("encode-only", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = ev.AppendJSON(buf[:0])
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
