package chaos

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// TestClusterRestartsSmoke is the CI-sized TestClusterRestarts: about a
// minute of node restarts.
func TestClusterRestartsSmoke(t *testing.T) {
	if os.Getenv(envSmoke) == "" && os.Getenv(envFull) == "" {
		t.Skipf("fault smoke scenario: set %s=1 (or %s=1) to run it; it builds and starts real processes", envSmoke, envFull)
	}
	// The processor's and sink's ack waits are cut to 10 s (defaults 30 s
	// and 1 min): what a dead node's consumers held comes back sooner, which
	// keeps the smoke short without changing what is checked.
	clusterRestarts(t, 40*time.Second, 300, "  consumers:\n    processor:\n      ack_wait: 10s\n    sink:\n      ack_wait: 10s\n")
}

// TestClusterRestarts is issue #9's scenario 3: a 3-node JetStream cluster
// on loopback with R3 streams (topology.replicas: 3), the stages given all
// three URLs; a random node is killed (SIGKILL or SIGTERM, at random) every
// few seconds for 10 minutes while an audit log grows. Every id must reach
// the events stream and the file sink once.
func TestClusterRestarts(t *testing.T) {
	requireFull(t)
	clusterRestarts(t, 10*time.Minute, 300, "")
}

// restartRecord is one node restart, for the report.
type restartRecord struct {
	node    int
	signal  string
	down    time.Duration // stopped until started again
	healthy time.Duration // started until its full /healthz answered 200
}

