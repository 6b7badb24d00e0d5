package publish_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
)

// bus is an embedded server with crowsnest's streams, and a connection.
type bus struct {
	srv *embedded.Server
	cfg embedded.Config
	nc  *nats.Conn
	js  jetstream.JetStream
}

func startBus(t testing.TB) *bus {
	t.Helper()
	cfg := natstest.Config(t)
	srv := natstest.StartWith(t, cfg)
	nc, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := topology.Ensure(ctx, js, topology.NewDefaultConfig()); err != nil {
		t.Fatalf("ensure topology: %v", err)
	}
	return &bus{srv: srv, cfg: cfg, nc: nc, js: js}
}

func testConfig() publish.Config {
	cfg := publish.NewDefaultConfig()
	cfg.CollectorID = "test-collector"
	cfg.Node = "node-a"
	cfg.Retry.InitialBackoff = 10 * time.Millisecond
	cfg.Retry.MaxBackoff = 100 * time.Millisecond
	return cfg
}

type fixture struct {
	*bus
	pub *publish.Publisher
	reg *prometheus.Registry
}

func newFixture(t testing.TB, cfg publish.Config, mod ...func(*publish.Settings)) *fixture {
	t.Helper()
	b := startBus(t)
	return newFixtureOn(t, b, b.nc, cfg, mod...)
}

func newFixtureOn(t testing.TB, b *bus, nc *nats.Conn, cfg publish.Config, mod ...func(*publish.Settings)) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics, err := telemetry.NewComponentMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := publish.Settings{Conn: nc, Metrics: metrics, Registerer: reg}
	for _, m := range mod {
		m(&s)
	}
	pub, err := publish.New(cfg, s)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = pub.Close(ctx) // tests that care check Close themselves
	})
	return &fixture{bus: b, pub: pub, reg: reg}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func streamMsgs(t testing.TB, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := testCtx(t)
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s get %d: %v", name, seq, err)
		}
		out = append(out, m)
	}
	return out
}

