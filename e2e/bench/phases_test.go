package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// ceiling is one stage's rate on a backlog it has to itself.
type ceiling struct {
	stage   string
	items   int64         // records, events (and alerts, for sinks) it passed on
	wall    time.Duration // from its first progress to the backlog's end
	cpu     time.Duration // its process's CPU meanwhile
	natsCPU time.Duration
}

func (c ceiling) rate() float64 { return float64(c.items) / c.wall.Seconds() }

// stageCeilings hands n records to the collector with nothing downstream,
// then starts the processor alone on the raw backlog, then each sink alone
// on the events and alerts: each stage's rate with the machine to itself
// (but for nats-server and, for the store sinks, the store).
func stageCeilings(t *testing.T, ctx context.Context, p *pipeline, f *Feeder, n int) []ceiling {
	t.Helper()
	var out []ceiling
	// measure starts a stage (or hands the burst over), waits for its first
	// progress (fromStart: counts from before start), then for done.
	measure := func(stage string, sinks []string, start func(), fromStart bool, first func(backlog) bool, done func(backlog) bool, count func(b0, b1 backlog) int64) {
		t.Helper()
		t0 := time.Now()
		u0, err := p.usage()
		if err != nil {
			t.Fatal(err)
		}
		start()
		b0, tFirst, err := p.waitFor(ctx, f, sinks, 50*time.Millisecond, 5*time.Minute, first)
		if err != nil {
			t.Fatalf("%s ceiling: no progress: %v", stage, err)
		}
		if fromStart {
			tFirst = t0
		} else if u0, err = p.usage(); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		b1, tDone, err := p.waitFor(ctx, f, sinks, 50*time.Millisecond, 10*time.Minute, done)
		if err != nil {
			t.Fatalf("%s ceiling: %v", stage, err)
		}
		u1, err := p.usage()
		if err != nil {
			t.Fatal(err)
		}
		c := ceiling{stage: stage, items: count(b0, b1), wall: tDone.Sub(tFirst),
			cpu: u1[stage].CPU - u0[stage].CPU, natsCPU: u1["nats-server"].CPU - u0["nats-server"].CPU}
		t.Logf("ceiling %s: %d in %s: %.0f/s, %s CPU", stage, c.items, c.wall.Round(time.Millisecond), c.rate(), c.cpu)
		out = append(out, c)
	}
	// The collector: the burst is written and posted from t0.
	// The collector: the burst is written and posted from t0 (the POSTs
	// return once JetStream has acknowledged their alerts).
	burst := func() {
		if err := f.Burst(ctx, n); err != nil {
			t.Fatalf("burst: %v", err)
		}
	}
	measure("collector", nil, burst, true,
		func(backlog) bool { return true },
		func(b backlog) bool { return b.collector == 0 && f.Generated.Load() == int64(n) },
		func(_, b1 backlog) int64 { return b1.rawTotal })
	measure("processor", nil, p.startProcessor, false,
		func(b backlog) bool { return b.events > 0 },
		func(b backlog) bool { return b.processor == 0 },
		func(b0, b1 backlog) int64 { return b1.events - b0.events })
	for _, name := range sinkNames {
		var running []string
		for _, s := range sinkNames {
			running = append(running, s)
			if s == name {
				break
			}
		}
		var initial int64 = -1
		measure("sink-"+name, running, func() { p.startSink(name) }, false,
			func(b backlog) bool {
				if initial < 0 {
					initial = b.events + b.alerts
				}
				return b.sinks[name] < initial
			},
			func(b backlog) bool { return b.sinks[name] == 0 },
			func(b0, _ backlog) int64 { return b0.sinks[name] })
	}
	return out
}

// step is one rate tried.
type step struct {
	rate       int
	generated  int
	dur        time.Duration
	slopes     map[string]float64 // backlog growth per stage, items/s, over the last two thirds
	total      float64
	totalSE    float64 // the total's standard error
	pass       bool
	bottleneck string
	cpu        map[string]float64 // cores
	drain      time.Duration
	drained    bool
}

// A step is not flat when the whole pipeline's backlog grew, over the
// step's last two thirds (the first third, at least 10 s, lets the backlog
// reach its steady level: rate × latency, the events held by batches, flush
// intervals and the stores' refresh), by more than flatShare of the offered
// rate and by more than twice the growth's standard error. Both: the sinks'
// batches make the backlog a saw tooth of up to a second of events, whose
// noise alone can reach 5-10 % of the rate over a 20 s regression; a real
// shortfall grows steadily and stands far above it.
const flatShare = 0.05

