package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/telemetry"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Normalizer turns one raw record into one event, or says why it cannot.
type Normalizer interface {
	Normalize(rec *normalize.Record, ev *schemas.Event) error
}

// DeadLetterer records a rejected message and returns once JetStream has it.
type DeadLetterer interface {
	Reject(ctx context.Context, msg jetstream.Msg, source string, reason error) error
}

// Publisher is the part of jetstream.JetStream the pipeline publishes with.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Settings is what the caller injects.
type Settings struct {
	Logger  *slog.Logger
	Metrics *telemetry.Component
	// Sources limits the raw streams consumed; empty means every source.
	Sources []string
	// Consumer is the durable consumer configuration (from topology).
	Consumer topology.ConsumerSettings
}

// Pipeline consumes every raw stream, normalizes, publishes events and acks.
type Pipeline struct {
	js   jetstream.JetStream
	pub  Publisher
	norm Normalizer
	dlq  DeadLetterer
	cfg  Config
	set  Settings
	log  *slog.Logger
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
	return &Pipeline{js: js, pub: js, norm: norm, dlq: dlq, cfg: cfg, set: set, log: set.Logger.With("component", "processor")}, nil
}

// Run consumes until ctx is cancelled, then stops fetching, finishes the
// messages in hand (publish, wait for acks, ack inputs) and returns.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(p.set.Sources))
	for _, src := range p.set.Sources {
		stream, err := topology.RawStream(src)
		if err != nil {
			return err
		}
		cons, err := topology.EnsureConsumer(ctx, p.js, topology.ConsumerDecl{Stream: stream, Config: topology.ProcessorConsumerConfig(p.set.Consumer)})
		if err != nil {
			return fmt.Errorf("processor: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.consume(ctx, src, cons); err != nil {
				errs <- fmt.Errorf("processor on %s: %w", stream, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// pending is one input whose output publish has not been acknowledged yet.
type pending struct {
	msg jetstream.Msg
	ack jetstream.PubAckFuture
}

func (p *Pipeline) consume(ctx context.Context, source string, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(p.cfg.FetchBatch))
	if err != nil {
		return fmt.Errorf("start pulling: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()

	// The acker waits for each output's PubAck and only then acks the input,
	// so a crash in between leaves the input unacked: it is redelivered and
	// its republish is dropped by the events stream's Nats-Msg-Id dedup.
	inflight := make(chan pending, p.cfg.MaxInFlight)
	ackerDone := make(chan struct{})
	go func() {
		defer close(ackerDone)
		p.ackLoop(inflight)
	}()
	defer func() {
		close(inflight)
		<-ackerDone
	}()

	var ev schemas.Event
	buf := make([]byte, 0, 8<<10)
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("next message: %w", err)
		}
		p.metricReceived()
		rec := recordOf(source, msg)
		ev = schemas.Event{}
		if err := p.norm.Normalize(&rec, &ev); err != nil {
			p.reject(ctx, msg, source, err)
			continue
		}
		buf = ev.AppendJSON(buf[:0])
		out := &nats.Msg{
			Subject: topology.EventSubject(source),
			Data:    append([]byte(nil), buf...), // the async publish keeps it until acked
			Header:  nats.Header{},
		}
		out.Header.Set(headers.MsgID, ev.Event.ID)
		out.Header.Set(headers.Source, source)
		fut, err := p.pub.PublishMsgAsync(out)
		if err != nil {
			p.log.Warn("publish event", "source", source, "event_id", ev.Event.ID, "error", err)
			p.metricError(telemetry.PublishFailed, telemetry.StageSending)
			_ = msg.NakWithDelay(p.cfg.RetryDelay) // redelivered; nothing was published
			continue
		}
		inflight <- pending{msg: msg, ack: fut}
	}
}

func (p *Pipeline) ackLoop(inflight <-chan pending) {
	for pd := range inflight {
		select {
		case <-pd.ack.Ok():
			if err := pd.msg.Ack(); err != nil {
				p.log.Warn("ack input", "error", err)
				continue
			}
			p.metricSent()
		case err := <-pd.ack.Err():
			p.log.Warn("event not stored, input will be redelivered", "error", err)
			p.metricError(telemetry.PublishFailed, telemetry.StageSending)
			_ = pd.msg.NakWithDelay(p.cfg.RetryDelay)
		}
	}
}

// reject dead-letters msg and terminates it; if the dead-letter stream cannot
// take it, the input is left for redelivery rather than lost.
func (p *Pipeline) reject(ctx context.Context, msg jetstream.Msg, source string, reason error) {
	p.metricError(telemetry.DecodeFailed, telemetry.StageProcessing)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.DeadLetterTimeout)
	defer cancel()
	if err := p.dlq.Reject(dctx, msg, source, reason); err != nil {
		p.log.Error("dead-letter failed; input left for redelivery", "source", source, "error", err)
		_ = msg.NakWithDelay(p.cfg.RetryDelay)
		return
	}
	p.log.Debug("rejected record", "source", source, "subject", msg.Subject(), "reason", reason)
	if err := msg.TermWithReason("rejected: dead-lettered"); err != nil {
		p.log.Warn("terminate rejected input", "error", err)
	}
	p.metricDiscarded()
}

// recordOf reads the transport metadata. The source and collector come from
// the subject, which NATS permissions bind to the collector's identity;
// headers are only what the collector claims.
func recordOf(source string, msg jetstream.Msg) normalize.Record {
	h := msg.Headers()
	rec := normalize.Record{
		Source:  source,
		Data:    msg.Data(),
		Subject: msg.Subject(),
		ID:      h.Get(headers.MsgID),
		Node:    h.Get(headers.Node),
	}
	// crowsnest.raw.<source>.<collector>
	if parts := strings.SplitN(msg.Subject(), ".", 4); len(parts) == 4 {
		rec.Collector = parts[3]
	}
	if v := h.Get(headers.Observed); v != "" {
		if t, err := headers.ParseTime(v); err == nil {
			rec.Observed = t
		}
	}
	return rec
}

func (p *Pipeline) metricReceived() {
	if p.set.Metrics != nil {
		p.set.Metrics.Received(1)
	}
}

func (p *Pipeline) metricSent() {
	if p.set.Metrics != nil {
		p.set.Metrics.Sent(1)
	}
}

func (p *Pipeline) metricDiscarded() {
	if p.set.Metrics != nil {
		p.set.Metrics.DiscardedIntentional(1)
	}
}

func (p *Pipeline) metricError(t telemetry.ErrorType, s telemetry.Stage) {
	if p.set.Metrics != nil {
		p.set.Metrics.Error(t, s)
	}
}

// Config is the processor's delivery tuning.
type Config struct {
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
	return Config{FetchBatch: 500, MaxInFlight: 1024, RetryDelay: 2 * time.Second, DeadLetterTimeout: 10 * time.Second}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.FetchBatch < 1 || c.FetchBatch > 10000 {
		errs = append(errs, fmt.Errorf("processor.fetch_batch: must be 1..10000, got %d", c.FetchBatch))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("processor.max_in_flight: must be >= 1, got %d", c.MaxInFlight))
	}
	if c.RetryDelay <= 0 {
		errs = append(errs, fmt.Errorf("processor.retry_delay: must be > 0 (e.g. 2s), got %s", c.RetryDelay))
	}
	if c.DeadLetterTimeout <= 0 {
		errs = append(errs, fmt.Errorf("processor.dead_letter_timeout: must be > 0 (e.g. 10s), got %s", c.DeadLetterTimeout))
	}
	return errors.Join(errs...)
}
