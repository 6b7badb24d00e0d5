package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// Knobs (environment), with their defaults:
//
//	CROWSNEST_BENCH_E2E=1            run at all
//	CROWSNEST_BENCH_BIN              build directory (default <tree>/bin/bench)
//	CROWSNEST_BENCH_STEPS            rates tried, events/s (500,1000,2000,4000,8000)
//	CROWSNEST_BENCH_STEP             duration of each step (30s)
//	CROWSNEST_BENCH_LATENCY          duration of each latency phase (30s)
//	CROWSNEST_BENCH_CEILING_EVENTS   records of the ceiling burst (60000)
//	CROWSNEST_BENCH_PEER_EVENTS      audit records through the peer (50000)
//	CROWSNEST_BENCH_BENTHOS          the Benthos binary (peer skipped when unset)
//	CROWSNEST_BENCH_OUT              where the markdown report goes (printed too)
//	CROWSNEST_BENCH_WITHOUT_CLICKHOUSE=0  skip the second search without the ClickHouse sink
//	CROWSNEST_BENCH_KEEP=1           keep the ClickHouse database and data streams
const envGate = "CROWSNEST_BENCH_E2E"

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envDuration(t *testing.T, key, def string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(env(key, def))
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", key, os.Getenv(key))
	}
	return d
}

func envInt(t *testing.T, key, def string) int {
	t.Helper()
	n, err := strconv.Atoi(env(key, def))
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", key, os.Getenv(key))
	}
	return n
}

