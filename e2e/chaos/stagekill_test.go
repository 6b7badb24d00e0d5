package chaos

import (
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// Issue #9's scenario 1 for the sinks: each sink process killed with
// SIGKILL 20 times during a 100k-record run. Behind ClickHouse and
// Elasticsearch sits a HoldProxy, and every second kill lands between a
// store write and its JetStream ack: the store has the batch, the sink
// never hears so, and the restarted sink gets the same messages again —
// which must not become a second row or document.
//
// The sink's ack wait is cut to 10 s (default 1 min), as in TestKillSink:
// the restarted sink gets nothing until what the dead one held comes back.

func TestKillSinkFile(t *testing.T) {
	requireFull(t)
	killSink(t, "sink-file", scaled(t, 100_000, 5000), 20, 20*time.Minute)
}

func TestKillSinkClickHouse(t *testing.T) {
	requireFull(t)
	killSink(t, "sink-clickhouse", scaled(t, 100_000, 5000), 20, 20*time.Minute)
}

func TestKillSinkElasticsearch(t *testing.T) {
	requireFull(t)
	killSink(t, "sink-elasticsearch", scaled(t, 100_000, 5000), 20, 20*time.Minute)
}

func killSink(t *testing.T, name string, records, kills int, budget time.Duration) {
	store := sinkStores[name][0]
	killStage(t, pipelineSpec{prefix: "skill", records: records, badEvery: 20_000, budget: budget,
		sinks: []string{name}, sinkAckWait: 10 * time.Second,
		proxyClickHouse: store == "clickhouse", proxyElasticsearch: store == "elasticsearch"},
		name, kills, func(p *pipeline) func() (int, error) { return sinkAcked(p.nats.URL, store) })
}

// TestKillStagesSmoke is the CI-sized scenario 1: one pipeline of 4,000
// records fed to a live log at 400 lines/s, with three sink processes
// (file, ClickHouse, Elasticsearch). The collector, the processor and the
// file sink are each killed once at random points of the first 60 %; then
// the ClickHouse and Elasticsearch sinks are both armed and each killed
// between its next store write and that write's ack. Every id is checked in
// the streams, the files and both stores. Ack waits are cut to 5 s so what
// each killed process held comes back quickly.
func TestKillStagesSmoke(t *testing.T) {
	requireSmoke(t)
	records := 4000
	r := rng(t)
	p := newPipeline(t, pipelineSpec{prefix: "ksmoke", records: records, badEvery: 1000, budget: 3 * time.Minute,
		sinks:       []string{"sink-file", "sink-clickhouse", "sink-elasticsearch"},
		sinkAckWait: 5 * time.Second, processorAckWait: 5 * time.Second,
		proxyClickHouse: true, proxyElasticsearch: true, feedRate: 400})
	stages := []string{"collector", "processor", "sink-file"}
	plan := planKills(r, len(stages), records*6/10)
	for i, stage := range stages {
		progress := eventsProgress(p)
		if stage == "sink-file" {
			progress = sinkAcked(p.nats.URL, "file")
		}
		k := p.killer(stage, progress)
		t.Logf("%s: %s", stage, summarize(k.run(plan[i:i+1])))
	}

	held := []string{"sink-clickhouse", "sink-elasticsearch"}
	armed := map[string]<-chan harness.Held{}
	for _, stage := range held {
		store := sinkStores[stage][0]
		armed[store] = p.holds[store].Arm()
	}
	t0 := time.Now()
	// Both are killed before either restarts: neither waits on its held
	// answer long enough to time out and retry meanwhile.
	for _, stage := range held {
		store := sinkStores[stage][0]
		p.killHeld(stage, store, armed[store], func() { p.kill(t, stage) })
	}
	for _, stage := range held {
		p.start(stage)
	}
	t.Logf("%v killed with a write held and ready again %s after arming", held, time.Since(t0).Round(time.Millisecond))
	p.verify()
}
