package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

// planKills picks kills progress points spread over the run: one at random
// inside each of kills equal slices of 5%..90% of total, so every kill lands
// mid-stream whatever the machine's speed.
func planKills(r *rand.Rand, kills, total int) []int {
	at := make([]int, kills)
	for k := range at {
		lo := int(float64(total) * (0.05 + 0.85*float64(k)/float64(kills)))
		hi := int(float64(total) * (0.05 + 0.85*float64(k+1)/float64(kills)))
		at[k] = lo + r.IntN(max(hi-lo, 1))
	}
	return at
}

// killRecord is what one kill did, for the report.
type killRecord struct {
	At        int           // progress when killed
	When      time.Time     // when killed
	Restart   time.Duration // kill to ready again
	Resumed   time.Duration // kill to progress past At again
	resumedOK bool
}

// killer drives kills at planned progress points.
type killer struct {
	t        *testing.T
	name     string
	progress func() (int, error)
	// crash kills (SIGKILL) and start starts again (waiting for readiness).
	crash, start func()
	deadline     time.Time
	// total is the progress that means done: recovery is not awaited past
	// it (a kill that lands after the last event has nothing to resume).
	total int
}

// poll waits until progress reaches at (or passes the deadline: fatal).
func (k *killer) poll(at int) int {
	k.t.Helper()
	var last error
	for {
		n, err := k.progress()
		if err == nil && n >= at {
			return n
		}
		last = err
		if time.Now().After(k.deadline) {
			k.t.Fatalf("%s: progress did not reach %d before the deadline (last error: %v)", k.name, at, last)
		}
		// Short: a small run can go from one kill point past the next
		// within a few polls.
		time.Sleep(25 * time.Millisecond)
	}
}

