package chaos

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// allInOne is `crowsnest run` on one data dir with a fixed telemetry port and
// a fixed embedded NATS port, so the test can watch its streams and restart
// it on the same addresses.
type allInOne struct {
	env     *harness.Env
	dataDir string
	args    []string
	extra   []string // more environment
	telPort int
	natPort int
	proc    *harness.Proc
}

func newAllInOne(env *harness.Env, args []string, extraEnv ...string) *allInOne {
	ports := env.Ports(2)
	return &allInOne{env: env, dataDir: env.Path("data"), args: args, extra: extraEnv, telPort: ports[0], natPort: ports[1]}
}

func (a *allInOne) natsURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", a.natPort) }

func (a *allInOne) spec(extraArgs ...string) harness.Spec {
	return harness.Spec{
		Name: "crowsnest-run",
		Path: a.env.Bin.Crowsnest,
		Args: append(append([]string{"run", "--data-dir", a.dataDir}, a.args...), extraArgs...),
		Env: append([]string{
			"CROWSNEST_TELEMETRY__LISTEN=127.0.0.1:" + strconv.Itoa(a.telPort),
			"CROWSNEST_EMBEDDED__PORT=" + strconv.Itoa(a.natPort),
			"CROWSNEST_SINKS__TERMINAL__ENABLED=false",
		}, a.extra...),
		Dir:      a.env.Path("run"),
		ReadyURL: harness.ReadyURL(a.telPort),
	}
}

func (a *allInOne) start() { a.proc = a.env.Start(a.spec()) }

// TestKillRunSmoke is the short version of TestKillRun for `make test`:
// ~5k records, one SIGKILL of the whole run.
func TestKillRunSmoke(t *testing.T) {
	if os.Getenv(envSmoke) == "" && os.Getenv(envFull) == "" {
		t.Skipf("fault smoke scenario: set %s=1 (or %s=1) to run it; it builds and starts real processes", envSmoke, envFull)
	}
	// The sink's and processor's ack waits are cut to 10 s (defaults 1 min
	// and 30 s): what a killed process held comes back sooner, which keeps
	// the smoke short without changing what is checked.
	killRun(t, 5000, 1, 1000, 2*time.Minute, false,
		"CROWSNEST_TOPOLOGY__CONSUMERS__SINK__ACK_WAIT=10s",
		"CROWSNEST_TOPOLOGY__CONSUMERS__PROCESSOR__ACK_WAIT=10s")
}

// TestKillRun is issue #4's done-means under fire: `crowsnest run
// --k8s-audit-file F` killed with SIGKILL at random points, restarted on the
// same --data-dir each time; the file sink ends with every record exactly
// once and the malformed lines only in the dead-letter stream; a further run
// on the same data dir and file adds nothing.
func TestKillRun(t *testing.T) {
	requireFull(t)
	killRun(t, scaled(t, 200_000, 5000), 5, 20_000, 15*time.Minute, true)
}

func killRun(t *testing.T, records, kills, badEvery int, budget time.Duration, rerun bool, extraEnv ...string) {
	r := rng(t)
	env := newEnv(t)
	start := time.Now() // after the build: the figures are the scenario's
	log, err := harness.WriteAuditLog(env.Path("audit.log"), harness.AuditSpec{
		Prefix: runID("run"), Records: records, BadEvery: badEvery, AlertEvery: max(records/20, 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d records, %d malformed lines, %d alerting records", len(log.EventIDs), len(log.Bad), log.AlertRecords)
	run := newAllInOne(env, []string{"--k8s-audit-file", log.Path}, extraEnv...)
	run.start()
	k := &killer{
		t:        t,
		name:     "crowsnest run",
		progress: streamMsgs(run.natsURL(), topology.EventsStream),
		crash: func() {
			if err := run.proc.Kill(); err != nil {
				t.Fatal(err)
			}
		},
		start:    run.start,
		deadline: start.Add(budget),
		total:    records,
	}
	recs := k.run(planKills(r, kills, records))
	n := k.waitSettled(records, 5*time.Second)
	t.Logf("events stream settled at %d messages after %s; %s", n, time.Since(start).Round(time.Second), summarize(recs))

	alerts := checkStreams(t, run.natsURL(), log)
	drained := waitDrained(t, run.natsURL(), start.Add(budget), "file")
	t.Logf("file sink drained %s after the events stream settled (messages delivered to a killed process return after the sink's ack wait)", drained.Round(time.Second))
	// Let the sinks finish what the stream holds, then stop cleanly.
	if err := run.proc.Stop(time.Minute); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	files := env.Path("data", "files")
	checkFiles(t, files, log, alerts)

	if rerun {
		// The same file on the same data dir again: nothing new.
		again := env.Start(run.spec("--for", "15s"))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := again.Wait(ctx); err != nil {
			t.Errorf("rerun: %v", err)
		}
		t.Log("after a rerun on the same data dir and file:")
		checkFiles(t, files, log, alerts)
	}
	t.Logf("scenario took %s", time.Since(start).Round(time.Second))
}

func checkFiles(t *testing.T, dir string, log harness.AuditLog, alerts *harness.Census) {
	t.Helper()
	ev, err := harness.FileSinkCensus(dir, "events")
	if err != nil {
		t.Fatal(err)
	}
	report(t, ev.Compare(log.EventIDs))
	al, err := harness.FileSinkCensus(dir, "alerts")
	if err != nil {
		t.Fatal(err)
	}
	report(t, al.Compare(ids(alerts)))
}
