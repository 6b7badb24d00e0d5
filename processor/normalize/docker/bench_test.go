package docker_test

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/docker"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
)

// BenchmarkDocker: full mapping plus the AppendJSON encode of a container
// lifecycle event with Kubernetes labels and of an exec_start.
func BenchmarkDocker(b *testing.B) {
	n := newNormalizer(b, normalize.NewDefaultConfig())
	for _, name := range []string{"kubernetes_container_start", "exec_start_shell", "image_pull_digest"} {
		b.Run(name, func(b *testing.B) {
			golden.Bench(b, n, docker.Source, golden.Input(b, name))
		})
	}
}
