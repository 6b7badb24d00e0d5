package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Binaries are the paths of the programs a scenario runs.
type Binaries struct {
	Crowsnest  string // the all-in-one (crowsnest run)
	Collector  string // crowsnest-collector
	Processor  string // crowsnest-processor
	Sink       string // crowsnest-sink
	NATSServer string // a standalone nats-server, as deployments run it
}

// binaryPackages are the main packages built from the source tree, relative
// to its root, as `make build` builds them.
var binaryPackages = []struct {
	name, pkg string
	field     func(*Binaries) *string
}{
	{"crowsnest", "./cli", func(b *Binaries) *string { return &b.Crowsnest }},
	{"crowsnest-collector", "./collectors/cmd/crowsnest-collector", func(b *Binaries) *string { return &b.Collector }},
	{"crowsnest-processor", "./processor/cmd/crowsnest-processor", func(b *Binaries) *string { return &b.Processor }},
	{"crowsnest-sink", "./sinks/cmd/crowsnest-sink", func(b *Binaries) *string { return &b.Sink }},
}

// natsServerModule is built from the e2e module, which requires it as a tool
// at the version the bus module tests against.
const natsServerModule = "github.com/nats-io/nats-server/v2"

// Build compiles every binary from the workspace rooted at src into out and
// returns their paths. It always rebuilds (the Go build cache makes an
// unchanged tree cheap), so a scenario never runs stale binaries while
// others change the code.
func Build(ctx context.Context, src, out string) (Binaries, error) {
	var b Binaries
	if err := os.MkdirAll(out, 0o750); err != nil {
		return b, fmt.Errorf("build: %w", err)
	}
	for _, p := range binaryPackages {
		dst := filepath.Join(out, p.name)
		if err := goBuild(ctx, src, dst, p.pkg, "CGO_ENABLED=0"); err != nil {
			return b, err
		}
		*p.field(&b) = dst
	}
	b.NATSServer = filepath.Join(out, "nats-server")
	if err := goBuild(ctx, filepath.Join(src, "e2e"), b.NATSServer, natsServerModule); err != nil {
		return b, err
	}
	return b, nil
}

func goBuild(ctx context.Context, dir, dst, pkg string, env ...string) error {
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dst, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s (in %s, %s): %w\n%s", pkg, dir, time.Since(start).Round(time.Second), err, out.Bytes())
	}
	return nil
}

// SourceRoot finds the workspace root (the directory holding go.work) at or
// above dir.
func SourceRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work at or above the working directory")
		}
		dir = parent
	}
}
