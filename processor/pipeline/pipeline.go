package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
	"github.com/crowsnest-siem/crowsnest/processor/detect"
	"github.com/crowsnest-siem/crowsnest/processor/detect/kvstate"
	"github.com/crowsnest-siem/crowsnest/processor/enrich"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/partition"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Normalizer turns one raw record into its events (a batch record holds
// several), or says why it cannot (normalize.Normalizer).
type Normalizer interface {
	NormalizeEach(rec *normalize.Record, ev *schemas.Event, emit func(*schemas.Event, error) error) error
}

// DeadLetterer records a rejected message and returns once JetStream has it.
type DeadLetterer interface {
	Publish(ctx context.Context, r deadletter.Record) error
}

// Enricher gives a normalized event what its source lacks (the pod and image
// of its container) from what earlier events taught (enrich.Enricher). It is
// called from every source's goroutine.
type Enricher interface {
	Enrich(ev *schemas.Event)
}

// Detector runs the detection rules on one event and calls emit with each
// alert, valid only during the call (detect.Engine).
type Detector interface {
	Process(ctx context.Context, ev *schemas.Event, emit func(a *schemas.Alert) error) error
}

// Publisher is the part of jetstream.JetStream the pipeline publishes with.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Fence says whether this replica may still process a partition: its
// claim is certainly not expired, so no other replica can hold it
// (partition.Fence).
type Fence interface {
	Valid() bool
	// Wait returns true once Valid, false when ctx ends first.
	Wait(ctx context.Context) bool
}

// Settings is what the caller injects.
type Settings struct {
	Logger *slog.Logger
	// Metrics counts what the processor takes in and hands on; nil counts nothing.
	Metrics *telemetry.Component
	// Sources limits the raw streams consumed; empty means every source.
	Sources []string
	// Consumer is the durable consumer configuration (from topology).
	Consumer topology.ConsumerSettings
	// Partitions is topology.partitions, the partition count of the raw
	// streams; 0 means topology.DefaultPartitions.
	Partitions int
	// Detector replaces the engine New builds from Config.Detect (tests
	// inject one); nil means build it when detection is enabled.
	Detector Detector
	// Enricher replaces the one New builds from Config.Enrich; nil means
	// build it when enrichment is enabled.
	Enricher Enricher
	// Registerer, when set, receives the detection engine's and the
	// enricher's metrics (crowsnest_detect_*, crowsnest_enrich_*); the
	// process's registry, never the global one.
	Registerer prometheus.Registerer
}

// Pipeline consumes every raw stream, normalizes, publishes events and acks.
type Pipeline struct {
	js   jetstream.JetStream
	pub  Publisher
	norm Normalizer
	det  Detector       // nil: detection off
	enr  Enricher       // nil: enrichment off
	eng  *detect.Engine // the engine New built, reloaded by Run; nil when injected or off
	fp   string         // fingerprint of the rule directories before they were loaded
	dlq  DeadLetterer
	cfg  Config
	set  Settings
	log  *slog.Logger
	pm   partitionMetrics

	errMu sync.Mutex
	errs  []error // the membership's failure (a partition consumer retries instead)
}

