package falco_test

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/falco"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
)

// BenchmarkFalco: full mapping plus the AppendJSON encode of typical alerts
// (falcosidekick body with ~30 output fields; json_output with ~15).
func BenchmarkFalco(b *testing.B) {
	n := newNormalizer(b, normalize.NewDefaultConfig())
	for _, name := range []string{"falcosidekick_read_sensitive_file", "json_output_terminal_shell_in_container"} {
		b.Run(name, func(b *testing.B) {
			golden.Bench(b, n, falco.Source, golden.Input(b, name))
		})
	}
}