func envRates(t *testing.T) []int {
	t.Helper()
	var out []int
	for f := range strings.SplitSeq(env("CROWSNEST_BENCH_STEPS", "500,1000,2000,4000,8000"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || (len(out) > 0 && n <= out[len(out)-1]) {
			t.Fatalf("CROWSNEST_BENCH_STEPS: want increasing positive rates, got %q", os.Getenv("CROWSNEST_BENCH_STEPS"))
		}
		out = append(out, n)
	}
	return out
}

// TestEndToEnd is `make bench-e2e`. See docs/BENCHMARKS.md, "End to end
// (issue #9)", for what each figure means.
func TestEndToEnd(t *testing.T) {
	if os.Getenv(envGate) == "" {
		t.Skipf("end-to-end benchmark: set %s=1 to run it (make bench-e2e); it starts real processes for ~10-15 minutes", envGate)
	}
	chURL := strings.TrimRight(os.Getenv("CROWSNEST_TEST_CLICKHOUSE_URL"), "/")
	esURL := strings.TrimRight(os.Getenv("CROWSNEST_TEST_ELASTICSEARCH_URL"), "/")
	if chURL == "" || esURL == "" {
		t.Skip("needs CROWSNEST_TEST_CLICKHOUSE_URL and CROWSNEST_TEST_ELASTICSEARCH_URL (make services-up prints them)")
	}
	_ = stepDur(t) // checked before anything starts
	latDur := envDuration(t, "CROWSNEST_BENCH_LATENCY", "30s")
	ceilingN := envInt(t, "CROWSNEST_BENCH_CEILING_EVENTS", "60000")
	peerN := envInt(t, "CROWSNEST_BENCH_PEER_EVENTS", "50000")
	rates := envRates(t)

	src, err := harness.SourceRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	binDir := env("CROWSNEST_BENCH_BIN", filepath.Join(src, "bin", "bench"))
	buildStart := time.Now()
	ctx := context.Background()
	bctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	bin, err := harness.Build(bctx, src, binDir)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built binaries into %s in %s", binDir, time.Since(buildStart).Round(time.Second))

	rep := &report{started: time.Now().UTC()}
	rep.loadBefore = loadAvg()
	runID := fmt.Sprintf("bench%d", time.Now().UnixNano()%1e10)
	e := harness.NewEnv(t, bin)
	p := &pipeline{env: e, topology: benchTopology, procs: map[string]*harness.Proc{},
		auditPath: e.Path("input", "audit.log"), tetragonPath: e.Path("input", "tetragon.log"),
		sinkDir: e.Path("sink-file", "data", "files"),
		chURL:   chURL, esURL: esURL, db: runID, ns: runID}
	t.Cleanup(func() { cleanupStores(t, p) })

	samples := filepath.Join(src, "collectors", "replay", "samples")
	corpus := filepath.Join(src, "..", "shared", "corpora", "hkerma-k8s-audit", "audit-logs.reconstructed.jsonl")
	if _, err := os.Stat(corpus); err != nil {
		t.Logf("note: %s absent; the audit records are the bundled replay sample only", corpus)
		rep.notes = append(rep.notes, "The hkerma audit corpus was absent: audit records come from the bundled replay sample only.")
		corpus = ""
	} else {
		rep.corpus = true
	}
	sigma := filepath.Join(src, "..", "shared", "corpora", "sigmahq")
	if _, err := os.Stat(sigma); err == nil {
		p.rulesDirs = []string{filepath.Join(sigma, "rules", "application", "kubernetes"), filepath.Join(sigma, "rules", "linux")}
		rep.sigma = true
	} else {
		t.Logf("note: %s absent; the processor runs the built-in pack only", sigma)
		rep.notes = append(rep.notes, "The SigmaHQ corpus was absent: the processor ran the built-in pack only.")
	}
	mix, err := LoadMix(runID, samples, corpus, 5000)
	if err != nil {
		t.Fatal(err)
	}

	p.nats = e.StartNATS("nats-server")
	if err := p.connect(); err != nil {
		t.Fatal(err)
	}
	defer p.nc.Close()
	for _, path := range []string{p.auditPath, p.tetragonPath} {
		e.WriteFile(strings.TrimPrefix(path, e.Dir+"/"), "")
	}
	falcoPort := e.Ports(1)[0]
	p.falcoURL = fmt.Sprintf("http://127.0.0.1:%d/", falcoPort)
	p.startCollector(falcoPort)
	feeder, err := NewFeeder(mix, p.auditPath, p.tetragonPath, p.falcoURL)
	if err != nil {
		t.Fatal(err)
	}
	defer feeder.Close()

	// 1. The raw JetStream ceiling of this server, with records of the mix.
	ceilMix, err := LoadMix(runID+"c", samples, corpus, 5000)
	if err != nil {
		t.Fatal(err)
	}
	rep.rawPub, rep.rawCons, rep.rawBytes, err = rawCeiling(ctx, p.nc, ceilMix, ceilingN)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("raw JetStream: publish %.0f/s, consume %.0f/s (%d B/record)", rep.rawPub, rep.rawCons, rep.rawBytes)

	// 2. Each stage's ceiling: a burst handed to the collector with nothing
	// downstream running, then each stage started alone on the backlog the
	// one before left.
	rep.ceilings = stageCeilings(t, ctx, p, feeder, ceilingN)

	// 3. The sustained rate: stepped rates until a stage's backlog grows.
	rep.steps, rep.sustained = search(t, ctx, p, feeder, sinkNames, rates)
	base := rep.sustained
	if base == 0 {
		base = rates[0]
		rep.notes = append(rep.notes, fmt.Sprintf("No step kept every backlog flat; the latency phases use fractions of the lowest step (%d events/s).", rates[0]))
	}

	// 4. Latencies and resources at 25, 50 and 75 % of it.
	for _, pct := range []int{25, 50, 75} {
		rep.latency = append(rep.latency, latencyRun(t, ctx, p, feeder, base*pct/100, pct, latDur))
	}

	// 4b. The rest of the pipeline without the ClickHouse sink, which on
	// this machine is the development engine (chDB) sharing the two cores:
	// the rates above the sustained one again, with its process stopped.
	if env("CROWSNEST_BENCH_WITHOUT_CLICKHOUSE", "1") != "0" {
		if err := p.procs["sink-clickhouse"].Stop(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		delete(p.procs, "sink-clickhouse")
		var above []int
		for _, r := range rates {
			if r > rep.sustained {
				above = append(above, r)
			}
		}
		rep.stepsNoCH, rep.sustainedNoCH = search(t, ctx, p, feeder, []string{"file", "elasticsearch"}, above)
		if rep.sustainedNoCH == 0 {
			rep.sustainedNoCH = rep.sustained
		}
	}

	// 5. The peer, on audit records of the same mix.
	if benthos := os.Getenv("CROWSNEST_BENCH_BENTHOS"); benthos != "" {
		peerMix, err := LoadMix(runID+"p", samples, corpus, 5000)
		if err != nil {
			t.Fatal(err)
		}
		rep.peer, err = peerRun(ctx, e, bin.Crowsnest, benthos, filepath.Join(src, "bench", "peer", "config", "k8saudit.yaml"), peerMix, peerN)
		if err != nil {
			// The pipeline's figures stand without the peer's: report them.
			t.Errorf("peer: %v", err)
			rep.notes = append(rep.notes, fmt.Sprintf("The peer run failed: %v", err))
		}
	} else {
		rep.notes = append(rep.notes, "CROWSNEST_BENCH_BENTHOS unset: no peer run (scripts/bench-e2e.sh builds Benthos and sets it).")
	}
	rep.loadAfter = loadAvg()
	rep.finished = time.Now().UTC()

	md := rep.markdown()
	fmt.Println(md)
	if out := os.Getenv("CROWSNEST_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// search runs the stepped rates in order until one is not flat, then one
// midpoint between the last flat step and it when they are 1.5× or more
// apart, and returns the steps and the highest flat rate (0: none).
func search(t *testing.T, ctx context.Context, p *pipeline, f *Feeder, sinks []string, rates []int) ([]step, int) {
	t.Helper()
	var steps []step
	var lastPass, firstFail int
	for _, rate := range rates {
		r := stepRun(t, ctx, p, f, sinks, rate, stepDur(t))
		steps = append(steps, r)
		if !r.pass {
			firstFail = rate
			break
		}
		lastPass = rate
	}
	lo := lastPass
	if lo == 0 && firstFail > 0 {
		lo = firstFail / 2 // the step below the first tried
	}
	if firstFail > 0 && firstFail >= lo*3/2 && lo > 0 {
		mid := (lo + firstFail) / 2
		r := stepRun(t, ctx, p, f, sinks, mid, stepDur(t))
		steps = append(steps, r)
		if r.pass {
			lastPass = max(lastPass, mid)
		}
	}
	return steps, lastPass
}

func stepDur(t *testing.T) time.Duration { return envDuration(t, "CROWSNEST_BENCH_STEP", "30s") }

func cleanupStores(t *testing.T, p *pipeline) {
	if os.Getenv("CROWSNEST_BENCH_KEEP") != "" {
		t.Logf("kept ClickHouse database %s and Elasticsearch data streams *-%s", p.db, p.ns)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := harness.ClickHouseDropDatabase(ctx, p.chURL, p.db); err != nil {
		t.Logf("cleanup: %v", err)
	}
	if err := harness.ElasticsearchEmptyDataStreams(ctx, p.esURL, "logs-crowsnest.*-"+p.ns); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// rawCeiling publishes n records of mix to a scratch stream of the same
// server (file storage, a Nats-Msg-Id each, async with up to 4096 in
// flight), then consumes them with a pull consumer acking each: the bare
// JetStream cost every stage pays, without any of a stage's work.
func rawCeiling(ctx context.Context, nc *nats.Conn, mix *Mix, n int) (pub, cons float64, avgBytes int, err error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return 0, 0, 0, err
	}
	const name = "BENCH_RAW_CEILING"
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench.ceiling"}, Storage: jetstream.FileStorage, Duplicates: 10 * time.Minute})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("raw ceiling: %w", err)
	}
	defer func() { _ = js.DeleteStream(context.Background(), name) }()
	msgs := make([]*nats.Msg, n)
	total := 0
	now := time.Now()
	for i := range msgs {
		r, err := mix.Next(now)
		if err != nil {
			return 0, 0, 0, err
		}
		m := nats.NewMsg("bench.ceiling")
		m.Data = r.Line
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("c-%d", i))
		msgs[i] = m
		total += len(r.Line)
	}
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, n)
	for _, m := range msgs {
		// A loaded machine can hold 4096 acks back longer than the
		// default 200 ms stall wait: wait, as a publisher would.
		f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute))
		if err != nil {
			return 0, 0, 0, fmt.Errorf("raw ceiling publish: %w", err)
		}
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		return 0, 0, 0, errors.New("raw ceiling: publishes not acknowledged within 5 minutes")
	}
	pub = float64(n) / time.Since(start).Seconds()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return 0, 0, 0, fmt.Errorf("raw ceiling publish: %w", err)
		}
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 8192})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("raw ceiling consumer: %w", err)
	}
	start = time.Now()
	got := 0
	for got < n {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return 0, 0, 0, fmt.Errorf("raw ceiling fetch: %w", err)
		}
		k := 0
		for m := range batch.Messages() {
			if err := m.Ack(); err != nil {
				return 0, 0, 0, fmt.Errorf("raw ceiling ack: %w", err)
			}
			k++
		}
		if k == 0 {
			return 0, 0, 0, fmt.Errorf("raw ceiling: fetched %d of %d, then nothing", got, n)
		}
		got += k
	}
	cons = float64(n) / time.Since(start).Seconds()
	return pub, cons, total / n, nil
}