func stepRun(t *testing.T, ctx context.Context, p *pipeline, f *Feeder, sinks []string, rate int, d time.Duration) step {
	t.Helper()
	s := step{rate: rate, dur: d, slopes: map[string]float64{}, cpu: map[string]float64{}}
	u0, err := p.usage()
	if err != nil {
		t.Fatal(err)
	}
	var sent int
	var feedErr error
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		sent, feedErr = f.Paced(ctx, rate, d)
	}()
	series := map[string][]float64{}
	var xs []float64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
		}
		b, err := p.read(ctx, f.Generated.Load(), sinks)
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(start).Seconds()
		if el < max(d.Seconds()/3, 10) {
			continue
		}
		xs = append(xs, el)
		series["collector"] = append(series["collector"], float64(b.collector))
		series["processor"] = append(series["processor"], float64(b.processor))
		for _, name := range sinks {
			series["sink-"+name] = append(series["sink-"+name], float64(b.sinks[name]))
		}
		series["total"] = append(series["total"], float64(b.total()))
	}
	if feedErr != nil {
		t.Fatalf("feed at %d/s: %v", rate, feedErr)
	}
	u1, err := p.usage()
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	for name, u := range u1 {
		s.cpu[name] = (u.CPU - u0[name].CPU).Seconds() / wall.Seconds()
	}
	s.generated = sent
	worst := 0.0
	for name, ys := range series {
		v, se := fit(xs, ys)
		if name == "total" {
			s.total, s.totalSE = v, se
			continue
		}
		s.slopes[name] = v
		if v > worst {
			worst, s.bottleneck = v, name
		}
	}
	s.pass = len(xs) >= 3 && (s.total < flatShare*float64(rate) || s.total < 2*s.totalSE)
	// Drain before the next step, so that each starts from an empty pipeline.
	t0 := time.Now()
	_, _, err = p.waitFor(ctx, f, sinks, 250*time.Millisecond, 4*time.Minute, func(b backlog) bool { return b.total() <= 0 })
	s.drain, s.drained = time.Since(t0), err == nil
	t.Logf("step %d/s: generated %d in %s, backlog slope %.0f±%.0f/s (per stage %v), flat=%v, drained in %s (%v)",
		rate, sent, wall.Round(time.Millisecond), s.total, s.totalSE, roundMap(s.slopes), s.pass, s.drain.Round(time.Second), err)
	return s
}

func roundMap(m map[string]float64) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = int(v)
	}
	return out
}

// latency is one phase at a fraction of the sustained rate.
type latency struct {
	pct, rate, generated int
	dur                  time.Duration
	file, alert, ch, es  harness.Summary
	cpu                  map[string]float64 // cores
	rss, peak            map[string]int64
}

// probeEvery: one in probeEvery records whose event id is known in advance
// (audit, Falco) is looked for in ClickHouse and Elasticsearch.
const probeEvery = 10