// run performs a kill at each point of plan and returns the records.
func (k *killer) run(plan []int) []killRecord {
	k.t.Helper()
	var out []killRecord
	for i, at := range plan {
		n := k.poll(at)
		t0 := time.Now()
		k.crash()
		k.start()
		rec := killRecord{At: n, When: t0, Restart: time.Since(t0)}
		// Recovery: how long until the pipeline moves again past the point
		// of the kill (bounded; the next kill point waits anyway).
		for n < k.total && time.Since(t0) < 2*time.Minute && time.Now().Before(k.deadline) {
			if m, err := k.progress(); err == nil && m > n {
				rec.Resumed, rec.resumedOK = time.Since(t0), true
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		k.t.Logf("%s kill %d/%d at progress %d: ready again after %s, moving again after %s",
			k.name, i+1, len(plan), n, rec.Restart.Round(time.Millisecond), resumed(rec))
		out = append(out, rec)
	}
	return out
}

func resumed(r killRecord) string {
	if !r.resumedOK {
		return "(not measured: the kill came after the last event, or nothing moved)"
	}
	return r.Resumed.Round(time.Millisecond).String()
}

// waitSettled waits until progress reaches total and then holds still for
// settle: late redeliveries (duplicates) would show up in that time.
func (k *killer) waitSettled(total int, settle time.Duration) int {
	k.t.Helper()
	n := k.poll(total)
	since := time.Now()
	for time.Since(since) < settle {
		time.Sleep(250 * time.Millisecond)
		m, err := k.progress()
		if err != nil {
			continue
		}
		if m != n {
			n, since = m, time.Now()
		}
		if time.Now().After(k.deadline) {
			k.t.Fatalf("%s: did not hold still for %s before the deadline (at %d)", k.name, settle, m)
		}
	}
	return n
}

func summarize(recs []killRecord) string {
	if len(recs) == 0 {
		return "no kills"
	}
	var maxRestart, maxResumed, sumResumed time.Duration
	measured := 0
	for _, r := range recs {
		maxRestart = max(maxRestart, r.Restart)
		if r.resumedOK {
			measured++
			sumResumed += r.Resumed
			maxResumed = max(maxResumed, r.Resumed)
		}
	}
	s := fmt.Sprintf("%d kills; restart to ready max %s", len(recs), maxRestart.Round(time.Millisecond))
	if measured > 0 {
		s += fmt.Sprintf("; moving again mean %s, max %s", (sumResumed / time.Duration(measured)).Round(time.Millisecond), maxResumed.Round(time.Millisecond))
	}
	return s
}

// streamMsgs is the message count of stream at url: a cheap progress measure.
func streamMsgs(url, stream string) func() (int, error) {
	return func() (int, error) {
		nc, js, err := harness.Connect(url)
		if err != nil {
			return 0, err
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return 0, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int(info.State.Msgs), nil
	}
}

// waitDrained waits until every named sink's durable consumers on the events
// and alerts streams at url have nothing pending and nothing unacknowledged:
// all the stream holds is in the store. Messages delivered to a killed
// process come back only after the consumer's ack wait, so this can take
// that long after the last kill. It returns how long it waited.
func waitDrained(t *testing.T, url string, deadline time.Time, sinks ...string) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		left, err := sinkBacklog(url, sinks)
		if err == nil && left == 0 {
			return time.Since(start)
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d messages pending or unacknowledged", left)
		}
		if time.Now().After(deadline) {
			t.Fatalf("sinks %v not drained before the deadline: %s", sinks, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func sinkBacklog(url string, sinks []string) (int, error) {
	nc, js, err := harness.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	left := 0
	for _, name := range sinks {
		durable, err := topology.SinkConsumerName(name)
		if err != nil {
			return 0, err
		}
		for _, stream := range []string{topology.EventsStream, topology.AlertsStream} {
			c, err := js.Consumer(ctx, stream, durable)
			if err != nil {
				return 0, fmt.Errorf("consumer %s on %s: %w", durable, stream, err)
			}
			info, err := c.Info(ctx)
			if err != nil {
				return 0, err
			}
			left += int(info.NumPending) + info.NumAckPending
		}
	}
	return left, nil
}

// checkStreams takes the census of the events stream (every generated id
// once) and of the dead-letter stream (exactly the bad lines) at url, and
// returns the alerts stream's census for comparison with a store.
func checkStreams(t *testing.T, url string, log harness.AuditLog) *harness.Census {
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
	checkDeadLetters(t, ctx, js, log)
	al, err := harness.StreamCensus(ctx, js, topology.AlertsStream, harness.MsgEventID)
	if err != nil {
		t.Fatal(err)
	}
	if log.AlertRecords > 0 && len(al.Count) == 0 {
		t.Errorf("alerts stream: no alert, though %d records should raise one", log.AlertRecords)
	}
	if al.Records != len(al.Count) || al.Unreadable > 0 {
		t.Errorf("alerts stream: %d messages, %d unique alert ids, %d unreadable", al.Records, len(al.Count), al.Unreadable)
	}
	t.Logf("alerts stream: %d alerts (%d records written to raise one)", al.Records, log.AlertRecords)
	return al
}

func checkDeadLetters(t *testing.T, ctx context.Context, js jetstream.JetStream, log harness.AuditLog) {
	t.Helper()
	re := badMarker(log)
	dl, err := harness.StreamCensus(ctx, js, topology.DeadLetterStream, harness.MarkerOf(re))
	if err != nil {
		t.Fatal(err)
	}
	report(t, dl.Compare(log.Bad))
}

// report logs a tally and fails the test unless it is exactly once.
func report(t *testing.T, tally harness.Tally) {
	t.Helper()
	if tally.OK() {
		t.Logf("OK %s", tally)
		return
	}
	t.Errorf("NOT EXACTLY ONCE %s", tally)
}

// ids returns the keys of a census: the expected set when a stream is the
// reference for a store.
func ids(c *harness.Census) []string {
	out := make([]string, 0, len(c.Count))
	for id := range c.Count {
		out = append(out, id)
	}
	return out
}

// badMarker matches the marker of a generated bad line.
func badMarker(log harness.AuditLog) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(log.Prefix) + `-bad-[0-9]{4}`)
}