// New builds a pipeline; Run starts it.
func New(js jetstream.JetStream, norm Normalizer, dlq DeadLetterer, cfg Config, set Settings) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if len(set.Sources) == 0 {
		set.Sources = topology.Sources()
	}
	if set.Partitions == 0 {
		set.Partitions = topology.DefaultPartitions
	}
	if set.Partitions < 1 || set.Partitions > topology.MaxPartitions {
		return nil, fmt.Errorf("processor: partitions must be 1..%d, got %d", topology.MaxPartitions, set.Partitions)
	}
	p := &Pipeline{js: js, pub: js, norm: norm, dlq: dlq, cfg: cfg, set: set, log: set.Logger.With("component", "processor")}
	pm, err := newPartitionMetrics(set.Registerer)
	if err != nil {
		return nil, fmt.Errorf("processor: %w", err)
	}
	p.pm = pm
	switch {
	case set.Enricher != nil:
		p.enr = set.Enricher
	case cfg.Enrich.Enabled:
		enr, err := enrich.New(cfg.Enrich, enrich.WithTrustedRegistries(cfg.Normalize.TrustedRegistries))
		if err != nil {
			return nil, fmt.Errorf("processor: %w", err)
		}
		if set.Registerer != nil {
			if err := enr.RegisterMetrics(set.Registerer); err != nil {
				return nil, fmt.Errorf("processor: %w", err)
			}
		}
		p.enr = enr
	}
	switch {
	case set.Detector != nil:
		p.det = set.Detector
	case cfg.Detect.Enabled:
		// The fingerprint comes first: a change made while the rules
		// load is then seen by the watcher.
		if len(cfg.Detect.RulesDirs) > 0 {
			fp, err := detect.Fingerprint(cfg.Detect.RulesDirs)
			if err != nil {
				return nil, fmt.Errorf("processor: %w", err)
			}
			p.fp = fp
		}
		eng, err := newEngine(cfg.Detect, p.log, detect.WithStateStore(kvstate.New(js)))
		if err != nil {
			return nil, err
		}
		if set.Registerer != nil {
			if err := eng.RegisterMetrics(set.Registerer); err != nil {
				return nil, fmt.Errorf("processor: %w", err)
			}
		}
		p.det, p.eng = eng, eng
	}
	return p, nil
}

// newEngine loads the configured rules. A rule that cannot load is logged
// and the others run: one bad file must not turn detection off.
func newEngine(cfg detect.Config, log *slog.Logger, opts ...detect.Option) (*detect.Engine, error) {
	rules, problems, err := detect.Load(detect.LoadOptions{Placeholders: cfg.Placeholders}, cfg.Sources()...)
	if err != nil {
		return nil, fmt.Errorf("processor: load rules: %w", err)
	}
	for _, pr := range problems {
		if pr.Unsupported {
			log.Warn("rule not loaded: unsupported construct", "ruleset", pr.Ruleset, "file", pr.File, "rule_id", pr.RuleID, "construct", pr.Construct, "error", pr.Err)
		} else {
			log.Error("rule not loaded: invalid", "ruleset", pr.Ruleset, "file", pr.File, "rule_id", pr.RuleID, "error", pr.Err)
		}
	}
	log.Info("detection rules loaded", "rules", len(rules.All()), "not_loaded", len(problems))
	return detect.NewEngine(rules, cfg, opts...), nil
}

// Run takes part in the processor replicas' membership (processor/partition)
// and consumes the partitions assigned to this replica, on every raw stream,
// until ctx is cancelled; then it stops fetching, finishes the messages in
// hand (publish, wait for acks, ack inputs), gives its partitions up and
// returns. A partition taken away while running is handed over the same way.
func (p *Pipeline) Run(ctx context.Context) error {
	// Every partition's consumers exist before any replica pulls, so the
	// ones this replica may be given later need no setup then.
	for _, src := range p.set.Sources {
		stream, err := topology.RawStream(src)
		if err != nil {
			return err
		}
		// A count other than the stream's would leave partitions nobody
		// consumes (or consumers of partitions that never fill).
		info, err := topology.LookupStream(ctx, p.js, stream)
		if err != nil {
			return fmt.Errorf("processor: %w", err)
		}
		if n, ok := topology.StreamPartitions(src, info.CachedInfo().Config); !ok || n != p.set.Partitions {
			return fmt.Errorf("processor: raw stream %s has %s, the processor is configured for %d (topology.partitions): give every stage the same topology, or let the topology be ensured",
				stream, partitionsString(n, ok), p.set.Partitions)
		}
		for part := range p.set.Partitions {
			cc, err := topology.ProcessorConsumerConfig(src, part, p.set.Consumer)
			if err != nil {
				return fmt.Errorf("processor: %w", err)
			}
			if _, err := topology.EnsureConsumer(ctx, p.js, topology.ConsumerDecl{Stream: stream, Config: cc}); err != nil {
				return fmt.Errorf("processor: %w", err)
			}
		}
	}
	members, err := partition.New(p.js, p.cfg.Partitions, p.set.Partitions, p.log)
	if err != nil {
		return fmt.Errorf("processor: %w", err)
	}
	p.log = p.log.With("replica", members.ID())

	var wg sync.WaitGroup
	memberErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		memberErr <- members.Run(ctx)
	}()
	if p.eng != nil {
		// Rule directories are watched while the pipeline runs.
		wg.Add(1)
		go func() {
			defer wg.Done()
			detect.Watch(ctx, p.cfg.Detect, p.eng, detect.LoadOptions{Placeholders: p.cfg.Detect.Placeholders}, p.log, p.fp)
		}()
	}

	workers := map[int]*partitionWorker{}
	for owned := range members.Updates() {
		p.reconcile(ctx, members, workers, owned)
	}
	// Updates is closed: ctx is done (or the membership could not start).
	p.reconcile(ctx, members, workers, nil)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	for _, part := range members.Held() {
		members.Release(rctx, part) // claimed, never started: ctx ended first
	}
	cancel()
	wg.Wait()
	p.addErr(<-memberErr)
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return errors.Join(p.errs...)
}

