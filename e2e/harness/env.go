package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Env is one scenario's world: a directory for every process's state and
// logs, the binaries, and the processes started, all killed at the end.
// When the test fails the directory is kept and the tail of every log is
// printed, so a failure can be read without re-running it.
type Env struct {
	t   testing.TB
	Dir string
	Bin Binaries

	mu    sync.Mutex
	procs []*Proc
	logs  map[string]bool
}

// logTailBytes is how much of each log a failed test prints.
const logTailBytes = 3000

// NewEnv makes a scenario directory and registers the cleanup.
func NewEnv(t testing.TB, bin Binaries) *Env {
	t.Helper()
	dir, err := os.MkdirTemp("", "crowsnest-chaos-"+sanitize(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{t: t, Dir: dir, Bin: bin, logs: map[string]bool{}}
	t.Cleanup(e.cleanup)
	return e
}

// Path joins elem under the scenario directory.
func (e *Env) Path(elem ...string) string {
	return filepath.Join(append([]string{e.Dir}, elem...)...)
}

// Start starts spec with its log in logs/<name>.log and fails the test when
// it cannot start or does not become ready within a minute (this machine is
// shared; start-up includes creating streams).
func (e *Env) Start(spec Spec) *Proc {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logPath := e.Path("logs", spec.Name+".log")
	e.mu.Lock()
	e.logs[logPath] = true
	e.mu.Unlock()
	p, err := Start(ctx, spec, logPath)
	if err != nil {
		e.t.Fatalf("%v\n--- %s log tail ---\n%s", err, spec.Name, tail(logPath, logTailBytes))
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p
}

func (e *Env) cleanup() {
	e.mu.Lock()
	procs := e.procs
	e.mu.Unlock()
	for _, p := range procs {
		_ = p.Kill()
	}
	if e.t.Failed() || os.Getenv("CROWSNEST_CHAOS_KEEP") != "" {
		for path := range e.logs {
			e.t.Logf("--- %s (tail) ---\n%s", path, tail(path, logTailBytes))
		}
		e.t.Logf("scenario directory kept: %s", e.Dir)
		return
	}
	_ = os.RemoveAll(e.Dir)
}

func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Ports allocates n free loopback ports.
func (e *Env) Ports(n int) []int {
	e.t.Helper()
	out := make([]int, n)
	for i := range out {
		p, err := FreePort()
		if err != nil {
			e.t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// WriteFile writes a file under the scenario directory and returns its path.
func (e *Env) WriteFile(name, content string) string {
	e.t.Helper()
	path := e.Path(name)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// ReadyURL is the /readyz of a telemetry listener on port.
func ReadyURL(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/readyz", port) }
