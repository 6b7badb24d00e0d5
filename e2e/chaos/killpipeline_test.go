package chaos

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// pipelineSpec is what a kill scenario varies about the pipeline it runs:
// a generated audit log tailed by crowsnest-collector into a standalone
// nats-server, crowsnest-processor, and sink processes.
type pipelineSpec struct {
	prefix   string // run id prefix: ids, ClickHouse database, data streams
	records  int    // valid audit records
	badEvery int    // a malformed line after every badEvery records
	budget   time.Duration
	// sinks are the sink processes, keys of sinkStores.
	sinks []string
	// sinkAckWait and processorAckWait, when set, cut the consumers' ack
	// waits: what a killed process held comes back that much sooner.
	sinkAckWait, processorAckWait time.Duration
	// natsSync is JetStream's sync_interval ("" the server default, "always").
	natsSync string
	// proxyClickHouse and proxyElasticsearch put a HoldProxy between the
	// sinks and that store (needs a sink of that store).
	proxyClickHouse, proxyElasticsearch bool
	// feedRate, when set, makes the collector tail a live log that the
	// generated records are appended to at that many lines per second
	// (else it reads the whole generated file at its own pace).
	feedRate int
	// beforeCollector, when set, runs once the sinks and the processor are
	// up and before the collector starts: before any event flows.
	beforeCollector func(*pipeline)
}

// pipeline is a running pipelineSpec.
type pipeline struct {
	*deployment
	t     *testing.T
	spec  pipelineSpec
	log   harness.AuditLog
	began time.Time // after the build: the figures are the scenario's
	// chURL and esURL are the real stores (checks read them); id is the
	// ClickHouse database and the data-stream namespace.
	chURL, esURL, id string
	// holds are the HoldProxies in front of the stores, by sink store.
	holds map[string]*harness.HoldProxy
	// flowing is when the collector started: events flow from then on.
	flowing time.Time
	// fed reports the end of a live feed (feedRate).
	fed chan error
}

func (p *pipeline) deadline() time.Time { return p.began.Add(p.spec.budget) }

// stores reports whether any sink process writes to store.
func (s pipelineSpec) stores(store string) bool {
	return slices.ContainsFunc(s.sinks, func(name string) bool { return slices.Contains(sinkStores[name], store) })
}