func partitionsString(n int, ok bool) string {
	if !ok {
		return "no crowsnest partitioning (a stream from before partitions, or another tool's)"
	}
	return fmt.Sprintf("%d partitions", n)
}

func (p *Pipeline) addErr(err error) {
	if err == nil {
		return
	}
	p.errMu.Lock()
	p.errs = append(p.errs, err)
	p.errMu.Unlock()
}

// partitionWorker consumes one partition on every raw stream.
type partitionWorker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// reconcile makes the running workers those of owned: it first hands over
// the partitions no longer ours (each drained: its messages in hand finished
// and acked, then unpinned and its claim released, so the new owner starts
// at once rather than after pinned_ttl or a lease), then starts the new ones.
func (p *Pipeline) reconcile(ctx context.Context, members *partition.Membership, workers map[int]*partitionWorker, owned []int) {
	var released []int
	for part, w := range workers {
		if !slices.Contains(owned, part) {
			w.cancel()
			released = append(released, part)
		}
	}
	slices.Sort(released)
	for _, part := range released {
		<-workers[part].done
		delete(workers, part)
		p.unpin(ctx, part)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		members.Release(rctx, part)
		cancel()
		p.pm.handovers.WithLabelValues("released").Inc()
		p.log.Info("partition released", "partition", part)
	}
	for _, part := range owned {
		if _, ok := workers[part]; ok || ctx.Err() != nil {
			continue
		}
		// Holding the claim means its previous owner released it (after
		// unpinning) or died: a pin still held is a dead client's, which
		// would otherwise keep the partition idle for pinned_ttl.
		p.unpin(ctx, part)
		workers[part] = p.startPartition(ctx, part, members.Fence(part))
		p.pm.handovers.WithLabelValues("acquired").Inc()
		p.log.Info("partition acquired", "partition", part)
	}
	p.pm.owned.Set(float64(len(workers)))
}

func (p *Pipeline) startPartition(ctx context.Context, part int, fence Fence) *partitionWorker {
	wctx, cancel := context.WithCancel(ctx)
	w := &partitionWorker{cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, src := range p.set.Sources {
		stream, _ := topology.RawStream(src) // checked by Run
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.keepConsuming(wctx, src, stream, part, fence)
		}()
	}
	go func() {
		wg.Wait()
		close(w.done)
	}()
	return w
}

// maxConsumerRetryDelay bounds the wait between attempts to consume a
// partition again after a failure.
const maxConsumerRetryDelay = 30 * time.Second

// keepConsuming consumes part of src's raw stream until ctx ends. A failure
// — the consumer lookup timing out while a cluster node restarts, the
// consumer lost with a server's store or deleted — is retried with backoff,
// the consumer made again if it is gone: the partition stays this
// replica's, so giving up would leave it unconsumed until the replica
// stops (found by TestClusterRestartsSmoke: a partition stalled for good).
func (p *Pipeline) keepConsuming(ctx context.Context, src, stream string, part int, fence Fence) {
	delay := p.cfg.RetryDelay
	for ctx.Err() == nil {
		consumed, err := p.consumePartition(ctx, src, stream, part, fence)
		if err == nil || ctx.Err() != nil {
			return // consume returns nil only once ctx is done
		}
		if consumed {
			delay = p.cfg.RetryDelay // it ran: a fresh failure, not the same one again
		}
		p.log.Error("partition consumer failed; retrying", "stream", stream, "partition", part, "retry_in", delay, "error", err)
		p.set.Metrics.Error(telemetry.ReadFailed, telemetry.StageReceiving)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxConsumerRetryDelay)
	}
}

