package tetragon_test

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/tetragon"
)

// BenchmarkTetragon: full mapping plus the AppendJSON encode of the event
// types that dominate a Tetragon export.
func BenchmarkTetragon(b *testing.B) {
	n := newNormalizer(b, normalize.NewDefaultConfig())
	for _, name := range []string{"exec_shell_in_pod", "kprobe_tcp_connect", "kprobe_file_permission_write"} {
		b.Run(name, func(b *testing.B) {
			golden.Bench(b, n, tetragon.Source, golden.Input(b, name))
		})
	}
}