func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func TestPublishStoresWithHeadersAndSubject(t *testing.T) {
	f := newFixture(t, testConfig())
	ctx := testCtx(t)
	observed := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	data := []byte(`{"kind":"Event","auditID":"a1","stage":"ResponseComplete"}`)
	rec := publish.Record{Source: topology.SourceK8sAudit, Data: data, ID: "a1-ResponseComplete", Observed: observed, Key: "ns/default"}
	if err := f.pub.Publish(ctx, rec); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	// A record without an id gets one from its content.
	falco := []byte(`{"rule":"Terminal shell in container"}`)
	if err := f.pub.Publish(ctx, publish.Record{Source: topology.SourceFalco, Data: falco}); err != nil {
		t.Fatalf("Publish falco: %v", err)
	}

	msgs := streamMsgs(t, f.js, "CROWSNEST_RAW_K8S_AUDIT")
	if len(msgs) != 1 {
		t.Fatalf("k8s audit stream holds %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	// Stored under the partition the server computed from the key's token;
	// the key itself never reaches the subject.
	if st, ok := topology.ParseRawStored(m.Subject); !ok || st.Collector != "test-collector" || st.Key != topology.KeyToken("ns/default") ||
		strings.Contains(m.Subject, "default") {
		t.Errorf("subject = %q", m.Subject)
	}
	if fm := streamMsgs(t, f.js, "CROWSNEST_RAW_FALCO"); len(fm) != 1 {
		t.Errorf("falco stream holds %d messages, want 1", len(fm))
	} else if st, ok := topology.ParseRawStored(fm[0].Subject); !ok || st.Key != topology.KeyToken("node/node-a") {
		t.Errorf("a record without a key is keyed by its collector's node; subject = %q", fm[0].Subject)
	}
	if !bytes.Equal(m.Data, data) {
		t.Errorf("data = %q, want %q", m.Data, data)
	}
	want := map[string]string{
		headers.MsgID:     "a1-ResponseComplete",
		headers.Source:    "k8s_audit",
		headers.Collector: "test-collector",
		headers.Node:      "node-a",
		headers.Observed:  "2026-01-02T03:04:05.0000006Z",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}

	fm := streamMsgs(t, f.js, "CROWSNEST_RAW_FALCO")
	if len(fm) != 1 {
		t.Fatalf("falco stream holds %d messages, want 1", len(fm))
	}
	if got, want := fm[0].Header.Get(headers.MsgID), msgid.FromContent("falco", falco); got != want {
		t.Errorf("content id = %q, want %q", got, want)
	}
	if obs, err := headers.ParseTime(fm[0].Header.Get(headers.Observed)); err != nil || time.Since(obs) > time.Minute {
		t.Errorf("observed defaulted to %v (%v), want about now", obs, err)
	}

	labels := map[string]string{"component_kind": "collector", "component_id": "k8s_audit"}
	if got := metricValue(t, f.reg, telemetry.MetricSentEvents, labels); got != 1 {
		t.Errorf("sent = %v, want 1", got)
	}
	if got := metricValue(t, f.reg, telemetry.MetricReceivedEvents, labels); got != 1 {
		t.Errorf("received = %v, want 1", got)
	}
	if got := metricValue(t, f.reg, publish.MetricPublishSeconds, map[string]string{"source": "k8s_audit"}); got != 1 {
		t.Errorf("publish_seconds count = %v, want 1", got)
	}
}

func TestSameIDStoredOnce(t *testing.T) {
	f := newFixture(t, testConfig())
	ctx := testCtx(t)
	recs := []publish.Record{
		{Source: topology.SourceK8sAudit, Data: []byte(`{"v":1}`), ID: "same-id"},
		{Source: topology.SourceK8sAudit, Data: []byte(`{"v":2}`), ID: "same-id"}, // a re-send after a crash
		{Source: topology.SourceFalco, Data: []byte(`{"same":"content"}`)},
		{Source: topology.SourceFalco, Data: []byte(`{"same":"content"}`)},
	}
	if err := f.pub.PublishBatch(ctx, recs); err != nil {
		t.Fatalf("PublishBatch: %v", err)
	}
	if err := f.pub.Publish(ctx, recs[0]); err != nil { // later, alone
		t.Fatalf("Publish: %v", err)
	}
	if n := len(streamMsgs(t, f.js, "CROWSNEST_RAW_K8S_AUDIT")); n != 1 {
		t.Errorf("k8s audit stream holds %d messages, want 1", n)
	}
	if n := len(streamMsgs(t, f.js, "CROWSNEST_RAW_FALCO")); n != 1 {
		t.Errorf("falco stream holds %d messages, want 1", n)
	}
}

func TestOversizedGoesToDeadLetter(t *testing.T) {
	cfg := testConfig()
	cfg.MaxEventBytes = 2 * config.KiB
	cfg.DeadLetterSampleBytes = 100
	f := newFixture(t, cfg)
	ctx := testCtx(t)

	big := bytes.Repeat([]byte("x"), 5000)
	small := []byte(`{"ok":true}`)
	b := f.pub.NewBatch()
	for _, rec := range []publish.Record{
		{Source: topology.SourceTetragon, Data: big, ID: "big-1"},
		{Source: topology.SourceTetragon, Data: small, ID: "small-1"},
	} {
		if err := b.Add(ctx, rec); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v (a dead-lettered record is settled, not failed)", err)
	}
	if got := b.Seal().Records(); got != 2 {
		t.Errorf("Records() = %d, want 2", got)
	}

	raw := streamMsgs(t, f.js, "CROWSNEST_RAW_TETRAGON")
	if len(raw) != 1 || raw[0].Header.Get(headers.MsgID) != "small-1" {
		t.Fatalf("raw stream = %d messages, want only small-1", len(raw))
	}
	dlq := streamMsgs(t, f.js, topology.DeadLetterStream)
	if len(dlq) != 1 {
		t.Fatalf("dead-letter stream holds %d messages, want 1", len(dlq))
	}
	d := dlq[0]
	if d.Subject != "crowsnest.dlq.collector.tetragon.test-collector" {
		t.Errorf("dead-letter subject = %q", d.Subject)
	}
	if !bytes.Equal(d.Data, big[:100]) {
		t.Errorf("dead-letter body is %d bytes, want the first 100 of the record", len(d.Data))
	}
	for k, v := range map[string]string{
		headers.Stage:           "collector",
		headers.Source:          "tetragon",
		headers.OriginalMsgID:   "big-1",
		headers.OriginalSubject: "crowsnest.raw.tetragon.test-collector." + topology.KeyToken("node/node-a"),
		headers.Truncated:       "true",
		headers.OriginalSize:    "5000",
		headers.MsgID:           msgid.DeadLetter("collector", "big-1"),
	} {
		if got := d.Header.Get(k); got != v {
			t.Errorf("dead-letter header %s = %q, want %q", k, got, v)
		}
	}
	if e := d.Header.Get(headers.Error); !strings.Contains(e, "max_event_bytes") {
		t.Errorf("dead-letter error = %q, want it to name max_event_bytes", e)
	}
	labels := map[string]string{"component_kind": "collector", "component_id": "tetragon", "intentional": "false"}
	if got := metricValue(t, f.reg, telemetry.MetricDiscardedEvents, labels); got != 1 {
		t.Errorf("discarded (unintentional) = %v, want 1", got)
	}
}

// TestServerMaxPayloadCapsRecords: a record under max_event_bytes that the
// server's max_payload cannot take is dead-lettered, not retried forever.
func TestServerMaxPayloadCapsRecords(t *testing.T) {
	cfg := testConfig()
	cfg.MaxEventBytes = 4 * config.MiB
	cfg.DeadLetterSampleBytes = 4 * config.MiB // more than the server takes: capped
	f := newFixture(t, cfg)
	ctx := testCtx(t)
	mp := f.nc.MaxPayload()
	rec := publish.Record{Source: topology.SourceJSON, Data: bytes.Repeat([]byte("y"), int(mp)), ID: "too-big-for-server"}
	if err := f.pub.Publish(ctx, rec); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if n := len(streamMsgs(t, f.js, "CROWSNEST_RAW_JSON")); n != 0 {
		t.Errorf("raw stream holds %d messages, want 0", n)
	}
	dlq := streamMsgs(t, f.js, topology.DeadLetterStream)
	if len(dlq) != 1 || !strings.Contains(dlq[0].Header.Get(headers.Error), "max_payload") {
		t.Fatalf("dead-letter stream = %d messages, want 1 naming max_payload", len(dlq))
	}
	if got, want := len(dlq[0].Data), int(mp)-8<<10; got != want || dlq[0].Header.Get(headers.Truncated) != "true" {
		t.Errorf("dead-letter sample is %d bytes (truncated=%q), want %d: the server's max_payload less header room",
			got, dlq[0].Header.Get(headers.Truncated), want)
	}
}

func TestInvalidRecordIsRejected(t *testing.T) {
	f := newFixture(t, testConfig())
	err := f.pub.Publish(testCtx(t), publish.Record{Source: "syslog", Data: []byte("x")})
	if !errors.Is(err, publish.ErrInvalidRecord) || !errors.Is(err, topology.ErrUnknownSource) {
		t.Fatalf("Publish(unknown source) = %v, want ErrInvalidRecord and ErrUnknownSource", err)
	}
}

func TestTransformRunsBeforePublish(t *testing.T) {
	redact := publish.TransformFunc(func(_ context.Context, rec publish.Record) (publish.Record, error) {
		if bytes.Contains(rec.Data, []byte("refuse")) {
			return rec, errors.New("cannot redact")
		}
		rec.Data = bytes.ReplaceAll(rec.Data, []byte("hunter2"), []byte("[REDACTED]"))
		return rec, nil
	})
	f := newFixture(t, testConfig(), func(s *publish.Settings) { s.Transform = redact })
	ctx := testCtx(t)
	if err := f.pub.Publish(ctx, publish.Record{Source: topology.SourceJSON, Data: []byte(`{"password":"hunter2"}`)}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	err := f.pub.Publish(ctx, publish.Record{Source: topology.SourceJSON, Data: []byte(`{"refuse":1}`)})
	if !errors.Is(err, publish.ErrTransform) {
		t.Fatalf("Publish(untransformable) = %v, want ErrTransform", err)
	}
	msgs := streamMsgs(t, f.js, "CROWSNEST_RAW_JSON")
	if len(msgs) != 1 || string(msgs[0].Data) != `{"password":"[REDACTED]"}` {
		t.Fatalf("stored %d messages, want the redacted one only", len(msgs))
	}
	// The id is derived from what is stored, not from the secret.
	if got, want := msgs[0].Header.Get(headers.MsgID), msgid.FromContent("json", msgs[0].Data); got != want {
		t.Errorf("id = %q, want %q (from the redacted bytes)", got, want)
	}
}

func TestConcurrentSourcesAndBatches(t *testing.T) {
	cfg := testConfig()
	cfg.MaxInFlight = 16 // force backpressure
	f := newFixture(t, cfg)
	ctx := testCtx(t)
	const perSource, batch = 300, 25
	sources := []string{topology.SourceK8sAudit, topology.SourceFalco, topology.SourceTetragon}
	var wg sync.WaitGroup
	errs := make(chan error, len(sources))
	for _, src := range sources {
		wg.Go(func() {
			for start := 0; start < perSource; start += batch {
				recs := make([]publish.Record, batch)
				for i := range recs {
					n := start + i
					recs[i] = publish.Record{Source: src, ID: src + "-" + strconv.Itoa(n), Data: fmt.Appendf(nil, `{"n":%d}`, n)}
				}
				if err := f.pub.PublishBatch(ctx, recs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, src := range sources {
		name, _ := topology.RawStream(src)
		if n := len(streamMsgs(t, f.js, name)); n != perSource {
			t.Errorf("%s holds %d messages, want %d", name, n, perSource)
		}
	}
	if n := f.pub.InFlight(); n != 0 {
		t.Errorf("InFlight = %d after every batch was acked", n)
	}
}

func TestBatchSealRules(t *testing.T) {
	f := newFixture(t, testConfig())
	ctx := testCtx(t)
	b := f.pub.NewBatch()
	ack := b.Seal()
	select {
	case <-ack.Done():
	default:
		t.Fatal("an empty sealed batch is not done")
	}
	if err := b.Add(ctx, publish.Record{Source: topology.SourceJSON, Data: []byte("{}")}); !errors.Is(err, publish.ErrSealed) {
		t.Fatalf("Add after Seal = %v, want ErrSealed", err)
	}
	if b.Seal() != ack {
		t.Fatal("Seal twice returned another Ack")
	}
}

// shutdownServer stops the bus's server and waits until the client noticed.
func shutdownServer(t *testing.T, b *bus, nc *nats.Conn) {
	t.Helper()
	b.srv.Shutdown()
	deadline := time.Now().Add(5 * time.Second)
	for nc.Status() == nats.CONNECTED {
		if time.Now().After(deadline) {
			t.Fatal("client still connected after server shutdown")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reconnectingConn is a connection that keeps trying forever, as
// bus/natsconn's is meant to.
func reconnectingConn(t *testing.T, b *bus) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(b.srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestCancelWhileNATSDownReturnsPromptly(t *testing.T) {
	b := startBus(t)
	nc := reconnectingConn(t, b)
	cfg := testConfig()
	cfg.MaxInFlight = 4
	f := newFixtureOn(t, b, nc, cfg)
	shutdownServer(t, b, nc)

	// Fill the in-flight slots; then the next record must wait.
	var acks []*publish.Ack
	for i := range cfg.MaxInFlight {
		ack, err := f.pub.PublishAsync(testCtx(t), publish.Record{Source: topology.SourceFalco, ID: "down-" + strconv.Itoa(i), Data: []byte("{}")})
		if err != nil {
			t.Fatalf("PublishAsync %d: %v", i, err)
		}
		acks = append(acks, ack)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.pub.Publish(ctx, publish.Record{Source: topology.SourceFalco, ID: "blocked", Data: []byte("{}")})
	}()
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v while NATS is down and the in-flight slots are taken; want it to block", err)
	case <-time.After(200 * time.Millisecond):
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish after cancel = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Publish took %v to return after cancel", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Publish did not return after its context was cancelled")
	}

	// Close gives up on what is in flight when its context ends, promptly.
	cctx, ccancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer ccancel()
	start = time.Now()
	if err := f.pub.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	for _, a := range acks {
		if err := a.Wait(testCtx(t)); !errors.Is(err, publish.ErrClosed) {
			t.Fatalf("Ack of an abandoned record = %v, want ErrClosed", err)
		}
	}
	if err := f.pub.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := f.pub.Publish(testCtx(t), publish.Record{Source: topology.SourceFalco, Data: []byte("{}")}); !errors.Is(err, publish.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
}

// TestRetriesUntilServerReturns: records published while the server is down
// are retried and stored once it is back, each exactly once.
func TestRetriesUntilServerReturns(t *testing.T) {
	b := startBus(t)
	nc := reconnectingConn(t, b)
	cfg := testConfig()
	cfg.MaxInFlight = 8
	cfg.AckTimeout = 200 * time.Millisecond
	f := newFixtureOn(t, b, nc, cfg)
	shutdownServer(t, b, nc)

	ctx := testCtx(t)
	const n = 50
	result := make(chan error, 1)
	go func() {
		recs := make([]publish.Record, n)
		for i := range recs {
			recs[i] = publish.Record{Source: topology.SourceDocker, ID: "retry-" + strconv.Itoa(i), Data: []byte("{}")}
		}
		result <- f.pub.PublishBatch(ctx, recs)
	}()
	time.Sleep(500 * time.Millisecond) // several ack timeouts and retries

	u, err := url.Parse(b.srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	restart := b.cfg
	restart.Port, _ = strconv.Atoi(u.Port())
	srv := natstest.StartWith(t, restart)
	if err := <-result; err != nil {
		t.Fatalf("PublishBatch across the outage: %v", err)
	}
	_, js := natstest.Connect(t, srv)
	if got := len(streamMsgs(t, js, "CROWSNEST_RAW_DOCKER")); got != n {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
	labels := map[string]string{"component_kind": "collector", "component_id": "docker", "error_type": "publish_failed", "stage": "sending"}
	if got := metricValue(t, f.reg, telemetry.MetricErrors, labels); got == 0 {
		t.Error("no publish_failed errors counted across an outage")
	}
}

// recordingSpool keeps what the publisher hands it, to check exactly that
// (collectors/spool's own tests cover the disk).
type recordingSpool struct {
	mu   sync.Mutex
	recs []publish.Record
}

func (s *recordingSpool) Put(_ context.Context, rec publish.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, rec)
	return nil
}

func (s *recordingSpool) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.recs))
	for i, r := range s.recs {
		out[i] = r.ID
	}
	return out
}

// TestSpoolTakesRecordsWhileDisconnected: with NATS away every new record
// goes to the spool at once and counts as settled — none waits in the
// client's reconnect buffer (a push source would answer 503 meanwhile).
func TestSpoolTakesRecordsWhileDisconnected(t *testing.T) {
	b := startBus(t)
	nc := reconnectingConn(t, b)
	cfg := testConfig()
	cfg.MaxInFlight = 2
	spool := &recordingSpool{}
	f := newFixtureOn(t, b, nc, cfg, func(s *publish.Settings) { s.Spool = spool })
	shutdownServer(t, b, nc)
	ctx := testCtx(t)
	for i := range 5 {
		ack, err := f.pub.PublishAsync(ctx, publish.Record{Source: topology.SourceAuditd, ID: "s-" + strconv.Itoa(i), Data: []byte("{}")})
		if err != nil {
			t.Fatalf("PublishAsync %d: %v", i, err)
		}
		select {
		case <-ack.Done():
			if err := ack.Err(); err != nil {
				t.Fatalf("record %d: ack %v, want spooled", i, err)
			}
		default:
			t.Fatalf("record %d not settled on return while NATS is away", i)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := f.pub.Close(cctx); err != nil {
		t.Errorf("Close with everything spooled = %v, want nil", err)
	}
	if got := spool.ids(); !slices.Equal(got, []string{"s-0", "s-1", "s-2", "s-3", "s-4"}) {
		t.Fatalf("spooled %v, want s-0..s-4 in order", got)
	}
	spool.mu.Lock()
	defer spool.mu.Unlock()
	if spool.recs[0].Observed.IsZero() {
		t.Error("spooled record without Observed")
	}
}

// TestOversizedRecordSpooledAsItsDeadLetter: with NATS away, a record too
// large to publish is spooled as its dead-letter verdict and sample, not
// whole: it must not fill the spool.
func TestOversizedRecordSpooledAsItsDeadLetter(t *testing.T) {
	b := startBus(t)
	nc := reconnectingConn(t, b)
	cfg := testConfig()
	cfg.MaxEventBytes = 2 * config.KiB
	cfg.DeadLetterSampleBytes = 100
	spool := &recordingSpool{}
	f := newFixtureOn(t, b, nc, cfg, func(s *publish.Settings) { s.Spool = spool })
	shutdownServer(t, b, nc)
	big := bytes.Repeat([]byte("x"), 5000)
	if err := f.pub.Publish(testCtx(t), publish.Record{Source: topology.SourceTetragon, ID: "big", Data: big}); err != nil {
		t.Fatal(err)
	}
	spool.mu.Lock()
	defer spool.mu.Unlock()
	if len(spool.recs) != 1 {
		t.Fatalf("spooled %d records, want 1", len(spool.recs))
	}
	r := spool.recs[0]
	if r.ID != "big" || len(r.Data) != 100 || !strings.Contains(r.DeadLetter, "5000 bytes exceeds max_event_bytes") {
		t.Fatalf("spooled id %q, %d bytes, dead-letter %q; want big, the 100-byte sample and the size reason", r.ID, len(r.Data), r.DeadLetter)
	}
}

// TestInFlightRecordsMoveToSpool: records already in flight when NATS goes
// away (their publish failed and waits for a retry) move to the spool and
// settle, every field kept, instead of waiting out the outage.
func TestInFlightRecordsMoveToSpool(t *testing.T) {
	b := startBus(t)
	nc := reconnectingConn(t, b)
	cfg := testConfig()
	cfg.AckTimeout = 200 * time.Millisecond
	spool := &recordingSpool{}
	f := newFixtureOn(t, b, nc, cfg, func(s *publish.Settings) { s.Spool = spool })
	ctx := testCtx(t)
	// Without its stream a publish fails while NATS is up: the records stay
	// in flight, retried.
	if err := b.js.DeleteStream(ctx, "CROWSNEST_RAW_AUDITD"); err != nil {
		t.Fatal(err)
	}
	want := []publish.Record{
		{Source: topology.SourceAuditd, ID: "f-0", Key: "node/a", Data: []byte(`{"n":0}`)},
		{Source: topology.SourceAuditd, ID: "f-1", Data: []byte(`{"n":1}`)},
	}
	var acks []*publish.Ack
	for _, r := range want {
		ack, err := f.pub.PublishAsync(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack)
	}
	time.Sleep(300 * time.Millisecond)
	for i, a := range acks {
		select {
		case <-a.Done():
			t.Fatalf("record %d settled (%v) while its stream is missing", i, a.Err())
		default:
		}
	}
	if n := len(spool.ids()); n != 0 {
		t.Fatalf("spooled %d records while NATS is up", n)
	}

	shutdownServer(t, b, nc)
	for i, a := range acks {
		if err := a.Wait(ctx); err != nil {
			t.Fatalf("record %d after NATS went away: %v, want spooled", i, err)
		}
	}
	got := spool.ids()
	slices.Sort(got)
	if !slices.Equal(got, []string{"f-0", "f-1"}) {
		t.Fatalf("spooled %v, want f-0 and f-1", got)
	}
	spool.mu.Lock()
	defer spool.mu.Unlock()
	for _, r := range spool.recs {
		w := want[0]
		if r.ID == "f-1" {
			w = want[1]
		}
		if r.Key != w.Key || string(r.Data) != string(w.Data) || r.Source != w.Source || r.Observed.IsZero() {
			t.Errorf("spooled %+v, want the record as handed in (%+v) with Observed set", r, w)
		}
	}
	if f.pub.InFlight() != 0 {
		t.Errorf("%d records still in flight", f.pub.InFlight())
	}
}

func TestCloseWithoutPublishing(t *testing.T) {
	f := newFixture(t, testConfig())
	for range 2 {
		if err := f.pub.Close(context.Background()); err != nil {
			t.Fatalf("Close = %v", err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	b := startBus(t)
	if _, err := publish.New(testConfig(), publish.Settings{}); err == nil {
		t.Error("New without a connection succeeded")
	}
	bad := testConfig()
	bad.CollectorID = "a.b"
	if _, err := publish.New(bad, publish.Settings{Conn: b.nc}); err == nil || !strings.Contains(err.Error(), "collector_id") {
		t.Errorf("New with collector id a.b = %v, want a collector_id error", err)
	}
}

func TestAddDeadLetter(t *testing.T) {
	f := newFixture(t, testConfig())
	ctx := testCtx(t)
	b := f.pub.NewBatch()
	if err := b.AddDeadLetter(ctx, publish.Record{Source: topology.SourceK8sAudit, Data: []byte("not json"), ID: "line-7"}, "line 7: not JSON"); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(ctx, publish.Record{Source: topology.SourceK8sAudit, Data: []byte(`{"ok":1}`), ID: "a-ResponseComplete"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	dlq := streamMsgs(t, f.js, topology.DeadLetterStream)
	if len(dlq) != 1 || string(dlq[0].Data) != "not json" || dlq[0].Header.Get(headers.Error) != "line 7: not JSON" ||
		dlq[0].Subject != "crowsnest.dlq.collector.k8s_audit.test-collector" || dlq[0].Header.Get(headers.OriginalMsgID) != "line-7" {
		t.Fatalf("dead-letter stream = %d messages, want the rejected line with its reason", len(dlq))
	}
	if n := len(streamMsgs(t, f.js, "CROWSNEST_RAW_K8S_AUDIT")); n != 1 {
		t.Fatalf("raw stream holds %d, want 1", n)
	}
	labels := map[string]string{"component_kind": "collector", "component_id": "k8s_audit", "error_type": "decode_failed", "stage": "receiving"}
	if got := metricValue(t, f.reg, telemetry.MetricErrors, labels); got != 1 {
		t.Errorf("decode_failed errors = %v, want 1", got)
	}
}

// A DaemonSet's collector takes its identity from the node it runs on
// (collector_id_from_node): records are stored under the sanitized node name,
// whatever collector_id (the pod's host name by default) says.
func TestCollectorIDFromNode(t *testing.T) {
	cfg := testConfig()
	cfg.CollectorID, cfg.Node, cfg.CollectorIDFromNode = "pod-abc12", "ip-10-0-0-1.ec2.internal", true
	f := newFixture(t, cfg)
	rec := publish.Record{Source: topology.SourceK8sAudit, Data: []byte(`{"kind":"Event"}`), ID: "n1", Key: "ns/default"}
	if err := f.pub.Publish(testCtx(t), rec); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	msgs := streamMsgs(t, f.js, "CROWSNEST_RAW_K8S_AUDIT")
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d messages, want 1", len(msgs))
	}
	if st, ok := topology.ParseRawStored(msgs[0].Subject); !ok || st.Collector != "ip-10-0-0-1_ec2_internal" {
		t.Errorf("subject %q: want collector ip-10-0-0-1_ec2_internal", msgs[0].Subject)
	}
	if got := msgs[0].Header.Get(headers.Collector); got != "ip-10-0-0-1_ec2_internal" {
		t.Errorf("%s header %q, want ip-10-0-0-1_ec2_internal", headers.Collector, got)
	}
}

// fullSpoolFault is a spool whose disk is full: a hand-made fault, as a
// real full disk is what e2e/chaos's disk-full scenario uses.
type fullSpoolFault struct{}

func (fullSpoolFault) Put(context.Context, publish.Record) error {
	return errors.New("write segment: no space left on device")
}

// TestFullSpoolIsLogged: a record the spool cannot take is refused to its
// source with the error, and the operator reads why in the log — once, not
// once per record.
func TestFullSpoolIsLogged(t *testing.T) {
	b := startBus(t)
	nc := reconnectingConn(t, b)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	f := newFixtureOn(t, b, nc, testConfig(), func(s *publish.Settings) { s.Spool = fullSpoolFault{}; s.Logger = logger })
	shutdownServer(t, b, nc)
	ctx := testCtx(t)
	for i := range 3 {
		_, err := f.pub.PublishAsync(ctx, publish.Record{Source: topology.SourceAuditd, ID: "f-" + strconv.Itoa(i), Data: []byte("{}")})
		if err == nil || !strings.Contains(err.Error(), "no space left") {
			t.Fatalf("PublishAsync %d with the spool full = %v, want the spool's error", i, err)
		}
	}
	if n := strings.Count(logs.String(), "spool cannot take records"); n != 1 {
		t.Fatalf("%d spool warnings for 3 refused records, want 1; log:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "no space left on device") || !strings.Contains(logs.String(), "source=auditd") {
		t.Fatalf("the warning does not say why or which source:\n%s", logs.String())
	}
}
