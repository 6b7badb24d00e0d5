package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// Issue #9's scenario 7: the disk under the NATS store, and separately under
// the collector's spool, fills up (a small tmpfs and a filler file) while
// the audit webhook is fed; errors and backpressure must show (the webhook
// answers 503, the sender retries), nothing acknowledged may be lost, and
// the pipeline must recover once the filler is removed. Both need root to
// mount the tmpfs and skip without it.

// TestDiskFullNATSSmoke is TestDiskFullNATS at CI size.
func TestDiskFullNATSSmoke(t *testing.T) {
	requireSmokeOrFull(t)
	// The processor's and sink's ack waits are cut to 10 s (defaults 30 s
	// and 1 min): what failed to store while the disk was full comes back
	// sooner, which keeps the smoke short without changing what is checked.
	diskFullNATS(t, 8000, 400, "topology:\n  consumers:\n    processor:\n      ack_wait: 10s\n    sink:\n      ack_wait: 10s\n")
}

// TestDiskFullNATS fills the file system under nats-server's JetStream
// store (a 256 MiB tmpfs) a quarter into a 40k-record webhook feed, holds it
// full for 20 s, then removes the filler.
func TestDiskFullNATS(t *testing.T) {
	requireFull(t)
	diskFullNATS(t, scaled(t, 40_000, 4000), 500, "")
}

// TestDiskFullSpoolSmoke is TestDiskFullSpool at CI size.
func TestDiskFullSpoolSmoke(t *testing.T) {
	requireSmokeOrFull(t)
	diskFullSpool(t, 8000, 400)
}

// TestDiskFullSpool stops nats-server a quarter into a 40k-record webhook
// feed, so the collector spools; 5 s later the spool's file system (a
// 16 MiB tmpfs) is filled for 15 s, then freed, and nats-server comes back
// 5 s after that.
func TestDiskFullSpool(t *testing.T) {
	requireFull(t)
	diskFullSpool(t, scaled(t, 40_000, 4000), 500)
}

// webhookFeed is the collector (audit webhook) fed from a generated log.
type webhookFeed struct {
	d       *deployment
	log     harness.AuditLog
	written *counter
	posts   *postStats
	fed     chan error
	cancel  context.CancelFunc
}

