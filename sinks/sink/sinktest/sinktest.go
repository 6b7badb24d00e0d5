package sinktest

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/nats-io/nats.go/jetstream"
)

// Harness tells the suite how to open the sink under test and read its store.
type Harness struct {
	// Name is the sink's name: its consumer is sink-<Name>.
	Name string
	// NewStore returns an empty store for one test.
	NewStore func(tb testing.TB) Store
	// ExactlyOnce is true when the sink claims that a redelivered record is
	// stored once (idempotent by stream sequence or by id); the suite then
	// checks every record is stored exactly once, crash included.
	ExactlyOnce bool
	// Reject is a body the real sink rejects permanently (malformed JSON,
	// say), or nil if it has none; then the suite injects the rejection.
	Reject []byte
	// RunnerConfig adjusts the suite's runner config, if set.
	RunnerConfig func(*sink.RunnerConfig)
}

// Store is the store one test writes to. Open may be called several times
// (a restart after a crash) and every sink it returns sees the same store.
type Store interface {
	// Open returns a new sink over the store.
	Open(tb testing.TB) sink.Sink
	// Stored returns how many times each record id is in the store. It is
	// called after the sinks were closed (a crashed one may still be open).
	Stored(tb testing.TB) map[string]int
}

const settleTimeout = 20 * time.Second

// Run runs the conformance suite, each test against its own server.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Name == "" || h.NewStore == nil {
		t.Fatal("sinktest: Harness needs Name and NewStore")
	}
	tests := []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"AtLeastOnce", testAtLeastOnce},
		{"CrashBeforeAck", testCrashBeforeAck},
		{"PermanentRecord", testPermanentRecord},
		{"InjectedPermanentRecord", testInjectedPermanentRecord},
		{"RetryableFaults", testRetryableFaults},
		{"LastDeliveryDeadLetters", testLastDelivery},
		{"DrainFlushes", testDrainFlushes},
		{"SlowWriteKeptAlive", testSlowWrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, h)
		})
	}
}

// running is a runner started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(tb testing.TB, h Harness, js jetstream.JetStream, s sink.Sink, adjust ...func(*sink.RunnerConfig, *sink.Settings)) *running {
	tb.Helper()
	cfg := RunnerConfig()
	if h.RunnerConfig != nil {
		h.RunnerConfig(&cfg)
	}
	set := Settings(tb)
	for _, a := range adjust {
		a(&cfg, &set)
	}
	r, err := sink.New(js, h.Name, s, cfg, set)
	if err != nil {
		tb.Fatalf("new runner: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-run.done:
		case <-time.After(settleTimeout):
		}
	})
	return run
}

// stop cancels the runner and waits for Run to return its error.
func (r *running) stop(tb testing.TB) error {
	tb.Helper()
	r.cancel()
	return r.wait(tb)
}

func (r *running) wait(tb testing.TB) error {
	tb.Helper()
	select {
	case err := <-r.done:
		r.done <- err // later waits (cleanup) see it too
		return err
	case <-time.After(settleTimeout):
		tb.Fatalf("runner did not return %s after shutdown", settleTimeout)
		return nil
	}
}

// checkStored fails unless every id is stored (exactly once when the sink
// claims it) and nothing else is.
func checkStored(tb testing.TB, h Harness, stored map[string]int, ids []string) {
	tb.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
		n := stored[id]
		switch {
		case n == 0:
			tb.Errorf("record %s: not stored", id)
		case n > 1 && h.ExactlyOnce:
			tb.Errorf("record %s: stored %d times, the sink claims exactly once", id, n)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(stored)) {
		if !want[id] {
			tb.Errorf("record %s: stored, never published", id)
		}
	}
}

// checkFloor fails if the runner gave s a redelivered record it had already
// reported settled (at or below the ack floor).
func checkFloor(tb testing.TB, s *FaultInjectingSink) {
	tb.Helper()
	if ids := s.BelowFloor(); len(ids) > 0 {
		tb.Errorf("records %v written again after the ack floor passed them", ids)
	}
}

