package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/nats-io/nats.go/jetstream"
)

// Runner feeds one Sink from its durable consumers and acknowledges what the
// sink wrote. It is used once: New, then Run until the context is cancelled.
type Runner struct {
	js       jetstream.JetStream
	name     string // the sink's name: "file"
	consumer string // its durable consumer and dead-letter stage: "sink-file"
	sink     Sink
	cfg      RunnerConfig
	cs       topology.ConsumerSettings
	log      *slog.Logger
	m        *metrics
	dlq      *deadletter.Publisher
	started  atomic.Bool
}

// New returns a Runner that feeds s from JetStream under the name name (a
// subject token: the consumer is sink-<name>, dead letters go to
// crowsnest.dlq.sink-<name>.<source>). cfg must be valid. The streams must
// exist (bus/topology's Ensure creates them); Run creates or updates the
// consumers.
func New(js jetstream.JetStream, name string, s Sink, cfg RunnerConfig, set Settings) (*Runner, error) {
	if js == nil {
		return nil, errors.New("new sink runner: nil JetStream")
	}
	if s == nil {
		return nil, errors.New("new sink runner: nil sink")
	}
	consumer, err := topology.SinkConsumerName(name)
	if err != nil {
		return nil, fmt.Errorf("new sink runner %q: %w", name, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new sink runner %q: %w", name, err)
	}
	cs := set.consumerSettings()
	if err := checkConsumerFit(cfg, cs); err != nil {
		return nil, fmt.Errorf("new sink runner %q: %w", name, err)
	}
	m, err := newMetrics(set.Metrics, name)
	if err != nil {
		return nil, fmt.Errorf("new sink runner %q: %w", name, err)
	}
	return &Runner{
		js:       js,
		name:     name,
		consumer: consumer,
		sink:     s,
		cfg:      cfg,
		cs:       cs,
		log:      set.LoggerOrDiscard().With("sink", name, "consumer", consumer),
		m:        m,
		dlq:      deadletter.NewPublisher(js),
	}, nil
}

// checkConsumerFit reports a runner config the consumer settings cannot
// serve: a batch must fit in MaxAckPending twice (one being written, one
// prefetched) and wait for its flush well within AckWait, and every ack wait
// must leave the keep-alive room.
func checkConsumerFit(cfg RunnerConfig, cs topology.ConsumerSettings) error {
	var errs []error
	if cs.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("consumers.sink.ack_wait must be at least 1s, got %s", cs.AckWait))
	} else if cfg.FlushInterval > cs.AckWait/2 {
		errs = append(errs, NewFieldError("flush_interval", "must be at most half of consumers.sink.ack_wait (%s), got %s", cs.AckWait, cfg.FlushInterval))
	}
	for i, b := range cs.Backoff {
		// A backoff step is the ack wait of a redelivery: the keep-alive
		// must fit in it as in ack_wait.
		if b < time.Second {
			errs = append(errs, fmt.Errorf("consumers.sink.backoff[%d] must be at least 1s, got %s", i, b))
		}
	}
	if cs.MaxAckPending < 2*cfg.MaxBatchEvents {
		errs = append(errs, NewFieldError("max_batch_events", "must be at most half of consumers.sink.max_ack_pending (%d), got %d", cs.MaxAckPending, cfg.MaxBatchEvents))
	}
	return errors.Join(errs...)
}

// Run consumes until ctx is cancelled or a consumer fails, then drains: it
// stops fetching, writes and acknowledges what it holds, and closes the sink,
// all within DrainTimeout. It returns nil after a clean drain; otherwise the
// errors that stopped it. Run closes the sink whatever happens.
func (r *Runner) Run(ctx context.Context) (err error) {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("sink runner: Run called twice")
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.DrainTimeout)
		defer cancel()
		if cerr := r.sink.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close sink %s: %w", r.name, cerr))
		}
	}()

	decls, err := topology.SinkConsumers(r.name, r.cs)
	if err != nil {
		return fmt.Errorf("sink %s: %w", r.name, err)
	}
	loops := make([]*streamLoop, 0, len(r.cfg.Streams))
	for _, k := range r.cfg.Streams {
		for _, d := range decls {
			if d.Stream != k.Stream() {
				continue
			}
			cons, err := topology.EnsureConsumer(ctx, r.js, d)
			if err != nil {
				return fmt.Errorf("sink %s: %w", r.name, err)
			}
			loops = append(loops, newStreamLoop(r, k, cons))
		}
	}

	// hard outlives ctx by DrainTimeout: the last flush runs on it.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	var drainTimer atomic.Pointer[time.Timer]
	stopAfter := context.AfterFunc(ctx, func() {
		drainTimer.Store(time.AfterFunc(r.cfg.DrainTimeout, cancelHard))
	})
	defer func() {
		stopAfter()
		if t := drainTimer.Load(); t != nil {
			t.Stop()
		}
	}()

	// One failing stream stops the other, gracefully.
	soft, cancelSoft := context.WithCancel(ctx)
	defer cancelSoft()
	var wg sync.WaitGroup
	errs := make([]error, len(loops))
	for i, l := range loops {
		wg.Go(func() {
			errs[i] = l.run(soft, hard)
			if errs[i] != nil {
				cancelSoft()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