func latencyRun(t *testing.T, ctx context.Context, p *pipeline, f *Feeder, rate, pct int, d time.Duration) latency {
	t.Helper()
	l := latency{pct: pct, rate: rate, dur: d, cpu: map[string]float64{}, rss: map[string]int64{}, peak: map[string]int64{}}
	file, alert, ch, es := harness.NewLatencies(), harness.NewLatencies(), harness.NewLatencies(), harness.NewLatencies()
	known := 0
	f.Track(func(r *Record, at time.Time) {
		file.Sent(r.Key, at)
		if r.Alert {
			alert.Sent(r.ID, at)
		}
		if r.ID != "" {
			if known%probeEvery == 0 {
				ch.Sent(r.ID, at)
				es.Sent(r.ID, at)
			}
			known++
		}
	})
	pctx, stop := context.WithCancel(ctx)
	var g group
	tail := newFileTail(p.sinkDir)
	g.Go(func() error { return tail.run(pctx, file, alert) })
	g.Go(func() error { return pollStore(pctx, ch, clickHouseVisible(p.chURL, p.db)) })
	g.Go(func() error { return pollStore(pctx, es, elasticsearchVisible(p.esURL, "logs-crowsnest.events-"+p.ns)) })
	u0, err := p.usage()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sent, err := f.Paced(ctx, rate, d)
	wall := time.Since(start)
	f.Track(nil)
	if err != nil {
		t.Fatal(err)
	}
	u1, err := p.usage()
	if err != nil {
		t.Fatal(err)
	}
	l.generated = sent
	for name, u := range u1 {
		l.cpu[name] = (u.CPU - u0[name].CPU).Seconds() / wall.Seconds()
		l.rss[name], l.peak[name] = u.RSS, u.PeakRSS
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if len(file.Pending(1)) == 0 && len(alert.Pending(1)) == 0 && len(ch.Pending(1)) == 0 && len(es.Pending(1)) == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	stop()
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	l.file, l.alert, l.ch, l.es = file.Summary(), alert.Summary(), ch.Summary(), es.Summary()
	for name, rec := range map[string]*harness.Latencies{"file sink": file, "alerts": alert, "clickhouse": ch, "elasticsearch": es} {
		if missing := rec.Pending(5); len(missing) > 0 {
			t.Logf("latency at %d%%: %s never showed %v (and more)", pct, name, missing)
		}
	}
	t.Logf("latency at %d%% (%d/s): file %s; alert %s; clickhouse %s; elasticsearch %s", pct, rate, l.file, l.alert, l.ch, l.es)
	if _, _, err := p.waitFor(ctx, f, sinkNames, 250*time.Millisecond, 2*time.Minute, func(b backlog) bool { return b.total() <= 0 }); err != nil {
		t.Logf("after the %d%% phase: %v", pct, err)
	}
	return l
}

// peer is the same audit records through Benthos and through crowsnest's
// normalizer, file to file.
type peer struct {
	n                       int
	runs                    int
	benthosWall, benthosCPU []time.Duration
	normWall, normCPU       []time.Duration
}

func peerRun(ctx context.Context, e *harness.Env, crowsnest, benthos, config string, mix *Mix, n int) (peer, error) {
	pr := peer{n: n, runs: 3}
	in := e.Path("peer", "input.jsonl")
	if err := os.MkdirAll(e.Path("peer"), 0o750); err != nil {
		return pr, err
	}
	fh, err := os.Create(in)
	if err != nil {
		return pr, err
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	now := time.Now()
	for k := 0; k < n; {
		r, err := mix.Next(now)
		if err != nil {
			return pr, err
		}
		if r.Kind != Audit {
			continue
		}
		w.Write(r.Line)
		w.WriteByte('\n')
		k++
	}
	if err := w.Flush(); err != nil {
		return pr, err
	}
	if err := fh.Close(); err != nil {
		return pr, err
	}
	run := func(out string, cmd *exec.Cmd) (time.Duration, time.Duration, error) {
		_ = os.Remove(out)
		start := time.Now()
		if b, err := cmd.CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("%s: %w: %.500s", cmd.Path, err, b)
		}
		wall := time.Since(start)
		lines, err := countLines(out)
		if err != nil {
			return 0, 0, err
		}
		if lines != n {
			return 0, 0, fmt.Errorf("%s wrote %d events for %d records", cmd.Path, lines, n)
		}
		return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
	}
	for range pr.runs {
		bout := e.Path("peer", "benthos.out")
		cmd := exec.CommandContext(ctx, benthos, "-c", config)
		cmd.Env = append(os.Environ(), "IN="+in, "OUT="+bout)
		wall, cpu, err := run(bout, cmd)
		if err != nil {
			return pr, err
		}
		pr.benthosWall, pr.benthosCPU = append(pr.benthosWall, wall), append(pr.benthosCPU, cpu)

		nout := e.Path("peer", "crowsnest.out")
		of, err := os.Create(nout)
		if err != nil {
			return pr, err
		}
		cmd = exec.CommandContext(ctx, crowsnest, "normalize", "--source", "k8s_audit", in)
		cmd.Env = crowsnestEnv()
		cmd.Stdout = of
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		err = cmd.Run()
		wall = time.Since(start)
		_ = of.Close()
		if err != nil {
			return pr, fmt.Errorf("crowsnest normalize: %w: %.500s", err, stderr.String())
		}
		if lines, err := countLines(nout); err != nil || lines != n {
			return pr, fmt.Errorf("crowsnest normalize wrote %d events for %d records (%v)", lines, n, err)
		}
		pr.normWall = append(pr.normWall, wall)
		pr.normCPU = append(pr.normCPU, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	return pr, nil
}

// crowsnestEnv is this environment without the benchmark's own CROWSNEST_
// switches, which crowsnest refuses as unknown configuration keys.
func crowsnestEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CROWSNEST_") && !strings.HasPrefix(kv, "CROWSNEST_TEST_") && !strings.HasPrefix(kv, "CROWSNEST_DEV_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			n++
		}
	}
	return n, sc.Err()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
