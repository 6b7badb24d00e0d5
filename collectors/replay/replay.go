package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/crowsnest-siem/crowsnest/collectors/entitykey"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Publisher is what the replay needs of the publisher: batches whose Ack
// says when the records are durable.
type Publisher interface {
	NewBatch() *publish.Batch
}

var _ Publisher = (*publish.Publisher)(nil)

// Settings is what the code gives a Replayer.
type Settings struct {
	// Publisher takes the records. Required.
	Publisher Publisher
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Replayer replays a sample set through a publisher.
type Replayer struct {
	cfg     Config
	pub     Publisher
	log     *slog.Logger
	now     func() time.Time
	samples *sampleSet
}

// New loads the sample set (the bundled one unless cfg.Files names files)
// and returns a Replayer. It validates cfg.
func New(cfg Config, s Settings) (*Replayer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("replay config: %w", err)
	}
	if s.Publisher == nil {
		return nil, errors.New("replay: Settings.Publisher is nil")
	}
	set, err := loadSamples(cfg.Files)
	if err != nil {
		return nil, err
	}
	// Rewrite every record once now, so that a record the replay cannot
	// rewrite fails the start, not the hundredth loop.
	probe := position{instance: "probe"}
	for i := range set.records {
		probe.index = i
		if _, _, err := set.records[i].rw.rewrite(&set.records[i], probe, time.Now()); err != nil {
			return nil, fmt.Errorf("replay record %d (%s): %w", i, set.records[i].source, err)
		}
	}
	r := &Replayer{cfg: cfg, pub: s.Publisher, log: s.Logger, now: s.Now, samples: set}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.log = r.log.With("component", "replay")
	return r, nil
}

// RecordsPerLoop is how many records one pass over the sample set holds.
func (r *Replayer) RecordsPerLoop() int { return len(r.samples.records) }

// Run replays until cfg.Loops or cfg.MaxEvents is reached (then it returns
// nil) or ctx ends (then it returns ctx's error). Either way the checkpoint
// holds the position after the last acknowledged record. Run may be called
// again, on the same or another Replayer over the same data dir, to go on.
func (r *Replayer) Run(ctx context.Context) error {
	cp, resumed, err := loadCheckpoint(r.cfg.DataDir)
	if err != nil {
		return err
	}
	n := len(r.samples.records)
	switch {
	case !resumed:
		cp.Samples = r.samples.fingerprint
	case cp.Samples != r.samples.fingerprint || cp.Index >= n:
		// The position refers to another sample set: finish that loop and
		// start a fresh one on this set. Loop numbers keep ids unique.
		r.log.Warn("replay sample set changed since the checkpoint; starting a new loop",
			"checkpoint_loop", cp.Loop, "checkpoint_index", cp.Index)
		cp.Samples, cp.Loop, cp.Index = r.samples.fingerprint, cp.Loop+1, 0
	}
	r.log.Info("replay starting", "instance", cp.InstanceID, "loop", cp.Loop, "index", cp.Index,
		"records_per_loop", n, "rate", r.cfg.Rate, "resumed", resumed)

	lim := rate.NewLimiter(rate.Inf, 0)
	if r.cfg.Rate > 0 {
		// A burst of a tenth of a second's worth lets one batch carry
		// several records at high rates without running ahead of the rate.
		lim = rate.NewLimiter(rate.Limit(r.cfg.Rate), max(1, int(math.Ceil(r.cfg.Rate/10))))
	}

	var published int64 // this run
	lastSave := r.now()
	saved := cp
	save := func() error {
		if cp == saved {
			return nil
		}
		cp.Updated = r.now().UTC()
		if err := cp.save(r.cfg.DataDir); err != nil {
			return err
		}
		saved = cp
		lastSave = r.now()
		return nil
	}
	finish := func(runErr error) error {
		if err := save(); err != nil {
			return errors.Join(runErr, err)
		}
		r.log.Info("replay stopped", "instance", cp.InstanceID, "loop", cp.Loop, "index", cp.Index,
			"published_this_run", published, "published_total", cp.Published)
		return runErr
	}

	for {
		want := r.cfg.BatchSize
		if r.cfg.MaxEvents > 0 {
			want = int(min(int64(want), r.cfg.MaxEvents-published))
		}
		if r.cfg.Loops > 0 {
			want = int(min(int64(want), (int64(r.cfg.Loops)-cp.Loop)*int64(n)-int64(cp.Index)))
		}
		if want <= 0 {
			return finish(nil)
		}
		k, err := take(ctx, lim, want)
		if err != nil {
			return finish(err)
		}
		next, err := r.publishBatch(ctx, cp, k)
		if err != nil {
			return finish(err)
		}
		published += int64(k)
		cp.Published += int64(k)
		cp.Loop, cp.Index = next.loop, next.index
		if r.now().Sub(lastSave) >= r.cfg.CheckpointInterval {
			if err := save(); err != nil {
				return finish(err)
			}
		}
	}
}

// take waits for the rate limiter to allow at least one record and returns
// how many (up to want) it allows now.
func take(ctx context.Context, lim *rate.Limiter, want int) (int, error) {
	if err := lim.Wait(ctx); err != nil {
		// Wait refuses at once when ctx's deadline comes before the next
		// token: the run ends at the deadline, as it would have anyway.
		<-ctx.Done()
		return 0, ctx.Err()
	}
	k := 1
	for k < want && lim.Allow() {
		k++
	}
	return k, nil
}

// publishBatch publishes k records from cp's position and waits until they
// are acknowledged. It returns the position after them.
func (r *Replayer) publishBatch(ctx context.Context, cp checkpoint, k int) (position, error) {
	n := len(r.samples.records)
	pos := position{instance: cp.InstanceID, loop: cp.Loop, index: cp.Index}
	b := r.pub.NewBatch()
	for range k {
		s := &r.samples.records[pos.index]
		data, id, err := s.rw.rewrite(s, pos, r.now())
		if err != nil {
			b.Seal()
			return pos, fmt.Errorf("replay record %d (%s): %w", pos.index, s.source, err)
		}
		if err := b.Add(ctx, publish.Record{Source: s.source, Data: data, ID: id, Observed: r.now(), Key: entitykey.Of(s.source, data)}); err != nil {
			b.Seal()
			return pos, fmt.Errorf("replay loop %d record %d: %w", pos.loop, pos.index, err)
		}
		pos.index++
		if pos.index == n {
			pos.loop, pos.index = pos.loop+1, 0
		}
	}
	if err := b.Wait(ctx); err != nil {
		return pos, fmt.Errorf("replay: wait for acknowledgements: %w", err)
	}
	return pos, nil
}
