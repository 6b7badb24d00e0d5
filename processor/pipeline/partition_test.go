package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// processed is the order in which every replica normalized inputs, across
// replicas: what a correlation would see.
type processed struct {
	mu  sync.Mutex
	log []step
}

type step struct {
	replica string
	entity  int
	seq     int
}

// recording wraps the real normalizer to log each input it is handed.
type recording struct {
	pipeline.Normalizer
	replica string
	into    *processed
}

func (r recording) NormalizeEach(rec *normalize.Record, ev *schemas.Event, emit func(*schemas.Event, error) error) error {
	var entity, seq int
	if _, err := fmt.Sscanf(rec.ID, "e%03d-%05d", &entity, &seq); err == nil {
		r.into.mu.Lock()
		r.into.log = append(r.into.log, step{r.replica, entity, seq})
		r.into.mu.Unlock()
	}
	return r.Normalizer.NormalizeEach(rec, ev, emit)
}

// entityEvent is event seq of entity: an audit request in namespace ns-<entity>.
func entityEvent(entity, seq int) []byte {
	return fmt.Appendf(nil, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"e%03d-%05d","stage":"ResponseComplete",`+
		`"requestURI":"/api/v1/namespaces/ns-%d/pods","verb":"list","user":{"username":"alice"},"sourceIPs":["10.0.0.1"],`+
		`"objectRef":{"resource":"pods","namespace":"ns-%d","apiVersion":"v1"},"responseStatus":{"code":200},`+
		`"requestReceivedTimestamp":"2026-11-26T10:00:00.000000Z","stageTimestamp":"2026-11-26T10:00:00.010000Z"}`, entity, seq, entity, entity)
}

type replicaRun struct {
	id     string
	nc     *nats.Conn
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

type cluster struct {
	srv  *embedded.Server
	js   jetstream.JetStream
	tcfg topology.Config
	proc processed
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	tcfg := topology.NewDefaultConfig()
	tcfg.Consumers.Processor.AckWait = 5 * time.Second
	tcfg.Consumers.Processor.Backoff = nil
	tcfg.Consumers.Processor.PinnedTTL = 2 * time.Second
	if err := topology.Ensure(context.Background(), js, tcfg); err != nil {
		t.Fatal(err)
	}
	return &cluster{srv: srv, js: js, tcfg: tcfg}
}

// start runs one replica on its own connection, as a separate process would.
func (c *cluster) start(t *testing.T, id string) *replicaRun {
	t.Helper()
	nc, js := natstest.Connect(t, c.srv)
	cfg := pipeline.NewDefaultConfig()
	cfg.Detect.Enabled = false
	cfg.Enrich.Enabled = false
	cfg.FetchBatch = 50
	cfg.Partitions.ReplicaID = id
	cfg.Partitions.Lease = 1500 * time.Millisecond
	reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg.Normalize, reg)
	if err != nil {
		t.Fatal(err)
	}
	preg := prometheus.NewRegistry()
	p, err := pipeline.New(js, recording{Normalizer: norm, replica: id, into: &c.proc}, deadletter.NewPublisher(js), cfg, pipeline.Settings{
		Sources:    []string{topology.SourceK8sAudit},
		Consumer:   c.tcfg.Consumers.Processor,
		Partitions: c.tcfg.Partitions,
		Registerer: preg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replicaRun{id: id, nc: nc, reg: preg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Errorf("replica %s did not stop", id)
		}
	})
	return r
}

// stop cancels a replica and waits for a clean return.
func (r *replicaRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("replica %s: Run = %v", r.id, err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatalf("replica %s did not stop", r.id)
	}
}

func (r *replicaRun) owned() float64 {
	return testutil.ToFloat64(gaugeOf(r.reg, "crowsnest_processor_partitions_owned"))
}

func gaugeOf(reg *prometheus.Registry, name string) prometheus.Collector {
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, m := range mf.GetMetric() {
					ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "", nil, nil), prometheus.GaugeValue, m.GetGauge().GetValue())
				}
			}
		}
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// publish sends events [from, to) of every entity, interleaved across
// entities and in order within each, keyed as the collectors key them.
func (c *cluster) publish(t *testing.T, entities, from, to int) {
	t.Helper()
	var futs []jetstream.PubAckFuture
	for seq := from; seq < to; seq++ {
		for e := range entities {
			subj, err := topology.RawSubject(topology.SourceK8sAudit, "c1", topology.KeyToken(fmt.Sprintf("ns/ns-%d", e)))
			if err != nil {
				t.Fatal(err)
			}
			m := nats.NewMsg(subj)
			m.Data = entityEvent(e, seq)
			m.Header.Set(headers.MsgID, fmt.Sprintf("e%03d-%05d", e, seq))
			m.Header.Set(headers.Node, "node-1")
			f, err := c.js.PublishMsgAsync(m)
			if err != nil {
				t.Fatal(err)
			}
			futs = append(futs, f)
		}
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("publish not acknowledged")
		}
	}
}

func (c *cluster) eventCount(t *testing.T) int {
	t.Helper()
	return int(natstest.StreamMsgs(t, c.js, topology.EventsStream))
}

func (c *cluster) waitEvents(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for c.eventCount(t) < n {
		if time.Now().After(deadline) {
			t.Fatalf("events stream holds %d, want %d", c.eventCount(t), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// check verifies the events stream holds every event exactly once with each
// entity's events in order, and that the replicas processed each entity's
// inputs once each, in order, whichever replica had it.
func (c *cluster) check(t *testing.T, entities, perEntity int) map[string]int {
	t.Helper()
	want := entities * perEntity
	if got := c.eventCount(t); got != want {
		t.Fatalf("events stream holds %d, want %d", got, want)
	}
	s, err := c.js.Stream(context.Background(), topology.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	last := make([]int, entities)
	for i := range last {
		last[i] = -1
	}
	seen := map[string]bool{}
	for seq := uint64(1); seq <= uint64(want); seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		id := m.Header.Get(headers.MsgID)
		if seen[id] {
			t.Fatalf("event %s stored twice", id)
		}
		seen[id] = true
		var e, n int
		if _, err := fmt.Sscanf(strings.TrimSuffix(id, "-ResponseComplete"), "e%03d-%05d", &e, &n); err != nil {
			t.Fatalf("event id %q: %v", id, err)
		}
		if n != last[e]+1 {
			c.proc.mu.Lock()
			var trail []string
			for _, st := range c.proc.log {
				if st.entity == e {
					trail = append(trail, fmt.Sprintf("%s:%d", st.replica, st.seq))
				}
			}
			c.proc.mu.Unlock()
			t.Fatalf("events stream: entity %d event %d follows event %d; processed %v", e, n, last[e], trail)
		}
		last[e] = n
	}

	c.proc.mu.Lock()
	defer c.proc.mu.Unlock()
	next := make([]int, entities)
	owners := map[string]int{}
	for _, st := range c.proc.log {
		if st.seq != next[st.entity] {
			t.Fatalf("entity %d: replica %s processed event %d, expected %d (out of order or twice)", st.entity, st.replica, st.seq, next[st.entity])
		}
		next[st.entity]++
		owners[st.replica]++
	}
	return owners
}

// waitBalanced waits until rs own every partition between them, each at
// least two.
func (c *cluster) waitBalanced(t *testing.T, rs ...*replicaRun) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var total float64
		balanced := true
		var got []float64
		for _, r := range rs {
			total += r.owned()
			balanced = balanced && r.owned() >= 2
			got = append(got, r.owned())
		}
		if total == float64(c.tcfg.Partitions) && balanced {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas own %v of %d partitions", got, c.tcfg.Partitions)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Three replicas share the partitions; every entity's events reach one
// replica at a time, in order, and every output is stored exactly once.
func TestThreeReplicasKeepPerEntityOrder(t *testing.T) {
	const entities, perEntity = 24, 60
	c := newCluster(t)
	rs := []*replicaRun{c.start(t, "r1"), c.start(t, "r2"), c.start(t, "r3")}
	c.publish(t, entities, 0, perEntity/2)
	// Replicas settle their shares while the first half flows.
	c.waitBalanced(t, rs...)
	c.publish(t, entities, perEntity/2, perEntity)
	c.waitEvents(t, entities*perEntity)
	owners := c.check(t, entities, perEntity)
	t.Logf("inputs processed per replica: %v", owners)
	for _, r := range rs {
		if owners[r.id] == 0 {
			t.Errorf("replica %s processed nothing: %v", r.id, owners)
		}
	}
}

// Stopping a replica mid-run hands its partitions over: the others finish
// its entities, nothing lost, nothing processed twice, order kept.
func TestStoppedReplicaHandsOver(t *testing.T) {
	const entities, perEntity = 24, 60
	c := newCluster(t)
	r1, r2, r3 := c.start(t, "r1"), c.start(t, "r2"), c.start(t, "r3")
	c.publish(t, entities, 0, perEntity/3)
	c.waitEvents(t, entities*perEntity/3)
	c.waitBalanced(t, r1, r2, r3)
	// Stop r2 while more arrive.
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.publish(t, entities, perEntity/3, perEntity)
	}()
	r2.stop(t)
	<-done
	c.waitEvents(t, entities*perEntity)
	owners := c.check(t, entities, perEntity)
	if got := r1.owned() + r3.owned(); got != float64(c.tcfg.Partitions) {
		t.Errorf("after r2 stopped, r1 and r3 own %v of %d partitions", got, c.tcfg.Partitions)
	}
	if owners["r1"] == 0 || owners["r3"] == 0 {
		t.Errorf("processing by replica: %v", owners)
	}
	// r2's partitions moved: the survivors count acquisitions beyond their
	// first share.
	acquired := testutil.ToFloat64(counterOf(t, r1.reg, "acquired")) + testutil.ToFloat64(counterOf(t, r3.reg, "acquired"))
	if acquired < float64(c.tcfg.Partitions) {
		t.Errorf("survivors acquired %v partitions in all, want at least %d (their shares and r2's)", acquired, c.tcfg.Partitions)
	}
}

func counterOf(t *testing.T, reg *prometheus.Registry, direction string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "crowsnest_processor_partition_handovers_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "direction" && l.GetValue() == direction {
						ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "", nil, nil), prometheus.CounterValue, m.GetCounter().GetValue())
					}
				}
			}
		}
	})
}

// A replica killed mid-run (its connection gone without a word: no drain,
// no release) loses its partitions after one lease: the survivors take them
// over, the records it had fetched come back after ack_wait, and every
// output is stored exactly once.
func TestKilledReplicaPartitionsTakenOver(t *testing.T) {
	const entities, perEntity = 16, 40
	c := newCluster(t)
	r1, r2 := c.start(t, "r1"), c.start(t, "r2")
	c.waitBalanced(t, r1, r2)
	c.publish(t, entities, 0, perEntity/2)
	c.waitEvents(t, entities*perEntity/4)
	r2.nc.Close() // SIGKILL, as far as NATS can tell
	start := time.Now()
	c.publish(t, entities, perEntity/2, perEntity)
	c.waitEvents(t, entities*perEntity)
	t.Logf("all events stored %s after the kill", time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(10 * time.Second)
	for r1.owned() != float64(c.tcfg.Partitions) {
		if time.Now().After(deadline) {
			t.Fatalf("r1 owns %v of %d partitions after r2 died", r1.owned(), c.tcfg.Partitions)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Exactly once in the events stream, whatever was redelivered.
	s, err := c.js.Stream(context.Background(), topology.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for seq := uint64(1); seq <= uint64(entities*perEntity); seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		id := m.Header.Get(headers.MsgID)
		if seen[id] {
			t.Fatalf("event %s stored twice", id)
		}
		seen[id] = true
	}
	if got := c.eventCount(t); got != entities*perEntity {
		t.Fatalf("events stream holds %d, want %d", got, entities*perEntity)
	}
	// The raw stream is empty: nothing left unprocessed.
	raw, err := c.js.Stream(context.Background(), "CROWSNEST_RAW_K8S_AUDIT")
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		info, err := raw.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("raw stream still holds %d records", info.State.Msgs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A processor configured for another partition count than the raw streams
// have refuses to start, rather than leave partitions nobody consumes.
func TestPartitionCountMismatchRefused(t *testing.T) {
	c := newCluster(t)
	_, js := natstest.Connect(t, c.srv)
	cfg := pipeline.NewDefaultConfig()
	cfg.Detect.Enabled = false
	reg, err := normalize.NewRegistry(cfg.Normalize, k8saudit.NewFactory())
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg.Normalize, reg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(js, norm, deadletter.NewPublisher(js), cfg, pipeline.Settings{
		Sources: []string{topology.SourceK8sAudit}, Consumer: c.tcfg.Consumers.Processor, Partitions: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "CROWSNEST_RAW_K8S_AUDIT has 8 partitions, the processor is configured for 4") {
		t.Fatalf("Run = %v, want a partition count mismatch", err)
	}
}
