package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
)

// Settings is what the code, not the user, gives a Publisher.
type Settings struct {
	// Conn is the connection to NATS (bus/natsconn). Required. The
	// publisher does not close it.
	Conn *nats.Conn
	// Logger; nil discards.
	Logger *slog.Logger
	// Metrics are the standard component counters; nil counts nothing.
	// Each source is one component: component_kind="collector",
	// component_id=<source>.
	Metrics *telemetry.ComponentMetrics
	// Registerer takes crowsnest_collector_publish_seconds; nil registers
	// nothing.
	Registerer prometheus.Registerer
	// Transform, when set, runs on every record before it is published
	// (redaction).
	Transform Transformer
	// Spool, when set, takes records while NATS is unreachable instead of
	// blocking the source.
	Spool Spool
}

// Publisher publishes raw records to JetStream. It is safe for concurrent
// use by any number of sources.
type Publisher struct {
	cfg       Config
	log       *slog.Logger
	nc        *nats.Conn
	js        jetstream.JetStream
	transform Transformer
	spool     Spool
	sources   []sourceState

	collectorHdr []string // shared, read-only header values
	nodeHdr      []string
	maxPayload   atomic.Int64
	sampleBytes  int // dead-letter sample cap, within the server's max_payload

	slots chan struct{} // a token per record in flight

	mu       sync.Mutex
	inflight map[*nats.Msg]*item
	closed   bool
	// closedFlag mirrors closed for the lock-free check on every publish.
	closedFlag atomic.Bool
	drained    chan struct{} // closed when closed && len(inflight) == 0

	retryMu     sync.Mutex
	retryQueue  []*item
	retryWake   chan struct{}
	stop        chan struct{}
	stopOnce    sync.Once
	drainedOnce sync.Once
	wg          sync.WaitGroup

	lastWarn atomic.Int64 // unix nanos of the last publish-failure warning
	// lastSpoolWarn is the same for records the spool could not take.
	lastSpoolWarn atomic.Int64
}

// sourceState is what the publisher precomputes per source.
type sourceState struct {
	name string
	// subject is crowsnest.raw.<source>.<collector>; a record's subject adds
	// its key token (rawSubject).
	subject string
	// keylessSubject is the subject of a record without a key: keyed by the
	// collector's node.
	keylessSubject string
	dlqSubj        string
	hdr            []string
	comp           *telemetry.Component
	seconds        prometheus.Observer
	// fixedHdrLen is the wire size of the framing and the headers that are
	// the same for every record of this source.
	fixedHdrLen int
}

// item is one record in flight. It embeds its message so that one allocation
// carries both; the message pointer is the key the ack callbacks find it by.
type item struct {
	msg        nats.Msg
	ack        *Ack
	src        *sourceState
	start      time.Time
	attempt    int
	retryAt    time.Time
	deadLetter bool // msg is the dead-letter record of an oversized one
	// rec is the record as handed in (transformed, id and time set): what
	// the spool takes if NATS goes away while it is in flight.
	rec Record
}

// warnEvery rate-limits the warning logged while publishes keep failing.
const warnEvery = 5 * time.Second

