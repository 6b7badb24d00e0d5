package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// TestPoisonSmoke is scenario 6 in CI size: 3 poison events for the
// Elasticsearch sink, 2 for the processor, max_deliver 3.
func TestPoisonSmoke(t *testing.T) {
	if requireSmokeOrFull(t) {
		poison(t, poisonSpec{records: 9000, rate: 300, sinkPoison: 3, procPoison: 2, maxDeliver: 3, redelivery: 3 * time.Second, budget: 3 * time.Minute, looseLatency: true})
	} else {
		t.Skip("the full run has TestPoison")
	}
}

// TestPoison is issue #9's scenario 6: records the pipeline fails on every
// time it tries, while the rest flows.
//
//   - For the Elasticsearch sink, events whose documents Elasticsearch
//     answers 500 every time (a fault-injecting proxy fails just those items
//     of each _bulk; the rest is written). The sink retries them until the
//     sink consumers' max_deliver, then dead-letters them.
//   - For the processor, audit records whose event is larger than the
//     events stream's max_msg_size (an operator's limit, set on the stream
//     out of band): JetStream refuses the event each time, the processor
//     retries the input until its consumer's max_deliver, then dead-letters
//     it.
//
// Each lands in the dead-letter stream once, from the right stage, with its
// reason and delivery count. The other events' collector-to-Elasticsearch
// latency while poison is being retried is compared with a clean period of
// the same run.
//
// A sink's consumers default to max_deliver -1 (a store outage must never
// become loss), so there a poison document is retried for ever; a bounded
// max_deliver is what turns it into a dead letter, and this scenario sets
// one (consumers.sink.max_deliver) as a user who wants that would.
func TestPoison(t *testing.T) {
	requireFull(t)
	poison(t, poisonSpec{records: scaled(t, 30_000, 6000), rate: 500, sinkPoison: 10, procPoison: 5, maxDeliver: 4, redelivery: 5 * time.Second, budget: 8 * time.Minute})
}

type poisonSpec struct {
	records, rate          int
	sinkPoison, procPoison int
	maxDeliver             int // of the sink's and the processor's consumers
	redelivery             time.Duration
	budget                 time.Duration
	looseLatency           bool // the smoke's latency bound (see poison)
}

// eventsMaxMsgSize is the events stream's max_msg_size in this scenario:
// far above a generated record's event (a few KiB), below the processor
// poison's (its event.original alone is cut at 16 KiB).
const eventsMaxMsgSize = 12 << 10