// consumePartition looks part's consumer up (making it again when it is
// gone) and consumes it; consumed reports whether consuming started.
func (p *Pipeline) consumePartition(ctx context.Context, src, stream string, part int, fence Fence) (consumed bool, err error) {
	name := topology.ProcessorConsumerName(part)
	cons, err := p.js.Consumer(ctx, stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		var cc jetstream.ConsumerConfig
		if cc, err = topology.ProcessorConsumerConfig(src, part, p.set.Consumer); err == nil {
			cons, err = topology.EnsureConsumer(ctx, p.js, topology.ConsumerDecl{Stream: stream, Config: cc})
		}
	}
	if err != nil {
		return false, fmt.Errorf("consumer %s on %s: %w", name, stream, err)
	}
	return true, p.consume(ctx, src, cons, fence)
}

// unpin releases this replica's pin on part's consumers, if it holds it.
func (p *Pipeline) unpin(ctx context.Context, part int) {
	if p.set.Consumer.PinnedTTL <= 0 {
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, src := range p.set.Sources {
		stream, _ := topology.RawStream(src)
		s, err := p.js.Stream(uctx, stream)
		if err == nil {
			err = s.UnpinConsumer(uctx, topology.ProcessorConsumerName(part), topology.ProcessorPriorityGroup)
		}
		if err != nil {
			// The pin then lapses after pinned_ttl: a slower hand-over, not a wrong one.
			p.log.Debug("unpin partition consumer", "stream", stream, "partition", part, "error", err)
		}
	}
}

// fetchWait is how long one fetch waits for messages. It bounds how long a
// stop or a hand-over waits for the fetch in progress.
const fetchWait = time.Second

// pending is one input whose outputs have not all been acknowledged yet.
type pending struct {
	msg    jetstream.Msg
	source string
	acks   []jetstream.PubAckFuture
	// writes are the correlation checkpoints its detection wrote: awaited
	// like its outputs, so a window is durable before the match is acked.
	writes []*kvstate.Write
	at     time.Time // when its outputs were all published
}

// consume processes cons's messages until ctx ends, while fence holds:
// past it, fetching pauses and the messages in hand go back to JetStream
// unprocessed, since another replica may own the partition by now.
func (p *Pipeline) consume(ctx context.Context, source string, cons jetstream.Consumer, fence Fence) error {
	subject, err := topology.EventSubject(source)
	if err != nil {
		return err
	}
	// Fetches, not a continuous pull: a fetch ends with every message the
	// server sent for it received, so stopping between fetches leaves no
	// message in transit to come back after ack_wait — after the next owner
	// of the partition has processed later ones.
	opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(fetchWait)}
	// The consumer's own policy, not this replica's setting: a replica
	// configured otherwise than the one that made the consumer must still
	// pull the way the server expects.
	if cons.CachedInfo().Config.PriorityPolicy == jetstream.PriorityPolicyPinned {
		// Only the pinned replica receives; the others' pulls wait their turn.
		opts = append(opts, jetstream.FetchPriorityGroup(topology.ProcessorPriorityGroup))
	}

	// The acker waits for each output's PubAck and only then acks the input,
	// so a crash in between leaves the input unacked: it is redelivered and
	// its republish is dropped by the events stream's Nats-Msg-Id dedup.
	inflight := make(chan pending, p.cfg.MaxInFlight)
	// Every output's Crowsnest-Source header: one slice, never changed.
	free := newOutputMsgs(p.cfg.MaxInFlight, []string{source})
	ackerDone := make(chan struct{})
	go func() {
		defer close(ackerDone)
		p.ackLoop(inflight, free)
	}()
	defer func() {
		close(inflight)
		<-ackerDone
	}()

	var (
		ev       schemas.Event
		subjects collectorOf
		futs     []jetstream.PubAckFuture
		writes   []*kvstate.Write
		partErrs []error
		pubErr   error
	)
	// Detection's state writes are not waited for: each joins the outputs
	// of the input being handled (this goroutine's, one at a time), and
	// those of one key are coalesced until the flush after each fetched
	// batch — a synchronous write per correlation match left the processor
	// idle on round trips.
	stateWrites := kvstate.NewWrites(func(w *kvstate.Write) { writes = append(writes, w) })
	dctx := kvstate.WithWrites(ctx, stateWrites)
	defer stateWrites.Flush() // before the acker's end (deferred earlier, run later)
	// publishAlert sends one alert; its id derives from the rule and the
	// event, so a redelivered input's alert is dropped as a duplicate.
	publishAlert := func(a *schemas.Alert) error {
		subj, err := topology.AlertSubject(detect.Level(a))
		if err != nil {
			return fmt.Errorf("alert %s: %w", a.Event.ID, err)
		}
		// A message of its own: the async publish keeps it until the PubAck
		// (and retries with it); the acker recycles it.
		out := free.get(subj, a.Event.ID)
		out.Data = a.AppendJSON(out.Data)
		fut, err := p.pub.PublishMsgAsync(out)
		if err != nil {
			return fmt.Errorf("publish alert %s: %w", a.Event.ID, err)
		}
		futs = append(futs, fut)
		return nil
	}
	emit := func(ev *schemas.Event, err error) error {
		if err != nil {
			partErrs = append(partErrs, err)
			return nil
		}
		if p.enr != nil {
			p.enr.Enrich(ev) // before publishing and detection: both see the joined event
		}
		// Encoded straight into a message of its own (the async publish
		// keeps it until the PubAck, and retries with it), recycled by the acker.
		out := free.get(subject, ev.Event.ID)
		out.Data = ev.AppendJSON(out.Data)
		fut, err := p.pub.PublishMsgAsync(out)
		if err != nil {
			pubErr = fmt.Errorf("publish event %s: %w", ev.Event.ID, err)
			return pubErr // stop: the whole input is redelivered
		}
		futs = append(futs, fut)
		if p.det != nil {
			// Alerts join the input's outputs: it is acked only once the
			// event and every alert it raised are stored.
			if err := p.det.Process(dctx, ev, publishAlert); err != nil {
				pubErr = err
				return pubErr
			}
		}
		return nil
	}
	handle := func(msg jetstream.Msg) {
		p.set.Metrics.Received(1)
		rec := recordOf(source, msg, &subjects)
		futs, writes, partErrs, pubErr = nil, nil, partErrs[:0], nil
		err := p.norm.NormalizeEach(&rec, &ev, emit)
		switch {
		case pubErr != nil:
			// Outputs already published are dropped as duplicates when the
			// redelivered input publishes them again.
			p.log.Warn("publish event", "source", source, "error", pubErr)
			p.set.Metrics.Error(telemetry.PublishFailed, telemetry.StageSending)
			p.retry(ctx, msg, source, pubErr)
			return
		case err != nil: // the record as a whole is rejected
			p.reject(ctx, msg, source, err, true)
			return
		case len(partErrs) > 0 && len(futs) == 0 && len(writes) == 0:
			p.reject(ctx, msg, source, errors.Join(partErrs...), true)
			return
		case len(partErrs) > 0:
			// Some parts of a batch are bad: the record goes to the dead-letter
			// stream naming them, the good parts go on, and the input is acked
			// once they are stored.
			if !p.reject(ctx, msg, source, errors.Join(partErrs...), false) {
				return
			}
		}
		pd := pending{msg: msg, source: source, acks: futs, writes: writes, at: time.Now()}
		select {
		case inflight <- pd:
		default:
			// The acker may be waiting for a write held for the flush.
			stateWrites.Flush()
			inflight <- pd
		}
	}
	for ctx.Err() == nil {
		if !fence.Valid() {
			p.pm.fenced.Inc()
			p.log.Warn("partition claim not renewed in time: fetching paused until it is", "source", source)
			if !fence.Wait(ctx) {
				return nil
			}
			p.log.Info("partition claim renewed: fetching again", "source", source)
		}
		batch, err := cons.Fetch(p.cfg.FetchBatch, opts...)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				return fmt.Errorf("fetch: %w", err)
			}
			p.log.Warn("fetch failed; retrying", "source", source, "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(p.cfg.RetryDelay):
			}
			continue
		}
		for msg := range batch.Messages() {
			if !fence.Valid() && p.handBack(msg) {
				continue
			}
			handle(msg)
		}
		stateWrites.Flush()
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			// A pin moved, a reconnect: the next fetch starts afresh.
			p.log.Debug("fetch ended", "source", source, "error", err)
			if errors.Is(err, jetstream.ErrConsumerDeleted) {
				return fmt.Errorf("fetch: %w", err)
			}
		}
	}
	return nil
}