// New returns a Publisher over s.Conn. It validates cfg. Close it when done.
func New(cfg Config, s Settings) (*Publisher, error) {
	cfg = cfg.Resolved()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("publisher config: %w", err)
	}
	if s.Conn == nil {
		return nil, errors.New("publisher: Settings.Conn is nil")
	}
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		cfg:          cfg,
		log:          logger.With("component", "publisher", "collector", cfg.CollectorID),
		nc:           s.Conn,
		transform:    s.Transform,
		spool:        s.Spool,
		collectorHdr: []string{cfg.CollectorID},
		nodeHdr:      []string{cfg.Node},
		slots:        make(chan struct{}, cfg.MaxInFlight),
		inflight:     make(map[*nats.Msg]*item, cfg.MaxInFlight),
		drained:      make(chan struct{}),
		retryWake:    make(chan struct{}, 1),
		stop:         make(chan struct{}),
	}
	p.maxPayload.Store(s.Conn.MaxPayload())
	p.sampleBytes = int(cfg.DeadLetterSampleBytes)
	if mp := int(s.Conn.MaxPayload()); mp > 0 {
		// Leave room for the dead-letter headers, as bus/deadletter does.
		const headroom = 1<<20 - deadletter.DefaultMaxBody
		p.sampleBytes = max(1, min(p.sampleBytes, mp-headroom))
	}

	seconds, err := newPublishSeconds(s.Registerer)
	if err != nil {
		return nil, err
	}
	for _, src := range topology.Sources() {
		// A record without a key is its node's, keyed like the node-scoped
		// records of sources that name their node (entitykey.Node).
		keyless, err := topology.RawSubject(src, cfg.CollectorID, topology.KeyToken(nodeKey(cfg.Node)))
		if err != nil {
			return nil, fmt.Errorf("publisher: %w", err)
		}
		subj := keyless[:strings.LastIndexByte(keyless, '.')]
		dlq, err := topology.CollectorDeadLetterSubject(src, cfg.CollectorID)
		if err != nil {
			return nil, fmt.Errorf("publisher: %w", err)
		}
		st := sourceState{
			name:           src,
			subject:        subj,
			keylessSubject: keyless,
			dlqSubj:        dlq,
			hdr:            []string{src},
			comp:           s.Metrics.Component(telemetry.KindCollector, src),
			fixedHdrLen: headerFraming + headerLine(headers.Source, src) +
				headerLine(headers.Collector, cfg.CollectorID) + headerLine(headers.Node, cfg.Node),
		}
		if seconds != nil {
			st.seconds = seconds.WithLabelValues(src)
		}
		p.sources = append(p.sources, st)
	}

	js, err := jetstream.New(s.Conn,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(p.onAck),
		jetstream.WithPublishAsyncErrHandler(p.onErr),
	)
	if err != nil {
		return nil, fmt.Errorf("publisher: jetstream: %w", err)
	}
	p.js = js
	if mp := p.maxPayload.Load(); mp > 0 && int64(cfg.MaxEventBytes) > mp {
		p.log.Warn("max_event_bytes is larger than the server's max_payload: larger records will be dead-lettered",
			"max_event_bytes", int64(cfg.MaxEventBytes), "max_payload", mp)
	}

	p.wg.Add(1)
	go p.retryLoop()
	return p, nil
}

// Publish publishes rec and waits until JetStream acknowledges it (or it is
// dead-lettered).
func (p *Publisher) Publish(ctx context.Context, rec Record) error {
	ack, err := p.PublishAsync(ctx, rec)
	if err != nil {
		return err
	}
	return ack.Wait(ctx)
}

// PublishAsync publishes rec and returns once it is on its way; the Ack says
// when it is durable. It blocks while max_in_flight records are
// unacknowledged (backpressure), until ctx ends or the publisher closes.
func (p *Publisher) PublishAsync(ctx context.Context, rec Record) (*Ack, error) {
	b := p.NewBatch()
	if err := b.Add(ctx, rec); err != nil {
		return nil, err
	}
	return b.Seal(), nil
}

// PublishBatch publishes recs and waits until every one is acknowledged (or
// dead-lettered). On error some records may be stored and others not; the
// message ids make publishing them all again safe.
func (p *Publisher) PublishBatch(ctx context.Context, recs []Record) error {
	b := p.NewBatch()
	for i := range recs {
		if err := b.Add(ctx, recs[i]); err != nil {
			b.Seal()
			return fmt.Errorf("publish record %d of %d: %w", i+1, len(recs), err)
		}
	}
	return b.Wait(ctx)
}

func (p *Publisher) source(name string) *sourceState {
	for i := range p.sources {
		if p.sources[i].name == name {
			return &p.sources[i]
		}
	}
	return nil
}

// publish hands rec to JetStream on behalf of ack, which already counts it.
// When it returns nil, the record is ack's to settle; on error it was not
// published.
//
// A record with DeadLetter set goes to the dead-letter stream with that
// reason instead of the raw one.
func (p *Publisher) publish(ctx context.Context, rec Record, ack *Ack) error {
	src := p.source(rec.Source)
	if src == nil {
		return fmt.Errorf("%w: source %q: %w", ErrInvalidRecord, rec.Source, topology.ErrUnknownSource)
	}
	if p.isClosed() {
		return ErrClosed
	}
	if p.nc.IsClosed() {
		return fmt.Errorf("publish %s: %w", src.subject, nats.ErrConnectionClosed)
	}
	src.comp.Received(1)
	if p.transform != nil {
		out, err := p.transform.Transform(ctx, rec)
		if err != nil {
			src.comp.Error(telemetry.OtherError, telemetry.StageProcessing)
			src.comp.DiscardedUnintentional(1)
			return fmt.Errorf("%w: source %s: %w", ErrTransform, rec.Source, err)
		}
		if out.Source != rec.Source {
			src.comp.DiscardedUnintentional(1)
			return fmt.Errorf("%w: transform changed the source from %q to %q", ErrInvalidRecord, rec.Source, out.Source)
		}
		out.DeadLetter = rec.DeadLetter // the source's verdict, not the transform's
		rec = out
	}
	if rec.ID == "" {
		rec.ID = msgid.FromContent(rec.Source, rec.Data)
	}
	now := time.Now()
	if rec.Observed.IsZero() {
		rec.Observed = now
	}

	it := &item{ack: ack, src: src, rec: rec}
	if rec.DeadLetter != "" {
		src.comp.Error(telemetry.DecodeFailed, telemetry.StageReceiving)
		if err := p.toDeadLetter(it, rec, src.rawSubject(rec.Key), rec.DeadLetter); err != nil {
			return err
		}
	} else if err := p.fill(it, rec); err != nil {
		src.comp.Error(telemetry.EncodeFailed, telemetry.StageProcessing)
		return err
	}

	// While NATS is away a record goes to the spool at once: held in the
	// client's reconnect buffer it would count as nothing, and a push source
	// would answer 503 for the whole outage.
	if p.spool != nil && p.nc.Status() != nats.CONNECTED {
		return p.toSpool(ctx, src, p.spoolRecord(it), ack)
	}
	if !p.tryAcquire() {
		if err := p.acquire(ctx); err != nil {
			return err
		}
	}
	it.start = now
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return ErrClosed
	}
	p.inflight[&it.msg] = it
	p.mu.Unlock()
	p.send(it)
	return nil
}