// startWebhookFeed starts the collector with the audit webhook (spool is
// more YAML under collectors:, indented two spaces) and feeds it records at
// rate; a batch answered 503 or 429 is retried until accepted.
func startWebhookFeed(t *testing.T, d *deployment, prefix string, records, rate int, spool string) *webhookFeed {
	t.Helper()
	log, err := harness.WriteAuditLog(d.env.Path("source.log"), harness.AuditSpec{Prefix: prefix, Records: records, AlertEvery: max(records/20, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := d.env.Ports(1)[0]
	token := "chaos-" + prefix
	tokenFile := d.env.WriteFile("collector/token", token+"\n")
	d.add("collector", d.env.Bin.Collector, webhookCollectorYAML(d.env.Path("collector", "data"), port, tokenFile, spool))
	ctx, cancel := context.WithCancel(context.Background())
	f := &webhookFeed{d: d, log: log, written: &counter{}, posts: &postStats{}, fed: make(chan error, 1), cancel: cancel}
	url := fmt.Sprintf("http://127.0.0.1:%d/audit", port)
	go func() { f.fed <- postAtRate(ctx, log.Path, url, token, rate, 100, f.written, f.posts) }()
	t.Cleanup(cancel)
	return f
}

// waitWritten waits until n records were accepted (or the feed failed).
func (f *webhookFeed) waitWritten(t *testing.T, n int) {
	t.Helper()
	for f.written.get() < n {
		select {
		case err := <-f.fed:
			t.Fatalf("feed ended at %d records, before %d: %v", f.written.get(), n, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// alive fails the test for any stage that exited.
func (f *webhookFeed) alive(t *testing.T, when string) {
	t.Helper()
	for name, p := range f.d.procs {
		if exited, err := p.Exited(); exited {
			t.Fatalf("%s exited %s: %v; see %s", name, when, err, p.LogPath())
		}
	}
}

// finish waits for the feed to end and checks every id: events stream,
// dead-letter stream (nothing: the webhook carries no malformed lines),
// file sink.
func (f *webhookFeed) finish(t *testing.T, start time.Time, budget time.Duration) {
	t.Helper()
	if err := <-f.fed; err != nil {
		t.Fatal(err)
	}
	t.Logf("webhook: %d batches accepted, %d answers to retry (%s)", f.posts.ok.Load(), f.posts.retried.Load(), f.posts.statuses())
	url := f.d.nats.URL
	k := &killer{t: t, name: "events", progress: streamMsgs(url, topology.EventsStream), deadline: start.Add(budget)}
	back := time.Now()
	n := k.waitSettled(len(f.log.EventIDs), 5*time.Second)
	t.Logf("events stream settled at %d messages, %s after the feed ended", n, time.Since(back).Round(time.Second))
	f.alive(t, "after the feed")
	for name, p := range f.d.procs {
		if s, err := harness.ScanLog(p.LogPath()); err == nil {
			t.Logf("%s log: %s", name, s)
			if len(s.Panics) > 0 {
				t.Errorf("%s panicked: %q", name, s.Panics)
			}
		}
	}
	alerts := checkStreams(t, url, f.log)
	waitDrained(t, url, start.Add(budget), "file")
	checkFiles(t, f.d.env.Path("sink", "data", "files"), f.log, alerts)
	t.Logf("scenario took %s", time.Since(start).Round(time.Second))
}

func diskFullNATS(t *testing.T, records, rate int, topologyYAML string) {
	budget := 10 * time.Minute
	env := newEnv(t)
	fs := env.MountTmpfs("nats-store", "256m")
	start := time.Now()
	nats := env.StartNATSOn("nats", fs.Dir)
	d := &deployment{env: env, nats: nats, topology: topologyYAML, specs: map[string]harness.Spec{}, procs: map[string]*harness.Proc{}, ports: map[string]int{}}
	d.fileSink()
	d.processor()
	f := startWebhookFeed(t, d, runID("dfn"), records, rate, "")

	f.waitWritten(t, records/4)
	filled, err := fs.Fill()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	atFill := f.written.get()
	t.Logf("store file system filled at %d records: filler of %.1f MiB, %s", atFill, float64(filled)/(1<<20), fs)
	time.Sleep(20 * time.Second)
	f.alive(t, "while the store's disk was full")
	t.Logf("after 20 s full: %d records accepted meanwhile; webhook answers so far: %s", f.written.get()-atFill, f.posts.statuses())
	t.Logf("nats-server log: %d lines about storage (%s)", countLines(nats.Proc.LogPath(), "resources", "no space left"), firstLine(nats.Proc.LogPath(), "resources", "no space left"))
	t.Logf("collector spool: %s", metricLines(d.ports["collector"], "crowsnest_collector_spool_"))
	if err := fs.Free(); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	t.Logf("filler removed after %s full: %s", freed.Sub(t0).Round(time.Millisecond), fs)
	// nats-server's file store keeps a write error (ENOSPC) once it had
	// one: every later store on that stream fails with it until the server
	// restarts, room or not. So wait 15 s for the webhook to take records
	// again by itself, and if it does not, restart nats-server as an
	// operator would.
	atFree := f.written.get()
	recovered := false
	for time.Since(freed) < 15*time.Second {
		if f.written.get() > atFree {
			recovered = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if recovered {
		t.Logf("the webhook took records again %s after the filler was removed, without a restart", time.Since(freed).Round(time.Millisecond))
	} else {
		t.Logf("no record taken in the 15 s after the filler was removed (nats-server log: %d store errors since, e.g. %s): restarting nats-server",
			countLines(nats.Proc.LogPath(), "no space left"), lastLine(nats.Proc.LogPath(), "no space left"))
		if err := nats.Proc.Stop(30 * time.Second); err != nil {
			t.Logf("stop nats-server: %v", err)
		}
		nats.Restart()
		f.waitWritten(t, atFree+1)
		t.Logf("nats-server restarted; the webhook took records again %s after the filler was removed", time.Since(freed).Round(time.Millisecond))
	}
	f.finish(t, start, budget)
}

func diskFullSpool(t *testing.T, records, rate int) {
	budget := 10 * time.Minute
	env := newEnv(t)
	fs := env.MountTmpfs("spool", "16m")
	start := time.Now()
	d := newDeployment(env, "")
	d.fileSink()
	d.processor()
	// max_bytes far above the file system: the disk, not the spool's own
	// bound, is what runs out.
	f := startWebhookFeed(t, d, runID("dfs"), records, rate, fmt.Sprintf("  spool:\n    dir: %s\n    max_bytes: 1GiB\n", fs.Dir))

	f.waitWritten(t, records/4)
	if err := d.nats.Proc.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop nats-server: %v", err)
	}
	t0 := time.Now()
	atStop := f.written.get()
	time.Sleep(5 * time.Second)
	t.Logf("nats-server stopped at %d records; 5 s later %d accepted, spool %s (%s)", atStop, f.written.get(), fs, metricLines(d.ports["collector"], "crowsnest_collector_spool_"))
	filled, err := fs.Fill()
	if err != nil {
		t.Fatal(err)
	}
	atFill := f.written.get()
	t.Logf("spool file system filled: filler of %.1f MiB, %s", float64(filled)/(1<<20), fs)
	time.Sleep(15 * time.Second)
	f.alive(t, "while the spool's disk was full")
	ok, retried := f.posts.ok.Load(), f.posts.retried.Load()
	t.Logf("after 15 s full: %d records accepted meanwhile; webhook answers so far: %s (%d accepted, %d to retry)", f.written.get()-atFill, f.posts.statuses(), ok, retried)
	t.Logf("collector: %s; %s; %s", metricLines(d.ports["collector"], "crowsnest_collector_spool_"), metricLines(d.ports["collector"], "crowsnest_collector_http_requests_total"), metricLines(d.ports["collector"], "crowsnest_component_errors_total"))
	if err := fs.Free(); err != nil {
		t.Fatal(err)
	}
	atFree := f.written.get()
	time.Sleep(5 * time.Second)
	t.Logf("filler removed: %d records accepted in the next 5 s; spool %s", f.written.get()-atFree, fs)
	d.nats.Restart()
	t.Logf("nats-server back after %s away", time.Since(t0).Round(time.Millisecond))
	f.finish(t, start, budget)
	t.Logf("collector spool afterwards: %s", metricLines(d.ports["collector"], "crowsnest_collector_spool_"))
}

// countLines counts the lines of the log at path holding any of subs.
func countLines(path string, subs ...string) int {
	n := 0
	eachLine(path, func(line string) bool {
		for _, s := range subs {
			if strings.Contains(line, s) {
				n++
				break
			}
		}
		return true
	})
	return n
}

// firstLine is the first line of the log at path holding any of subs.
func firstLine(path string, subs ...string) string {
	found := "none"
	eachLine(path, func(line string) bool {
		for _, s := range subs {
			if strings.Contains(line, s) {
				found = strings.TrimSpace(line)
				return false
			}
		}
		return true
	})
	return found
}

// lastLine is the last line of the log at path holding any of subs.
func lastLine(path string, subs ...string) string {
	found := "none"
	eachLine(path, func(line string) bool {
		for _, sub := range subs {
			if strings.Contains(line, sub) {
				found = strings.TrimSpace(line)
				break
			}
		}
		return true
	})
	return found
}

func eachLine(path string, fn func(string) bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 4<<20)
	for sc.Scan() {
		if !fn(sc.Text()) {
			return
		}
	}
}