func (p *Pipeline) ackLoop(inflight <-chan pending, free *outputMsgs) {
	// A PubAck that never comes (the connection closed under the publish)
	// must not hold the partition forever: past the input's ack wait it is
	// redelivered anyway, so waiting longer gains nothing.
	bound := p.set.Consumer.AckWait
	if bound <= 0 {
		bound = 30 * time.Second
	}
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for pd := range inflight {
		var failed error
		// The bound runs from when the input was handed on, so a backlog of
		// inputs whose acks will never come fails at once, not one bound each.
		timer.Reset(max(time.Until(pd.at.Add(bound)), 0))
		for _, f := range pd.acks {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				failed = err
			case <-timer.C:
				failed = fmt.Errorf("no PubAck within %s", bound)
			}
			if failed != nil {
				break
			}
		}
		for _, w := range pd.writes {
			if failed != nil {
				break
			}
			select {
			case <-w.Done():
				failed = w.Err()
			case <-timer.C:
				failed = fmt.Errorf("state write not acknowledged within %s", bound)
			}
		}
		if failed != nil {
			p.log.Warn("event not stored, input will be redelivered", "error", failed)
			p.set.Metrics.Error(telemetry.PublishFailed, telemetry.StageSending)
			p.retry(context.Background(), pd.msg, pd.source, fmt.Errorf("event not stored: %w", failed))
			continue
		}
		// Every output is stored: the publisher is done with them.
		for _, f := range pd.acks {
			free.put(f.Msg())
		}
		if err := pd.msg.Ack(); err != nil {
			p.log.Warn("ack input", "error", err)
			p.set.Metrics.Error(telemetry.AckFailed, telemetry.StageSending)
			continue
		}
		p.set.Metrics.Sent(len(pd.acks))
	}
}