// fill builds it's message: the raw record, or its dead-letter record when
// it is too large to publish.
func (p *Publisher) fill(it *item, rec Record) error {
	observed := headers.FormatTime(rec.Observed)
	h := make(nats.Header, 5)
	h[headers.MsgID] = []string{rec.ID}
	h[headers.Source] = it.src.hdr
	h[headers.Collector] = p.collectorHdr
	h[headers.Node] = p.nodeHdr
	h[headers.Observed] = []string{observed}
	it.msg = nats.Msg{Subject: it.src.rawSubject(rec.Key), Header: h, Data: rec.Data}
	hdrLen := it.src.fixedHdrLen + headerLine(headers.MsgID, rec.ID) + headerLine(headers.Observed, observed)
	if reason := p.oversized(rec.Data, hdrLen); reason != "" {
		return p.toDeadLetter(it, rec, it.msg.Subject, reason)
	}
	return nil
}

// nodeKey is the key of a node's records: "node/<node>", as
// collectors/entitykey.Node spells it (this package cannot import that one,
// which depends on gjson for parsing records).
func nodeKey(node string) string { return "node/" + node }

// rawSubject is the subject of a record with key: the key's token picks the
// partition; a record without one is keyed by the collector's node.
func (s *sourceState) rawSubject(key string) string {
	if key == "" {
		return s.keylessSubject
	}
	return s.subject + "." + topology.KeyToken(key)
}

// oversized says why a record is too large to publish raw, or "".
func (p *Publisher) oversized(data []byte, hdrLen int) string {
	if uint64(len(data)) > uint64(p.cfg.MaxEventBytes) {
		return fmt.Sprintf("record of %d bytes exceeds max_event_bytes (%d)", len(data), uint64(p.cfg.MaxEventBytes))
	}
	if mp := p.maxPayload.Load(); mp > 0 && int64(len(data)+hdrLen) > mp {
		return fmt.Sprintf("record of %d bytes plus %d bytes of headers exceeds the server's max_payload (%d)", len(data), hdrLen, mp)
	}
	return ""
}

// Headers on the wire: "NATS/1.0\r\n", then "Key: value\r\n" per value,
// then "\r\n".
const headerFraming = len("NATS/1.0\r\n") + len("\r\n")

func headerLine(k, v string) int { return len(k) + len(": ") + len(v) + len("\r\n") }

func (p *Publisher) tryAcquire() bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p *Publisher) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for an in-flight slot: %w", ctx.Err())
	case <-p.stop:
		return ErrClosed
	case <-p.drained:
		return ErrClosed
	}
}

// isClosed is the fast check; registration checks p.closed again under mu.
func (p *Publisher) isClosed() bool { return p.closedFlag.Load() }

// toSpool hands a record that cannot be published now to the spool.
func (p *Publisher) toSpool(ctx context.Context, src *sourceState, rec Record, ack *Ack) error {
	if err := p.spool.Put(ctx, rec); errors.Is(err, ErrDropped) {
		src.comp.DiscardedIntentional(1)
		ack.settle(nil)
		return nil
	} else if err != nil {
		src.comp.Error(telemetry.WriteFailed, telemetry.StageSending)
		p.warnSpool(src.name, err)
		return fmt.Errorf("spool record %s: %w", rec.ID, err)
	}
	src.comp.Sent(1)
	ack.settle(nil)
	return nil
}