// newPipeline generates the audit log and starts the pipeline: sinks
// first, then the processor, then the collector, so nothing waits on a
// stage that is not there yet.
func newPipeline(t *testing.T, spec pipelineSpec) *pipeline {
	t.Helper()
	p := &pipeline{t: t, spec: spec, id: runID(spec.prefix), holds: map[string]*harness.HoldProxy{}}
	if spec.stores("clickhouse") || spec.stores("elasticsearch") {
		p.chURL, p.esURL = storeURLs(t)
	}
	env := newEnv(t)
	p.began = time.Now()
	if p.chURL != "" {
		cleanupStores(t, p.chURL, p.id, p.esURL, p.id)
	}
	var err error
	p.log, err = harness.WriteAuditLog(env.Path("audit.log"), harness.AuditSpec{
		Prefix: p.id, Records: spec.records, BadEvery: spec.badEvery, AlertEvery: max(spec.records/20, 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d records, %d malformed lines, %d alerting records", len(p.log.EventIDs), len(p.log.Bad), p.log.AlertRecords)

	var topo strings.Builder
	if spec.sinkAckWait > 0 || spec.processorAckWait > 0 {
		topo.WriteString("topology:\n  consumers:\n")
		if spec.sinkAckWait > 0 {
			fmt.Fprintf(&topo, "    sink:\n      ack_wait: %s\n", spec.sinkAckWait)
		}
		if spec.processorAckWait > 0 {
			// The default backoff (1m, 5m) would otherwise set the
			// redelivery delays.
			fmt.Fprintf(&topo, "    processor:\n      ack_wait: %s\n      backoff: [%s]\n", spec.processorAckWait, spec.processorAckWait)
		}
	}
	p.deployment = &deployment{env: env, nats: env.StartNATSSync("nats", spec.natsSync), topology: topo.String(),
		specs: map[string]harness.Spec{}, procs: map[string]*harness.Proc{}, ports: map[string]int{}}

	chWrite, esWrite := p.chURL, p.esURL
	for store, on := range map[string]bool{"clickhouse": spec.proxyClickHouse, "elasticsearch": spec.proxyElasticsearch} {
		if !on {
			continue
		}
		target, match := p.chURL, harness.ClickHouseInsertInto("events", "alerts")
		if store == "elasticsearch" {
			target, match = p.esURL, harness.ElasticsearchBulk
		}
		hp, err := harness.StartHoldProxy(target, match)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hp.Close() })
		p.holds[store] = hp
		if store == "clickhouse" {
			chWrite = hp.URL
		} else {
			esWrite = hp.URL
		}
	}
	for _, name := range spec.sinks {
		p.sink(name, chWrite, p.id, esWrite, p.id)
	}
	p.processor()
	if spec.beforeCollector != nil {
		spec.beforeCollector(p)
	}
	p.flowing = time.Now()
	if spec.feedRate == 0 {
		p.collector(p.log.Path)
		return p
	}
	live := env.Path("live.log")
	if err := touch(live); err != nil {
		t.Fatal(err)
	}
	p.collector(live)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p.fed = make(chan error, 1)
	go func() { p.fed <- appendAtRate(ctx, p.log.Path, live, spec.feedRate, &counter{}) }()
	return p
}

// killer returns a killer of stage name ("collector", "processor", a sink
// process, or "nats" for the nats-server) measuring progress with progress.
func (p *pipeline) killer(name string, progress func() (int, error)) *killer {
	k := &killer{t: p.t, name: name, progress: progress, deadline: p.deadline(), total: p.spec.records}
	if name == "nats" {
		k.name = "nats-server"
		k.crash = func() {
			if err := p.nats.Proc.Kill(); err != nil {
				p.t.Fatal(err)
			}
		}
		k.start = p.nats.Restart
		return k
	}
	k.crash = func() { p.kill(p.t, name) }
	k.start = func() { p.start(name) }
	return k
}

// heldKills makes every second kill of k (the first, third, ...) land
// between a store write and its acknowledgement: the HoldProxy in front of
// store lets the sink's next write reach the store, holds the store's
// answer, and the sink is killed while it waits for it. The write is
// stored, the JetStream messages it carried are not acked, and come back
// to the restarted sink. It returns how many kills were held.
func (p *pipeline) heldKills(k *killer, store string) *int {
	hp := p.holds[store]
	if hp == nil {
		p.t.Fatalf("no hold proxy in front of %s", store)
	}
	kill := k.crash
	n, held := 0, new(int)
	k.crash = func() {
		n++
		if n%2 == 0 {
			kill()
			return
		}
		if p.killHeld(k.name, store, hp.Arm(), kill) {
			*held++
		}
	}
	return held
}

// killHeld waits for the write armed (the channel of HoldProxy.Arm) to be
// held, runs kill, and disarms the proxy. A write that does not come within
// a minute fails the test; the stage is then killed anyway.
func (p *pipeline) killHeld(name, store string, armed <-chan harness.Held, kill func()) bool {
	defer p.holds[store].Disarm()
	select {
	case h := <-armed:
		kill()
		p.t.Logf("%s: killed with a write held: %s %s (%d bytes) answered %d by the store (%s)",
			name, h.Method, h.Path, h.RequestBytes, h.Status, writeSummary(store, h))
		if h.Status/100 != 2 {
			p.t.Errorf("%s: the held write was refused by the store (%d): not a write-before-ack kill", name, h.Status)
			return false
		}
		return true
	case <-time.After(time.Minute):
		p.t.Errorf("%s: no write to %s within a minute of arming; killed anyway", name, store)
		kill()
		return false
	}
}

// writeSummary says what a held write stored.
func writeSummary(store string, h harness.Held) string {
	if store == "elasticsearch" {
		body, err := h.Body()
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%d items created, %d already there", strings.Count(string(body), `"status":201`), strings.Count(string(body), `"status":409`))
	}
	q, err := url.ParseQuery(h.Query)
	if err != nil {
		return err.Error()
	}
	stmt, _, _ := strings.Cut(q.Get("query"), "(")
	return strings.TrimSpace(stmt)
}

// sinkAcked measures a sink's progress as the events its consumer has
// acknowledged: the stream's messages less those not yet delivered and
// those delivered and not yet acked. Unlike the ack floor it moves as soon
// as a restarted sink acks anything, and unlike a store count it is the
// same measure for every sink.
func sinkAcked(url, store string) func() (int, error) {
	return func() (int, error) {
		nc, js, err := harness.Connect(url)
		if err != nil {
			return 0, err
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		durable, err := topology.SinkConsumerName(store)
		if err != nil {
			return 0, err
		}
		s, err := js.Stream(ctx, topology.EventsStream)
		if err != nil {
			return 0, err
		}
		si, err := s.Info(ctx)
		if err != nil {
			return 0, err
		}
		c, err := s.Consumer(ctx, durable)
		if err != nil {
			return 0, err
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int(si.State.Msgs) - int(ci.NumPending) - ci.NumAckPending, nil
	}
}

// verify waits for the events stream to settle and the sinks to drain,
// then checks every id: the events stream and the dead-letter stream, each
// sink's files or store, and that no stage exited on its own.
func (p *pipeline) verify() {
	t := p.t
	t.Helper()
	if p.fed != nil {
		if err := <-p.fed; err != nil {
			t.Fatalf("feeding the live log: %v", err)
		}
	}
	ev := p.killer("events", streamMsgs(p.nats.URL, topology.EventsStream))
	n := ev.waitSettled(p.spec.records, 5*time.Second)
	settled := time.Since(p.began)
	t.Logf("events stream settled at %d messages after %s (%.0f records/s end to end)", n, settled.Round(time.Second), float64(p.spec.records)/settled.Seconds())
	for name, proc := range p.procs {
		if exited, err := proc.Exited(); exited {
			t.Errorf("%s exited on its own: %v; see %s", name, err, proc.LogPath())
		}
	}
	alerts := checkStreams(t, p.nats.URL, p.log)
	var stores []string
	for _, name := range p.spec.sinks {
		stores = append(stores, sinkStores[name]...)
	}
	drained := waitDrained(t, p.nats.URL, p.deadline(), stores...)
	t.Logf("sinks %v drained %s after the events stream settled", stores, drained.Round(time.Second))
	for _, name := range p.spec.sinks {
		if slices.Contains(sinkStores[name], "file") {
			checkFiles(t, p.env.Path(name, "data", "files"), p.log, alerts)
		}
	}
	if p.spec.stores("clickhouse") || p.spec.stores("elasticsearch") {
		checkStores(t, p.chURL, p.id, p.esURL, p.id, p.spec.stores("clickhouse"), p.spec.stores("elasticsearch"), p.log.EventIDs, alerts)
	}
	t.Logf("scenario took %s", time.Since(p.began).Round(time.Second))
}

// killStage is scenario 1 for one stage: kills SIGKILLs of stage at random
// progress points (measured by progress), restarts each time, then verify.
// For a sink behind a HoldProxy, every second kill is a held one.
func killStage(t *testing.T, spec pipelineSpec, stage string, kills int, progress func(*pipeline) func() (int, error)) {
	r := rng(t)
	p := newPipeline(t, spec)
	k := p.killer(stage, progress(p))
	var held *int
	for store, hp := range p.holds {
		if hp != nil && slices.Contains(sinkStores[stage], store) {
			held = p.heldKills(k, store)
		}
	}
	recs := k.run(planKills(r, kills, spec.records))
	t.Logf("%s: %s", stage, summarize(recs))
	if len(recs) > 0 {
		// The rate before the first fault, for comparison with the end to
		// end rate verify logs.
		d := recs[0].When.Sub(p.flowing)
		t.Logf("before the first kill: progress %d in %s (%.0f/s)", recs[0].At, d.Round(time.Millisecond), float64(recs[0].At)/d.Seconds())
	}
	if held != nil {
		t.Logf("%s: %d of %d kills between a store write and its ack", stage, *held, kills)
	}
	p.verify()
}