// outputMsgs recycles output messages: the buffer each is encoded into and
// its headers. A published output must stay untouched until its PubAck (the
// async publisher resends it on no responders), so each output gets a
// message of its own; allocating a fresh 3 KB buffer and header map per
// event was most of the pipeline's own garbage. The acker hands a message
// back once its PubAck is in, never after a failure (the publisher may still
// hold it). Bounded: at most n are kept, none with a buffer larger than
// outputBufMax (one huge event must not pin its buffer), none whose headers
// are not the two outputHeader set.
type outputMsgs struct {
	free   chan *nats.Msg
	source []string // every output's Crowsnest-Source value, shared, read-only
}

// outputBufSize is a new buffer's capacity: a Kubernetes audit event with
// its event.original fits.
const outputBufSize = 4 << 10

// outputBufMax is the largest buffer kept for reuse.
const outputBufMax = 64 << 10

func newOutputMsgs(n int, source []string) *outputMsgs {
	return &outputMsgs{free: make(chan *nats.Msg, n), source: source}
}

// get returns a message for subject with id as its Nats-Msg-Id and empty
// Data to encode into, recycled when one is free.
func (o *outputMsgs) get(subject, id string) *nats.Msg {
	select {
	case m := <-o.free:
		m.Subject, m.Data = subject, m.Data[:0]
		m.Header[headers.MsgID][0] = id
		return m
	default:
		return &nats.Msg{Subject: subject, Data: make([]byte, 0, outputBufSize), Header: outputHeader(id, o.source)}
	}
}