func testAtLeastOnce(t *testing.T, h Harness) {
	env := NewEnv(t)
	store := h.NewStore(t)
	msgs := append(Events("alo", 230), Alerts("alo", 20)...)
	Publish(t, env.JS, msgs)
	s := NewFaultInjectingSink(store.Open(t))
	run := start(t, h, env.JS, s)
	env.WaitSettled(t, h.Name, settleTimeout)
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkFloor(t, s)
	checkStored(t, h, store.Stored(t), IDs(msgs))
	if dl := env.DeadLetters(t); len(dl) != 0 {
		t.Errorf("%d dead letters, want none", len(dl))
	}
}

func testCrashBeforeAck(t *testing.T, h Harness) {
	env := NewEnv(t)
	store := h.NewStore(t)
	msgs := append(Events("crash", 230), Alerts("crash", 20)...)
	Publish(t, env.JS, msgs)

	// The unacknowledged batch comes back after the ack wait: keep it short.
	quick := func(_ *sink.RunnerConfig, set *sink.Settings) { set.Consumer.AckWait = 2 * time.Second }

	// First life: the connection dies right after the second write reached
	// the store, so its acks never leave.
	nc, js := env.Connect(t)
	first := NewFaultInjectingSink(store.Open(t)).CrashAfter(2, nc.Close)
	t.Cleanup(func() { _ = first.CloseCrashed(context.Background()) })
	run := start(t, h, js, first, quick)
	if err := run.wait(t); err == nil {
		t.Fatal("Run returned nil after its connection died; want an error")
	}
	if !first.Crashed() {
		t.Fatal("the crash was not injected")
	}

	// Second life: a fresh sink over the same store, a fresh connection.
	_, js2 := env.Connect(t)
	second := NewFaultInjectingSink(store.Open(t))
	run2 := start(t, h, js2, second, quick)
	env.WaitSettled(t, h.Name, settleTimeout)
	if err := run2.stop(t); err != nil {
		t.Fatalf("Run after restart: %v", err)
	}
	if second.MaxDelivered() < 2 {
		t.Fatal("no record was redelivered after the crash: the test proves nothing")
	}
	checkFloor(t, second)
	checkStored(t, h, store.Stored(t), IDs(msgs))
}

