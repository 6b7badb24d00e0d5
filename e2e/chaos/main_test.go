// Package chaos is the fault suite: scenarios that run crowsnest as real
// processes, inject a fault (SIGKILL of a stage or of the whole run, NATS
// away for 30 s) and then check every generated event id — lost = 0,
// duplicates = 0, dead-letter = exactly the injected bad records.
//
// The scenarios are slow and start real processes, so they run only when
// asked: CROWSNEST_CHAOS=1 runs them all (`make chaos`), CROWSNEST_CHAOS_SMOKE=1
// runs each scenario's CI-sized smoke (the `*Smoke` tests, which `make test`
// runs). Results and the exact commands are in docs/RELIABILITY.md.
package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

const (
	envFull  = "CROWSNEST_CHAOS"
	envSmoke = "CROWSNEST_CHAOS_SMOKE"
)

// requireFull skips unless the full suite was asked for.
func requireFull(t *testing.T) {
	t.Helper()
	if os.Getenv(envFull) == "" {
		t.Skipf("fault scenario: set %s=1 to run it (make chaos); it starts real processes and takes minutes", envFull)
	}
}

// binaries builds the binaries once per test process, from the source tree
// at $CROWSNEST_CHAOS_SRC (default: the workspace this test lives in), into
// $CROWSNEST_CHAOS_BIN (default <tree>/bin/chaos; concurrent runs of the
// suite from one tree each need their own).
var binaries = sync.OnceValues(func() (harness.Binaries, error) {
	src := os.Getenv("CROWSNEST_CHAOS_SRC")
	if src == "" {
		var err error
		if src, err = harness.SourceRoot("."); err != nil {
			return harness.Binaries{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	out := os.Getenv("CROWSNEST_CHAOS_BIN")
	if out == "" {
		out = filepath.Join(src, "bin", "chaos")
	}
	b, err := harness.Build(ctx, src, out)
	if err == nil {
		fmt.Fprintf(os.Stderr, "chaos: built binaries from %s in %s\n", src, time.Since(start).Round(time.Second))
	}
	return b, err
})

func newEnv(t *testing.T) *harness.Env {
	t.Helper()
	b, err := binaries()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return harness.NewEnv(t, b)
}

// rng is a scenario's source of randomness: seeded from
// CROWSNEST_CHAOS_SEED when set, so a run can be repeated, else from the
// clock; the seed is logged either way.
func rng(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CROWSNEST_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CROWSNEST_CHAOS_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (CROWSNEST_CHAOS_SEED=%d repeats the kill points)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed>>1|1))
}

// scaled returns n times $CROWSNEST_CHAOS_SCALE (default 1), at least min:
// a quicker, smaller run of the same scenario when asked.
func scaled(t *testing.T, n, floor int) int {
	t.Helper()
	s := os.Getenv("CROWSNEST_CHAOS_SCALE")
	if s == "" {
		return n
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		t.Fatalf("CROWSNEST_CHAOS_SCALE=%q: want a positive number", s)
	}
	return max(int(float64(n)*f), floor)
}

// runID names a scenario's run uniquely (databases, data streams, ids), so
// runs never see each other's data in the shared stores.
func runID(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e10)
}