// put hands back a message no one else uses any more; kept if there is room
// and it is still as get made it.
func (o *outputMsgs) put(m *nats.Msg) {
	if m == nil || cap(m.Data) == 0 || cap(m.Data) > outputBufMax || m.Reply != "" ||
		len(m.Header) != 2 || len(m.Header[headers.MsgID]) != 1 || len(m.Header[headers.Source]) != 1 {
		return
	}
	select {
	case o.free <- m:
	default:
	}
}

// handBackDelay is how long a message handed back past the fence waits
// before redelivery: longer than the fetch in progress, which would
// otherwise take it again at once, and again, until max_deliver.
const handBackDelay = 2 * fetchWait

// handBack returns msg to JetStream unprocessed because this replica's claim
// on its partition has lapsed, and reports true; whoever owns the partition
// then takes it. On its last delivery it reports false and the caller
// processes it anyway: the worst an owner past its claim does is reorder
// a message among its entity's, while a message handed back after its last
// delivery would be stuck in the work queue.
func (p *Pipeline) handBack(msg jetstream.Msg) bool {
	if md, err := msg.Metadata(); err == nil && p.set.Consumer.IsLastDelivery(md.NumDelivered) {
		return false
	}
	if err := msg.NakWithDelay(handBackDelay); err != nil {
		p.set.Metrics.Error(telemetry.AckFailed, telemetry.StageSending)
	}
	return true
}

// retry hands msg back to JetStream for a later delivery, unless this was
// its last: the raw streams are work queues, so a message past MaxDeliver
// would sit there unprocessed until it ages out. The last attempt's failure
// goes to the dead-letter stream instead.
func (p *Pipeline) retry(ctx context.Context, msg jetstream.Msg, source string, cause error) {
	if md, err := msg.Metadata(); err == nil && p.set.Consumer.IsLastDelivery(md.NumDelivered) {
		p.reject(ctx, msg, source, fmt.Errorf("gave up after %d deliveries: %w", md.NumDelivered, cause), true)
		return
	}
	if err := msg.NakWithDelay(p.cfg.RetryDelay); err != nil {
		p.set.Metrics.Error(telemetry.AckFailed, telemetry.StageSending)
	}
}

// reject dead-letters msg and, when terminate is set, terminates it. If the
// dead-letter stream cannot take it, the input is left for redelivery rather
// than lost, and reject reports false.
func (p *Pipeline) reject(ctx context.Context, msg jetstream.Msg, source string, reason error, terminate bool) bool {
	p.set.Metrics.Error(telemetry.DecodeFailed, telemetry.StageProcessing)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.DeadLetterTimeout)
	defer cancel()
	rec := deadletter.FromMsg(topology.ProcessorStage, msg, reason)
	rec.Source = source // the subject's, not what the collector claims
	if err := p.dlq.Publish(dctx, rec); err != nil {
		p.log.Error("dead-letter failed; input left for redelivery", "source", source, "error", err)
		_ = msg.NakWithDelay(p.cfg.RetryDelay)
		return false
	}
	p.log.Debug("rejected record", "source", source, "subject", msg.Subject(), "reason", reason)
	p.set.Metrics.DiscardedUnintentional(1) // dead-lettered: counted, never silent
	if !terminate {
		return true
	}
	if err := msg.TermWithReason("rejected: dead-lettered"); err != nil {
		p.log.Warn("terminate rejected input", "error", err)
		p.set.Metrics.Error(telemetry.AckFailed, telemetry.StageSending)
	}
	return true
}

// recordOf reads the transport metadata. The source and collector come from
// the subject, which NATS permissions bind to the collector's identity;
// headers are only what the collector claims.
func recordOf(source string, msg jetstream.Msg, subjects *collectorOf) normalize.Record {
	h := msg.Headers()
	rec := normalize.Record{
		Source:  source,
		Data:    msg.Data(),
		Subject: msg.Subject(),
		ID:      h.Get(headers.MsgID),
		Node:    h.Get(headers.Node),
		// The client allocates each message's payload, and nothing here
		// writes it: the normalizer may read it without a copy.
		Owned: true,
	}
	rec.Collector = subjects.collector(msg.Subject())
	if v := h.Get(headers.Observed); v != "" {
		if t, err := headers.ParseTime(v); err == nil {
			rec.Observed = t
		}
	}
	return rec
}