// spoolInFlight moves a record whose publish failed while NATS is away into
// the spool, and settles it: the spool replays it when NATS is back. It
// reports false, leaving the record in flight for another attempt, when the
// spool cannot take it. If the first publish is acknowledged after all (it
// waited in the client's reconnect buffer), the spool's copy carries the same
// message id and JetStream stores it once.
func (p *Publisher) spoolInFlight(ctx context.Context, it *item) bool {
	err := p.spool.Put(ctx, p.spoolRecord(it))
	dropped := errors.Is(err, ErrDropped)
	if err != nil && !dropped {
		it.src.comp.Error(telemetry.WriteFailed, telemetry.StageSending)
		p.warnSpool(it.src.name, err)
		return false
	}
	if p.take(&it.msg) != it {
		return true // settled meanwhile
	}
	p.release()
	if dropped {
		it.src.comp.DiscardedIntentional(1)
	} else {
		it.src.comp.Sent(1)
	}
	it.ack.settle(nil)
	return true
}

// spoolRecord is what the spool keeps of an item: the record as handed in,
// except that a record too large to publish keeps only its dead-letter
// verdict and sample (the reason names its size), so an oversized record
// never fills the spool.
func (p *Publisher) spoolRecord(it *item) Record {
	rec := it.rec
	if it.deadLetter && rec.DeadLetter == "" {
		rec.DeadLetter = it.msg.Header.Get(headers.Error)
		rec.Data = rec.Data[:min(len(rec.Data), p.sampleBytes)]
	}
	return rec
}

// send publishes it's message once. A synchronous failure schedules a retry,
// except a payload the server refuses as too large, which is dead-lettered.
func (p *Publisher) send(it *item) {
	_, err := p.js.PublishMsgAsync(&it.msg)
	if err == nil {
		return
	}
	if errors.Is(err, nats.ErrMaxPayload) && it.deadLetter {
		// Not even the sample fits: nothing to retry.
		if p.take(&it.msg) == it {
			it.src.comp.DiscardedUnintentional(1)
			p.release()
			it.ack.settle(fmt.Errorf("publish dead-letter record to %s: %w", it.msg.Subject, err))
		}
		return
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		// The server's limit is lower than we knew (a reconnect to another
		// server): learn it and dead-letter the record.
		p.maxPayload.Store(p.nc.MaxPayload())
		if derr := p.redirectToDeadLetter(it, fmt.Sprintf("server refused the record as too large: %v", err)); derr != nil {
			if p.take(&it.msg) == it {
				p.release()
				it.ack.settle(derr)
			}
			return
		}
		p.send(it)
		return
	}
	p.failed(it, err)
}

// redirectToDeadLetter turns an in-flight item into its dead-letter record.
// The item keeps its place in the inflight set: the key is the address of
// its embedded message, which does not change.
func (p *Publisher) redirectToDeadLetter(it *item, reason string) error {
	rec := Record{Source: it.src.name, Data: it.msg.Data, ID: it.msg.Header.Get(headers.MsgID)}
	rec.Observed, _ = headers.ParseTime(it.msg.Header.Get(headers.Observed)) // we wrote it: it parses
	return p.toDeadLetter(it, rec, it.msg.Subject, reason)
}

// onAck runs on the nats.go ack goroutine: it must not block.
func (p *Publisher) onAck(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
	it := p.take(m)
	if it == nil {
		return // settled already (Close gave up on it)
	}
	if it.src.seconds != nil {
		it.src.seconds.Observe(time.Since(it.start).Seconds())
	}
	if it.deadLetter {
		it.src.comp.DiscardedUnintentional(1)
	} else {
		it.src.comp.Sent(1)
	}
	p.release()
	it.ack.settle(nil)
}

// onErr runs on a nats.go goroutine, sometimes holding the JetStream
// context's lock: it must neither block nor publish. It queues a retry.
func (p *Publisher) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	p.mu.Lock()
	it := p.inflight[m]
	p.mu.Unlock()
	if it == nil {
		return
	}
	p.failed(it, err)
}

// failed counts a failed attempt and queues the record for a retry. A
// closed connection never recovers, so its records settle with the error.
func (p *Publisher) failed(it *item, err error) {
	it.src.comp.Error(telemetry.PublishFailed, telemetry.StageSending)
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrJetStreamPublisherClosed) {
		if p.take(&it.msg) == it {
			p.release()
			it.ack.settle(fmt.Errorf("publish %s: %w", it.msg.Subject, err))
		}
		return
	}
	it.attempt++
	it.retryAt = time.Now().Add(p.backoff(it.attempt))
	p.warnf(it, err)
	p.retryMu.Lock()
	p.retryQueue = append(p.retryQueue, it)
	p.retryMu.Unlock()
	select {
	case p.retryWake <- struct{}{}:
	default:
	}
}