// checkDeadLetter fails unless dl is the dead letter of want.
func checkDeadLetter(tb testing.TB, h Harness, dl *jetstream.RawStreamMsg, want Message) {
	tb.Helper()
	if !bytes.Equal(dl.Data, want.Data) {
		tb.Errorf("dead letter body = %.80q, want the original %.80q", dl.Data, want.Data)
	}
	for k, v := range map[string]string{
		headers.Stage:         "sink-" + h.Name,
		headers.OriginalMsgID: want.ID,
		headers.Source:        "k8s_audit",
	} {
		if got := dl.Header.Get(k); got != v {
			tb.Errorf("dead letter header %s = %q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(dl.Subject, "crowsnest.dlq.sink-"+h.Name+".") {
		tb.Errorf("dead letter subject = %q", dl.Subject)
	}
	if dl.Header.Get(headers.Error) == "" {
		tb.Error("dead letter has no error header")
	}
	if n, err := strconv.Atoi(dl.Header.Get(headers.DeliveryCount)); err != nil || n < 1 {
		tb.Errorf("dead letter delivery count = %q", dl.Header.Get(headers.DeliveryCount))
	}
	if got := dl.Header.Get(headers.OriginalSubject); !strings.HasPrefix(got, "crowsnest.") {
		tb.Errorf("dead letter original subject = %q", got)
	}
}

func testPermanentRecord(t *testing.T, h Harness) {
	if h.Reject == nil {
		t.Skip("the sink has no record it rejects for good; InjectedPermanentRecord covers the path")
	}
	env := NewEnv(t)
	store := h.NewStore(t)
	events := Events("perm", 120)
	bad := Message{Kind: sink.KindEvents, ID: "perm-reject", Data: h.Reject}
	badAlert := Message{Kind: sink.KindAlerts, ID: "perm-reject-alert", Data: h.Reject}
	msgs := slices.Concat(events[:60], []Message{bad}, events[60:], Alerts("perm", 5), []Message{badAlert})
	Publish(t, env.JS, msgs)
	run := start(t, h, env.JS, store.Open(t))
	env.WaitSettled(t, h.Name, settleTimeout)
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	dl := env.DeadLetters(t)
	if len(dl) != 2 {
		t.Fatalf("%d dead letters, want exactly the 2 rejected records", len(dl))
	}
	byID := map[string]*jetstream.RawStreamMsg{}
	for _, m := range dl {
		byID[m.Header.Get(headers.OriginalMsgID)] = m
	}
	for _, want := range []Message{bad, badAlert} {
		if m := byID[want.ID]; m == nil {
			t.Errorf("no dead letter for %s", want.ID)
		} else {
			checkDeadLetter(t, h, m, want)
		}
	}
	good := slices.DeleteFunc(slices.Clone(msgs), func(m Message) bool { return m.ID == bad.ID || m.ID == badAlert.ID })
	checkStored(t, h, store.Stored(t), IDs(good))
}

func testInjectedPermanentRecord(t *testing.T, h Harness) {
	env := NewEnv(t)
	store := h.NewStore(t)
	msgs := append(Events("iperm", 120), Alerts("iperm", 10)...)
	bad := msgs[77]
	Publish(t, env.JS, msgs)
	s := NewFaultInjectingSink(store.Open(t)).FailPermanent(bad.ID)
	run := start(t, h, env.JS, s)
	env.WaitSettled(t, h.Name, settleTimeout)
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	dl := env.DeadLetters(t)
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want exactly 1", len(dl))
	}
	checkDeadLetter(t, h, dl[0], bad)
	if got := dl[0].Header.Get(headers.DeliveryCount); got != "1" {
		t.Errorf("delivery count = %q, want 1 (dead-lettered on first delivery, not retried)", got)
	}
	if n := s.Attempts(bad.ID); n != 1 {
		t.Errorf("permanently failing record written %d times, want 1", n)
	}
	checkFloor(t, s)
	good := slices.Concat(msgs[:77], msgs[78:])
	checkStored(t, h, store.Stored(t), IDs(good))
}

func testRetryableFaults(t *testing.T, h Harness) {
	env := NewEnv(t)
	store := h.NewStore(t)
	msgs := append(Events("retry", 150), Alerts("retry", 10)...)
	inProcess, redelivered := msgs[10].ID, msgs[120].ID
	Publish(t, env.JS, msgs)
	s := NewFaultInjectingSink(store.Open(t)).
		Outage(1).                    // the first call fails whole
		FailRetryable(inProcess, 1).  // written on the 2nd or 3rd in-process attempt
		FailRetryable(redelivered, 3) // outlasts 3 attempts: nak, redelivery
	run := start(t, h, env.JS, s)
	env.WaitSettled(t, h.Name, settleTimeout)
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := s.Attempts(inProcess); n < 2 {
		t.Errorf("record %s attempted %d times, want at least 2", inProcess, n)
	}
	if d := s.Delivered(inProcess); d != 1 {
		t.Errorf("record %s delivered %d times, want 1: in-process retries should have written it", inProcess, d)
	}
	if d := s.Delivered(redelivered); d < 2 {
		t.Errorf("record %s delivered %d times, want a redelivery after the in-process attempts ran out", redelivered, d)
	}
	if dl := env.DeadLetters(t); len(dl) != 0 {
		t.Errorf("%d dead letters, want none: retryable failures must not be dead-lettered", len(dl))
	}
	checkFloor(t, s)
	checkStored(t, h, store.Stored(t), IDs(msgs))
}

func testLastDelivery(t *testing.T, h Harness) {
	env := NewEnv(t)
	store := h.NewStore(t)
	msgs := append(Events("last", 60), Alerts("last", 5)...)
	bad := msgs[30]
	Publish(t, env.JS, msgs)
	s := NewFaultInjectingSink(store.Open(t)).FailRetryable(bad.ID, 1000)
	run := start(t, h, env.JS, s, func(c *sink.RunnerConfig, set *sink.Settings) {
		c.Retry.MaxAttempts = 2
		set.Consumer.MaxDeliver = 3
	})
	env.WaitSettled(t, h.Name, settleTimeout)
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	dl := env.DeadLetters(t)
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dl))
	}
	checkDeadLetter(t, h, dl[0], bad)
	if got := dl[0].Header.Get(headers.DeliveryCount); got != "3" {
		t.Errorf("delivery count = %q, want 3 (the last delivery)", got)
	}
	if n := s.Attempts(bad.ID); n != 6 {
		t.Errorf("record written %d times, want 6 (2 attempts on each of 3 deliveries)", n)
	}
	checkFloor(t, s)
	good := slices.Concat(msgs[:30], msgs[31:])
	checkStored(t, h, store.Stored(t), IDs(good))
}

