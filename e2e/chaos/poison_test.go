package chaos

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// TestPoisonSmoke is scenario 6 in CI size: 3 poison events, max_deliver 3.
func TestPoisonSmoke(t *testing.T) {
	if requireSmokeOrFull(t) {
		poison(t, poisonSpec{records: 9000, rate: 300, poison: 3, maxDeliver: 3, redelivery: 3 * time.Second, budget: 3 * time.Minute})
	} else {
		t.Skip("the full run has TestPoison")
	}
}

// TestPoison is issue #9's scenario 6: events Elasticsearch fails on every
// time (a fault-injecting proxy answers their documents 500, forever, while
// the rest of each _bulk is written) are retried by the sink until the
// consumer's max_deliver, then land in the dead-letter stream with their
// reason; the other events' collector-to-Elasticsearch latency while they
// are retried is compared with a clean period of the same run.
//
// A sink's consumers default to max_deliver -1 (a store outage must never
// become loss), so a poison document is retried for ever there; a bounded
// max_deliver is what turns it into a dead letter, and this scenario sets
// one (consumers.sink.max_deliver) as a user who wants that would.
func TestPoison(t *testing.T) {
	requireFull(t)
	poison(t, poisonSpec{records: scaled(t, 30_000, 6000), rate: 500, poison: 10, maxDeliver: 4, redelivery: 5 * time.Second, budget: 8 * time.Minute})
}

type poisonSpec struct {
	records, rate, poison, maxDeliver int
	redelivery                        time.Duration
	budget                            time.Duration
}

func poison(t *testing.T, spec poisonSpec) {
	chURL, esURL := storeURLs(t)
	rnd := rng(t)
	env := newEnv(t)
	topo := fmt.Sprintf("topology:\n  consumers:\n    sink:\n      max_deliver: %d\n", spec.maxDeliver)
	r := newStoreRun(t, env, "poison", spec.records, spec.budget, chURL, esURL, topo)
	cleanupStores(t, chURL, r.db, esURL, r.ns)
	// Poison events among the records fed between 40% and 50%, leaving a
	// clean first 40% to compare with.
	var poisonIDs []string
	isPoison := map[string]bool{}
	for _, i := range pickSpread(rnd, spec.poison, spec.records*4/10, spec.records/2) {
		id := r.log.EventIDs[i]
		poisonIDs = append(poisonIDs, id)
		isPoison[id] = true
	}
	proxy, err := harness.NewFaultProxy(esURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })

	// When Elasticsearch acknowledged each other document, and when each
	// poison document arrived (the last arrival is its last delivery).
	var mu sync.Mutex
	storedAt := map[string]time.Time{}
	var poisonFirst, poisonLast time.Time
	proxy.SetRule(func(req *harness.ProxyRequest) harness.Decision {
		if !req.Bulk {
			return harness.Decision{}
		}
		now := time.Now()
		mu.Lock()
		for _, it := range req.Items {
			if isPoison[it.ID] {
				if poisonFirst.IsZero() {
					poisonFirst = now
				}
				poisonLast = now
			}
		}
		mu.Unlock()
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

	alerts := r.finish(func(t *testing.T) []string { return poisonIDs })
	checkPoisonDeadLetters(t, r.d.nats.URL, isPoison, spec.maxDeliver)
	// ClickHouse has every event; Elasticsearch every one but the poison.
	checkStores(t, chURL, r.db, esURL, r.ns, true, false, r.log.EventIDs, alerts)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		kind string
		want int
	}{{"events", len(r.log.EventIDs) - len(poisonIDs)}, {"alerts", len(alerts.Count)}} {
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
	for _, id := range poisonIDs {
		t.Logf("poison %s: sent to Elasticsearch %d times", id, items[id].Arrived)
	}

	// Latency of the other events: fed before any poison arrived (clean),
	// and fed while poison was being retried.
	mu.Lock()
	defer mu.Unlock()
	var clean, during []time.Duration
	for _, id := range r.log.EventIDs {
		sent, ok := r.feed.sent(id)
		stored, seen := storedAt[id]
		if !ok || !seen || isPoison[id] {
			continue
		}
		switch {
		case sent.Before(poisonFirst):
			clean = append(clean, stored.Sub(sent))
		case !sent.After(poisonLast):
			during = append(during, stored.Sub(sent))
		}
	}
	window := poisonLast.Sub(poisonFirst)
	cs, ds := latencySummary(clean), latencySummary(during)
	t.Logf("collector-to-Elasticsearch latency of the other events: clean period %s; while poison was retried (%s) %s",
		cs, window.Round(time.Millisecond), ds)
	if len(clean) == 0 || len(during) == 0 {
		t.Fatalf("no latency samples to compare: %d clean, %d during the poison", len(clean), len(during))
	}
	// Unaffected: the p99 during the poison stays within the clean p99 plus
	// a second (the flush interval) — a poison document that blocked its
	// batch's neighbours would add its retries' backoff to them.
	if limit := percentile(clean, 99) + time.Second; percentile(during, 99) > limit {
		t.Errorf("p99 of the other events while poison was retried is %s, over the clean p99 + 1 s (%s)", percentile(during, 99), limit)
	}
	t.Logf("scenario took %s", time.Since(r.start).Round(time.Second))
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
	re := badMarker(log)
	dl, err := harness.StreamCensus(ctx, js, topology.DeadLetterStream, func(m jetstream.Msg) (string, error) {
		if mk := re.Find(m.Data()); mk != nil {
			return string(mk), nil
		}
		return harness.EventID(m.Data())
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("dead-letter stream (bad lines and poison events):")
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

// checkPoisonDeadLetters checks each poison event's dead-letter record: from
// the Elasticsearch sink, saying why, after maxDeliver deliveries.
func checkPoisonDeadLetters(t *testing.T, url string, isPoison map[string]bool, maxDeliver int) {
	t.Helper()
	nc, js, err := harness.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := 0
	_, err = harness.StreamCensus(ctx, js, topology.DeadLetterStream, func(m jetstream.Msg) (string, error) {
		id, err := harness.EventID(m.Data())
		if err != nil || !isPoison[id] {
			return "", err
		}
		seen++
		h := m.Headers()
		stage, reason, count := h.Get(headers.Stage), h.Get(headers.Error), h.Get(headers.DeliveryCount)
		if seen == 1 {
			t.Logf("poison dead-letter record: subject %s, stage %s, delivery count %s, reason %q", m.Subject(), stage, count, reason)
		}
		if stage != "sink-elasticsearch" || !strings.Contains(reason, "500") || count != strconv.Itoa(maxDeliver) {
			t.Errorf("poison %s dead-lettered by %q after %s deliveries with reason %q; want sink-elasticsearch, %d, a 500", id, stage, count, reason, maxDeliver)
		}
		return id, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(isPoison) {
		t.Errorf("%d poison dead-letter records, want %d", seen, len(isPoison))
	}
}