// warnf logs a failed publish, at most once per warnEvery so that an outage
// with a thousand records in flight is one line, not a thousand.
func (p *Publisher) warnf(it *item, err error) {
	now := time.Now().UnixNano()
	last := p.lastWarn.Load()
	if now-last < int64(warnEvery) || !p.lastWarn.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("publish failed; retrying (further failures are not logged for a while)",
		"source", it.src.name, "event_id", it.msg.Header.Get(headers.MsgID),
		"subject", it.msg.Subject, "attempt", it.attempt, "error", err)
}

// warnSpool logs a record the spool could not take (its disk full or
// failing), at most once per warnEvery: the source is refusing or holding
// records meanwhile, and an operator must learn why from the log, not only
// from a counter.
func (p *Publisher) warnSpool(source string, err error) {
	now := time.Now().UnixNano()
	last := p.lastSpoolWarn.Load()
	if now-last < int64(warnEvery) || !p.lastSpoolWarn.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("spool cannot take records; the source is held back until it can (further failures are not logged for a while)",
		"source", source, "error", err)
}

// backoff is the wait before the attempt-th retry: exponential, capped,
// with jitter in [d/2, d) so that many records retried together spread out.
func (p *Publisher) backoff(attempt int) time.Duration {
	d := p.cfg.Retry.InitialBackoff
	for i := 1; i < attempt && d < p.cfg.Retry.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.cfg.Retry.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// retryLoop republishes failed records when their backoff has passed.
func (p *Publisher) retryLoop() {
	defer p.wg.Done()
	// Spooling may wait for room (full_policy block); Close must end that.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.retryWake:
		}
		for {
			p.retryMu.Lock()
			queue := p.retryQueue
			p.retryQueue = nil
			p.retryMu.Unlock()
			if len(queue) == 0 {
				break
			}
			for _, it := range queue {
				if wait := time.Until(it.retryAt); wait > 0 {
					timer.Reset(wait)
					select {
					case <-p.stop:
						timer.Stop()
						return
					case <-timer.C:
					}
				}
				if !p.stillInFlight(it) {
					continue
				}
				if p.spool != nil && p.nc.Status() != nats.CONNECTED && p.spoolInFlight(ctx, it) {
					continue
				}
				p.send(it)
			}
		}
	}
}

func (p *Publisher) stillInFlight(it *item) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inflight[&it.msg] == it
}

// take removes m's item from the inflight set and returns it; nil when it
// was settled already.
func (p *Publisher) take(m *nats.Msg) *item {
	p.mu.Lock()
	defer p.mu.Unlock()
	it := p.inflight[m]
	if it == nil {
		return nil
	}
	delete(p.inflight, m)
	if p.closed && len(p.inflight) == 0 {
		p.drainedOnce.Do(func() { close(p.drained) })
	}
	return it
}

func (p *Publisher) release() { <-p.slots }

// InFlight is how many records are published and not yet settled.
func (p *Publisher) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight)
}

// Close stops taking records and waits until every record in flight is
// acknowledged, or until ctx ends: then the records still in flight settle
// with ErrClosed (their sources must not checkpoint them; re-sending them
// later is safe) and Close returns ctx's error. Close does not close the
// NATS connection. It is safe to call more than once and concurrently; later
// calls wait like the first.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	p.closedFlag.Store(true)
	if len(p.inflight) == 0 {
		p.drainedOnce.Do(func() { close(p.drained) })
	}
	p.mu.Unlock()

	var err error
	select {
	case <-p.drained:
	case <-ctx.Done():
		err = fmt.Errorf("close publisher: %d records not acknowledged: %w", p.InFlight(), ctx.Err())
		p.abandon()
	}
	p.stopOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		// Drop the reply subscription; nothing of ours is pending there now.
		p.js.CleanupPublisher()
	})
	p.wg.Wait()
	return err
}

// abandon settles every record still in flight with ErrClosed.
func (p *Publisher) abandon() {
	p.mu.Lock()
	items := make([]*item, 0, len(p.inflight))
	for m, it := range p.inflight {
		items = append(items, it)
		delete(p.inflight, m)
	}
	p.drainedOnce.Do(func() { close(p.drained) })
	p.mu.Unlock()
	for _, it := range items {
		it.src.comp.Error(telemetry.PublishFailed, telemetry.StageSending)
		p.release()
		it.ack.settle(ErrClosed)
	}
}