func testDrainFlushes(t *testing.T, h Harness) {
	env := NewEnv(t)
	store := h.NewStore(t)
	msgs := append(Events("drain", 40), Alerts("drain", 4)...)
	Publish(t, env.JS, msgs)
	// Neither the count nor the timer can flush: only the drain can.
	s := NewFaultInjectingSink(store.Open(t))
	run := start(t, h, env.JS, s, func(c *sink.RunnerConfig, set *sink.Settings) {
		c.MaxBatchEvents = 100
		c.FlushInterval = 10 * time.Second
		set.Consumer.AckWait = 30 * time.Second
	})
	waitDelivered(t, env, h.Name, len(msgs))
	// Delivered by the server is not yet received by the client: give the
	// last messages time to cross the connection, so that the drain, not
	// AckWait, is what settles them.
	time.Sleep(200 * time.Millisecond)
	if n := s.Attempts(msgs[0].ID); n != 0 {
		t.Fatalf("record written before the drain (%d times): the test proves nothing", n)
	}
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	env.WaitSettled(t, h.Name, 5*time.Second)
	checkStored(t, h, store.Stored(t), IDs(msgs))
}

// waitDelivered waits until sink name's consumers hold n messages delivered
// and unacknowledged.
func waitDelivered(tb testing.TB, env *Env, name string, n int) {
	tb.Helper()
	deadline := time.Now().Add(settleTimeout)
	for {
		got := 0
		for _, k := range sink.Kinds() {
			if info := env.ConsumerInfo(tb, name, k); info != nil {
				got += info.NumAckPending
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d messages delivered after %s", got, n, settleTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testSlowWrite(t *testing.T, h Harness) {
	env := NewEnv(t)
	store := h.NewStore(t)
	msgs := append(Events("slow", 60), Alerts("slow", 5)...)
	Publish(t, env.JS, msgs)
	// The write outlasts the ack wait more than twice: only InProgress keeps
	// JetStream from redelivering the batch under it (and the batch queued
	// behind it). The ack wait is several keep-alive periods long, and long
	// enough that a scheduler stalled for a few seconds on a loaded 2-core CI
	// machine (race detector, packages testing in parallel) is not mistaken
	// for a missing keep-alive.
	const ackWait = 4 * time.Second
	s := NewFaultInjectingSink(store.Open(t)).Slow(1, ackWait*9/4)
	run := start(t, h, env.JS, s, func(_ *sink.RunnerConfig, set *sink.Settings) { set.Consumer.AckWait = ackWait })
	env.WaitSettled(t, h.Name, settleTimeout)
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := s.MaxDelivered(); d != 1 {
		t.Errorf("a record was delivered %d times: the slow batch was not kept alive", d)
	}
	checkFloor(t, s)
	checkStored(t, h, store.Stored(t), IDs(msgs))
}