func poison(t *testing.T, spec poisonSpec) {
	chURL, esURL := storeURLs(t)
	rnd := rng(t)
	env := newEnv(t)
	// The processor's redeliveries: its retry_delay apart (2 s), no
	// backoff steps.
	topo := fmt.Sprintf("topology:\n  consumers:\n    sink:\n      max_deliver: %d\n    processor:\n      max_deliver: %d\n      backoff: []\n", spec.maxDeliver, spec.maxDeliver)
	r := newStoreRun(t, env, "poison", spec.records, spec.budget, chURL, esURL, topo)
	cleanupStores(t, chURL, r.db, esURL, r.ns)
	// Poison among the records fed between 40% and 50%, leaving a clean
	// first 40% to compare with.
	var sinkPoison []string
	isPoison := map[string]bool{}
	for _, i := range pickSpread(rnd, spec.sinkPoison, spec.records*4/10, spec.records/2) {
		id := r.log.EventIDs[i]
		sinkPoison = append(sinkPoison, id)
		isPoison[id] = true
	}
	procMarkers, procIDs, err := insertProcessorPoison(r.log, spec.procPoison, rnd)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := harness.NewFaultProxy(esURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })

	// When Elasticsearch acknowledged each other document.
	var mu sync.Mutex
	storedAt := map[string]time.Time{}
	proxy.SetRule(func(req *harness.ProxyRequest) harness.Decision {
		if !req.Bulk {
			return harness.Decision{}
		}
		return harness.Decision{
			Action: harness.FailItems, Status: 500,
			Fail: func(_ int, it harness.BulkItem) bool { return isPoison[it.ID] },
			Hold: func(req *harness.ProxyRequest) {
				at := time.Now()
				mu.Lock()
				defer mu.Unlock()
				for _, it := range req.Items {
					if _, seen := storedAt[it.ID]; !seen && !isPoison[it.ID] {
						storedAt[it.ID] = at
					}
				}
			},
		}
	})
	r.startSink(proxy.URL(), fmt.Sprintf("      retry:\n        redelivery_delay: %s\n", spec.redelivery))
	r.startFeed(spec.rate)
	setEventsMaxMsgSize(t, r.d.nats.URL, eventsMaxMsgSize)

	alerts := r.finish(func(t *testing.T) []string { return append(slices.Clone(sinkPoison), procMarkers...) })
	lastDead := checkPoisonDeadLetters(t, r.d.nats.URL, isPoison, procMarkers, r.log.Prefix, spec.maxDeliver)
	// ClickHouse has every event; Elasticsearch every one but the poison.
	checkStores(t, chURL, r.db, esURL, r.ns, true, false, r.log.EventIDs, alerts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		kind string
		want int
	}{{"events", len(r.log.EventIDs) - len(sinkPoison)}, {"alerts", len(alerts.Count)}} {
		index := fmt.Sprintf("logs-crowsnest.%s-%s", tc.kind, r.ns)
		n, err := harness.ElasticsearchCount(ctx, esURL, index)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("elasticsearch %s: %d documents", index, n)
		if n != tc.want {
			t.Errorf("elasticsearch %s: %d documents, want %d", index, n, tc.want)
		}
	}
	items := proxy.Items()
	for _, id := range sinkPoison {
		t.Logf("sink poison %s: sent to Elasticsearch %d times", id, items[id].Arrived)
	}

	// The poison period runs from the first poison record fed to the last
	// poison dead-lettered.
	var firstPoison time.Time
	for _, id := range append(slices.Clone(sinkPoison), procIDs...) {
		if at, ok := r.feed.sent(id); ok && (firstPoison.IsZero() || at.Before(firstPoison)) {
			firstPoison = at
		}
	}
	if firstPoison.IsZero() || lastDead.IsZero() {
		t.Fatalf("no poison period: first poison fed %v, last dead-lettered %v", firstPoison, lastDead)
	}
	mu.Lock()
	defer mu.Unlock()
	var clean, during []time.Duration
	for i, id := range r.log.EventIDs {
		sent, ok := r.feed.sent(id)
		stored, seen := storedAt[id]
		// The first tenth is the pipeline warming up (the sink installs
		// its templates before its first write): not the clean baseline.
		if !ok || !seen || isPoison[id] || i < len(r.log.EventIDs)/10 {
			continue
		}
		switch {
		case sent.Before(firstPoison):
			clean = append(clean, stored.Sub(sent))
		case !sent.After(lastDead):
			during = append(during, stored.Sub(sent))
		}
	}
	cs, ds := latencySummary(clean), latencySummary(during)
	t.Logf("collector-to-Elasticsearch latency of the other events: clean period %s; while poison was retried (%s) %s",
		cs, lastDead.Sub(firstPoison).Round(time.Millisecond), ds)
	if len(clean) == 0 || len(during) == 0 {
		t.Fatalf("no latency samples to compare: %d clean, %d during the poison", len(clean), len(during))
	}
	// Unaffected: the p99 during the poison stays within the clean p99 plus
	// a second (the flush interval) — poison that held up its neighbours
	// would add its retries' backoff (seconds) to them. The smoke runs inside
	// `make test` beside other load on a 2-core machine, where a 14 s window
	// of one run can be slower than another for reasons of its own, so its
	// bound is looser (2× the clean p99 plus 3 s): it still fails when the
	// neighbours wait out a redelivery (3 s) each.
	limit, bound := percentile(clean, 99)+time.Second, "the clean p99 + 1 s"
	if spec.looseLatency {
		limit, bound = 2*percentile(clean, 99)+3*time.Second, "2 × the clean p99 + 3 s"
	}
	if percentile(during, 99) > limit {
		t.Errorf("p99 of the other events while poison was retried is %s, over %s (%s)", percentile(during, 99), bound, limit)
	}
	t.Logf("scenario took %s", time.Since(r.start).Round(time.Second))
}