// collectorOf remembers the collector token of the last raw subject seen:
// a consumer's messages come in runs from one collector and key, and
// parsing the subject allocated for each.
type collectorOf struct{ subject, token string }

// collector returns the collector token of a stored raw subject,
// crowsnest.raw.<source>.<partition>.<collector>.<key>; "" for another.
func (c *collectorOf) collector(subject string) string {
	if subject != c.subject {
		c.subject, c.token = subject, ""
		if st, ok := topology.ParseRawStored(subject); ok {
			c.token = st.Collector
		}
	}
	return c.token
}

// outputHeader is an output's headers: its Nats-Msg-Id, derived from the
// input so a redelivered input's outputs are dropped as duplicates, and
// its source (source shared by every output, read-only). Built as one
// literal: Set would grow the map twice.
func outputHeader(id string, source []string) nats.Header {
	return nats.Header{headers.MsgID: {id}, headers.Source: source}
}

// Config is what a user writes under `processor:`.
type Config struct {
	// Normalize bounds and shapes normalization.
	Normalize normalize.Config `yaml:"normalize"`
	// Enrich is the entity join: container ↔ pod, namespace, node, image.
	Enrich enrich.Config `yaml:"enrich"`
	// Detect is the detection stage: rules, suppression.
	Detect detect.Config `yaml:"detect"`
	// Partitions is how this replica shares the raw streams' partitions
	// with the others (processor/partition).
	Partitions partition.Config `yaml:"partitions"`
	// FetchBatch is how many messages each raw stream's pull requests ask for.
	FetchBatch int `yaml:"fetch_batch"`
	// MaxInFlight bounds outputs published and not yet acknowledged, per raw stream.
	MaxInFlight int `yaml:"max_in_flight"`
	// RetryDelay is how long a message waits before redelivery after a transient failure.
	RetryDelay time.Duration `yaml:"retry_delay"`
	// DeadLetterTimeout bounds one dead-letter publish.
	DeadLetterTimeout time.Duration `yaml:"dead_letter_timeout"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{Normalize: normalize.NewDefaultConfig(), Enrich: enrich.NewDefaultConfig(), Detect: detect.NewDefaultConfig(), Partitions: partition.NewDefaultConfig(), FetchBatch: 500, MaxInFlight: 1024, RetryDelay: 2 * time.Second, DeadLetterTimeout: 10 * time.Second}
}

// Validate reports every invalid field, paths relative to `processor`.
func (c Config) Validate() error {
	var errs []error
	if err := c.Normalize.Validate(); err != nil {
		errs = append(errs, &config.ValidationError{Path: "normalize", Err: err})
	}
	if c.Enrich.Enabled {
		if err := c.Enrich.Validate(); err != nil {
			errs = append(errs, &config.ValidationError{Path: "enrich", Err: err})
		}
	}
	if err := c.Detect.Validate(); err != nil {
		errs = append(errs, &config.ValidationError{Path: "detect", Err: err})
	}
	if err := c.Partitions.Validate(); err != nil {
		errs = append(errs, &config.ValidationError{Path: "partitions", Err: err})
	}
	if c.FetchBatch < 1 || c.FetchBatch > 10000 {
		errs = append(errs, config.FieldError("fetch_batch", "must be 1..10000, got %d", c.FetchBatch))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, config.FieldError("max_in_flight", "must be >= 1, got %d", c.MaxInFlight))
	}
	if c.RetryDelay <= 0 {
		errs = append(errs, config.FieldError("retry_delay", "must be > 0 (e.g. 2s), got %s", c.RetryDelay))
	}
	if c.DeadLetterTimeout <= 0 {
		errs = append(errs, config.FieldError("dead_letter_timeout", "must be > 0 (e.g. 10s), got %s", c.DeadLetterTimeout))
	}
	return errors.Join(errs...)
}