// clusterRestarts feeds rate lines/s for duration while restarting nodes;
// topologyExtra is more YAML under topology: (indented two spaces).
func clusterRestarts(t *testing.T, duration time.Duration, rate int, topologyExtra string) {
	r := rng(t)
	records := scaled(t, rate*int(duration/time.Second), 3000)
	budget := duration + 10*time.Minute
	env := newEnv(t)
	start := time.Now() // after the build: the figures are the scenario's
	cl := env.StartCluster("js", 3)
	t.Logf("cluster of %d nodes healthy after %s: %s", len(cl.Nodes), time.Since(start).Round(time.Millisecond), cl.URL())
	log, err := harness.WriteAuditLog(env.Path("source.log"), harness.AuditSpec{
		Prefix: runID("clu"), Records: records, BadEvery: 5000, AlertEvery: max(records/20, 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	url := cl.URL()
	adv := watchAdvisories(t, url)
	// The deployment of stages_test.go, pointed at the cluster: every stage
	// gets every URL, and every stream and the state bucket three replicas.
	d := &deployment{env: env, nats: &harness.NATS{URL: url}, topology: "topology:\n  replicas: 3\n" + topologyExtra,
		specs: map[string]harness.Spec{}, procs: map[string]*harness.Proc{}, ports: map[string]int{}}
	d.fileSink()
	d.processor()
	live := env.Path("audit.log")
	if err := touch(live); err != nil {
		t.Fatal(err)
	}
	d.collector(live)
	// /readyz answers 200 once a stage is connected, before its start-up
	// topology calls are done; a node restart during those made a stage
	// exit (a trial run: "look up stream ...: context deadline exceeded").
	// The restarts begin only when every stage has logged "started".
	for name, p := range d.procs {
		waitStarted(t, p, name, time.Minute)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	written := &counter{}
	fed := make(chan error, 1)
	feedStart := time.Now()
	go func() { fed <- appendAtRate(ctx, log.Path, live, rate, written) }()

	var recs []restartRecord
	feeding := true
	var feedErr error
	var feedTook time.Duration
	for feeding {
		select {
		case feedErr = <-fed:
			feeding, feedTook = false, time.Since(feedStart)
			continue
		case <-time.After(time.Duration(2000+r.IntN(4000)) * time.Millisecond):
		}
		for name, p := range d.procs {
			if exited, err := p.Exited(); exited {
				t.Fatalf("%s exited during the restarts (%d so far): %v; see %s", name, len(recs), err, p.LogPath())
			}
		}
		rec := restartRecord{node: r.IntN(len(cl.Nodes))}
		node := cl.Nodes[rec.node]
		t0 := time.Now()
		if r.IntN(2) == 0 {
			rec.signal = "SIGKILL"
			if err := node.Proc.Kill(); err != nil {
				t.Fatal(err)
			}
		} else {
			rec.signal = "SIGTERM"
			// A clean stop that takes longer than this is killed (and
			// reported by Stop, which is not this scenario's failure).
			if err := node.Proc.Stop(30 * time.Second); err != nil {
				t.Logf("%s: %v", node.Proc.Name(), err)
			}
		}
		time.Sleep(time.Duration(r.IntN(2000)) * time.Millisecond)
		node.Restart()
		rec.down = time.Since(t0)
		up := time.Now()
		hctx, hcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := cl.WaitHealthy(hctx, rec.node); err != nil {
			hcancel()
			t.Fatalf("node %d not healthy again: %v", rec.node, err)
		}
		hcancel()
		rec.healthy = time.Since(up)
		recs = append(recs, rec)
		t.Logf("restart %d: js-%d %s, down %s, healthy %s after start; %d/%d lines fed",
			len(recs), rec.node, rec.signal, rec.down.Round(time.Millisecond), rec.healthy.Round(time.Millisecond), written.get(), records)
	}
	if feedErr != nil {
		t.Fatal(feedErr)
	}
	k := &killer{t: t, name: "events", progress: streamMsgs(url, topology.EventsStream), deadline: start.Add(budget)}
	n := k.waitSettled(records, 10*time.Second)
	settled := time.Since(feedStart)
	t.Logf("events stream settled at %d messages %s after the feed started (fed in %s: %.0f lines/s; end to end %.0f events/s)",
		n, settled.Round(time.Second), feedTook.Round(time.Second), float64(records)/feedTook.Seconds(), float64(records)/settled.Seconds())
	t.Logf("%s", summarizeRestarts(recs))
	t.Logf("advisories: %s", adv.String())
	for name, p := range d.procs {
		if exited, err := p.Exited(); exited {
			t.Errorf("%s exited: %v; see %s", name, err, p.LogPath())
		}
		t.Logf("%s errors: %s", name, metricLines(d.ports[name], "crowsnest_component_errors_total"))
		if s, err := harness.ScanLog(p.LogPath()); err == nil {
			t.Logf("%s log: %s", name, s)
			if len(s.Panics) > 0 {
				t.Errorf("%s panicked: %q", name, s.Panics)
			}
		}
	}
	// A census reads through an ordered consumer, whose requests a cluster
	// fresh from a restart may leave unanswered for a moment ("no
	// responders"): wait until one read succeeds before the checks.
	quiet(t, url, time.Minute)
	ev := censusRetried(t, url, topology.EventsStream, harness.MsgEventID)
	report(t, ev.Compare(log.EventIDs))
	report(t, censusRetried(t, url, topology.DeadLetterStream, harness.MarkerOf(badMarker(log))).Compare(log.Bad))
	alerts := censusRetried(t, url, topology.AlertsStream, harness.MsgEventID)
	if alerts.Records != len(alerts.Count) || alerts.Unreadable > 0 || len(alerts.Count) == 0 {
		t.Errorf("alerts stream: %d messages, %d unique alert ids, %d unreadable", alerts.Records, len(alerts.Count), alerts.Unreadable)
	}
	t.Logf("alerts stream: %d alerts (%d records written to raise one)", alerts.Records, log.AlertRecords)
	waitDrained(t, url, start.Add(budget), "file")
	checkFiles(t, env.Path("sink", "data", "files"), log, alerts)
	t.Logf("scenario took %s", time.Since(start).Round(time.Second))
}

func summarizeRestarts(recs []restartRecord) string {
	if len(recs) == 0 {
		return "no restarts"
	}
	var kills, terms int
	var maxDown, maxHealthy, sumHealthy time.Duration
	for _, r := range recs {
		if r.signal == "SIGKILL" {
			kills++
		} else {
			terms++
		}
		maxDown = max(maxDown, r.down)
		maxHealthy = max(maxHealthy, r.healthy)
		sumHealthy += r.healthy
	}
	return fmt.Sprintf("%d node restarts (%d SIGKILL, %d SIGTERM); down max %s; healthy after start mean %s, max %s",
		len(recs), kills, terms, maxDown.Round(time.Millisecond),
		(sumHealthy / time.Duration(len(recs))).Round(time.Millisecond), maxHealthy.Round(time.Millisecond))
}

// advisories counts the JetStream advisories a cluster publishes (leader
// elections, quorum lost) by kind, on a connection that follows the
// cluster through its restarts.
type advisories struct {
	mu     sync.Mutex
	byKind map[string]int
}

func watchAdvisories(t *testing.T, url string) *advisories {
	t.Helper()
	a := &advisories{byKind: map[string]int{}}
	nc, err := nats.Connect(url, nats.Name("crowsnest-chaos-advisories"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	_, err = nc.Subscribe("$JS.EVENT.ADVISORY.>", func(m *nats.Msg) {
		// $JS.EVENT.ADVISORY.<STREAM|CONSUMER|...>.<KIND>.<...>
		parts := strings.Split(m.Subject, ".")
		if len(parts) < 5 {
			return
		}
		kind := parts[3] + "." + parts[4]
		switch parts[4] {
		case "LEADER_ELECTED", "QUORUM_LOST":
		default:
			return
		}
		a.mu.Lock()
		a.byKind[kind]++
		a.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *advisories) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.byKind) == 0 {
		return "none seen"
	}
	keys := make([]string, 0, len(a.byKind))
	for k := range a.byKind {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, a.byKind[k])
	}
	return strings.Join(parts, ", ")
}

// waitStarted waits until the stage's log says "started" (its topology is
// prepared), failing if it exits first or takes longer than limit.
func waitStarted(t *testing.T, p *harness.Proc, name string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for countLines(p.LogPath(), "msg=started") == 0 {
		if exited, err := p.Exited(); exited {
			t.Fatalf("%s exited during start-up: %v; see %s", name, err, p.LogPath())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not started within %s; see %s", name, limit, p.LogPath())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// quiet waits until a census of the dead-letter stream (small) succeeds at
// url, for at most limit.
func quiet(t *testing.T, url string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := func() error {
			nc, js, err := harness.Connect(url)
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = harness.StreamCensus(ctx, js, topology.DeadLetterStream, harness.MsgEventID)
			return err
		}()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not answer a stream read within %s: %v", limit, err)
		}
		t.Logf("stream read not answered yet (%v); retrying", err)
		time.Sleep(time.Second)
	}
}

// censusRetried is harness.StreamCensus of stream at url, read again from
// the start when a read goes unanswered (a consumer of a cluster fresh from
// restarts can meet "no responders"), up to five times.
func censusRetried(t *testing.T, url, stream string, idOf func(jetstream.Msg) (string, error)) *harness.Census {
	t.Helper()
	var last error
	for attempt := 1; attempt <= 5; attempt++ {
		c, err := func() (*harness.Census, error) {
			nc, js, err := harness.Connect(url)
			if err != nil {
				return nil, err
			}
			defer nc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			return harness.StreamCensus(ctx, js, stream, idOf)
		}()
		if err == nil {
			return c
		}
		last = err
		t.Logf("census of %s, attempt %d: %v", stream, attempt, err)
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("census of %s: %v", stream, last)
	return nil
}
