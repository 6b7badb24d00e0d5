package procwatch_test

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/procwatch"
)

// BenchmarkProcwatch: full mapping plus the AppendJSON encode of an exec
// and an outbound connection.
func BenchmarkProcwatch(b *testing.B) {
	n := newNormalizer(b)
	for _, name := range []string{"exec_curl_metadata", "connection_outbound_metadata"} {
		b.Run(name, func(b *testing.B) {
			golden.Bench(b, n, procwatch.Source, golden.Input(b, name))
		})
	}
}