// insertProcessorPoison adds n audit records whose event is too large for
// the events stream to the log, among its lines between 40% and 50%, and
// returns their markers (their auditIDs, found in the dead-letter record)
// and event ids.
func insertProcessorPoison(log harness.AuditLog, n int, rnd *rand.Rand) (markers, ids []string, err error) {
	data, err := os.ReadFile(log.Path)
	if err != nil {
		return nil, nil, err
	}
	lines := strings.SplitAfter(string(data), "\n")
	at := map[int]string{}
	blob := strings.Repeat("x", 20<<10)
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for k, i := range pickSpread(rnd, n, len(lines)*4/10, len(lines)/2) {
		marker := fmt.Sprintf("%s-ppoison-%02d", log.Prefix, k)
		id, err := msgid.K8sAudit(marker, "ResponseComplete")
		if err != nil {
			return nil, nil, err
		}
		markers, ids = append(markers, marker), append(ids, id)
		at[i] = fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":%q,"stage":"ResponseComplete","requestURI":"/apis/example.com/v1/namespaces/ns-1/widgets","verb":"create","user":{"username":"alice@example.com","groups":["developers"]},"sourceIPs":["192.0.2.7"],"objectRef":{"resource":"widgets","namespace":"ns-1","name":"big-%d","apiGroup":"example.com","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"kind":"Widget","apiVersion":"example.com/v1","metadata":{"name":"big-%d"},"spec":{"text":%q}},"requestReceivedTimestamp":%q,"stageTimestamp":%q}`+"\n",
			marker, k, k, blob, ts, ts)
	}
	var b strings.Builder
	for i, l := range lines {
		if p, ok := at[i]; ok {
			b.WriteString(p)
		}
		b.WriteString(l)
	}
	return markers, ids, os.WriteFile(log.Path, []byte(b.String()), 0o640)
}

// setEventsMaxMsgSize lowers the events stream's max_msg_size, as an
// operator might, after every stage has ensured the topology.
func setEventsMaxMsgSize(t *testing.T, url string, size int32) {
	t.Helper()
	nc, js, err := harness.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, topology.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = size
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("set %s max_msg_size: %v", topology.EventsStream, err)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return harness.Percentile(s, p)
}

func latencySummary(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s p99 %s max %s (%d events)", percentile(d, 50).Round(time.Millisecond),
		percentile(d, 99).Round(time.Millisecond), percentile(d, 100).Round(time.Millisecond), len(d))
}

// checkStreamsPlus is checkStreams for a run whose dead-letter stream must
// hold the bad lines and the events of extra (dead-lettered by a sink).
func checkStreamsPlus(t *testing.T, url string, log harness.AuditLog, extra []string) *harness.Census {
	t.Helper()
	nc, js, err := harness.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ev, err := harness.StreamCensus(ctx, js, topology.EventsStream, harness.MsgEventID)
	if err != nil {
		t.Fatal(err)
	}
	report(t, ev.Compare(log.EventIDs))
	bad, proc := badMarker(log), procPoisonMarker(log.Prefix)
	dl, err := harness.StreamCensus(ctx, js, topology.DeadLetterStream, func(m jetstream.Msg) (string, error) {
		if mk := bad.Find(m.Data()); mk != nil {
			return string(mk), nil
		}
		if mk := proc.Find(m.Data()); mk != nil {
			return string(mk), nil
		}
		return harness.EventID(m.Data())
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("dead-letter stream (bad lines, processor and sink poison):")
	report(t, dl.Compare(append(slices.Clone(log.Bad), extra...)))
	al, err := harness.StreamCensus(ctx, js, topology.AlertsStream, harness.MsgEventID)
	if err != nil {
		t.Fatal(err)
	}
	if al.Records != len(al.Count) || al.Unreadable > 0 {
		t.Errorf("alerts stream: %d messages, %d unique alert ids, %d unreadable", al.Records, len(al.Count), al.Unreadable)
	}
	return al
}

func procPoisonMarker(prefix string) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(prefix) + `-ppoison-[0-9]{2}`)
}

// checkPoisonDeadLetters checks each poison record's dead-letter record:
// from the right stage, saying why, after maxDeliver deliveries. It returns
// when the last of them was stored.
func checkPoisonDeadLetters(t *testing.T, url string, sinkPoison map[string]bool, procMarkers []string, prefix string, maxDeliver int) time.Time {
	t.Helper()
	nc, js, err := harness.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	proc := procPoisonMarker(prefix)
	var last time.Time
	seen := map[string]int{}
	_, err = harness.StreamCensus(ctx, js, topology.DeadLetterStream, func(m jetstream.Msg) (string, error) {
		wantStage, wantReason := "processor", "event not stored"
		id := string(proc.Find(m.Data()))
		if id == "" {
			eid, err := harness.EventID(m.Data())
			if err != nil || !sinkPoison[eid] {
				return "", err
			}
			id, wantStage, wantReason = eid, "sink-elasticsearch", "500"
		}
		if md, err := m.Metadata(); err == nil && md.Timestamp.After(last) {
			last = md.Timestamp
		}
		h := m.Headers()
		stage, reason, count := h.Get(headers.Stage), h.Get(headers.Error), h.Get(headers.DeliveryCount)
		if seen[wantStage] == 0 {
			t.Logf("%s poison dead-letter record: subject %s, stage %s, delivery count %s, reason %q", wantStage, m.Subject(), stage, count, reason)
		}
		seen[wantStage]++
		if stage != wantStage || !strings.Contains(reason, wantReason) || count != strconv.Itoa(maxDeliver) {
			t.Errorf("poison %s dead-lettered by %q after %s deliveries with reason %q; want %s, %d, %q", id, stage, count, reason, wantStage, maxDeliver, wantReason)
		}
		return id, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen["sink-elasticsearch"] != len(sinkPoison) || seen["processor"] != len(procMarkers) {
		t.Errorf("poison dead-letter records: %v, want %d from sink-elasticsearch and %d from processor", seen, len(sinkPoison), len(procMarkers))
	}
	return last
}
