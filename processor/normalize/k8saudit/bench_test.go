package k8saudit_test

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
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
