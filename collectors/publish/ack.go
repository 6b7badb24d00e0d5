package publish

import (
	"context"
	"sync"
	"sync/atomic"
)

// Ack is the outcome of one or more published records: Done is closed once
// every one of them is settled, that is acknowledged by JetStream (stored, or
// recognized as a duplicate of a stored record), written to the dead-letter
// stream, handed to the spool, or given up on by Close.
//
// A source checkpoints its position, or answers its client, only after Done
// and only when Err is nil.
type Ack struct {
	// pending counts unsettled records, plus one while the batch is open.
	pending atomic.Int64
	done    chan struct{}
	records atomic.Int64

	mu  sync.Mutex
	err error
}

func (a *Ack) init() {
	a.pending.Store(1) // the open batch
	a.done = make(chan struct{})
}

// Done is closed when every record is settled.
func (a *Ack) Done() <-chan struct{} { return a.done }

// Err is nil until Done is closed; then it is nil when every record was
// stored (or dead-lettered), else the first failure (ErrClosed when Close gave
// up on a record).
func (a *Ack) Err() error {
	select {
	case <-a.done:
	default:
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Records is how many records the Ack covers.
func (a *Ack) Records() int { return int(a.records.Load()) }

// Wait blocks until every record is settled and returns Err, or returns
// ctx's error first. A record whose wait was cancelled stays in flight: the
// publisher keeps retrying it until it is acknowledged or Close gives up.
func (a *Ack) Wait(ctx context.Context) error {
	select {
	case <-a.done:
		return a.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reserve counts one more record before it is published, so that Done
// cannot close while the record is on its way.
func (a *Ack) reserve() {
	a.pending.Add(1)
	a.records.Add(1)
}

// unreserve takes back a reservation for a record that was not published.
func (a *Ack) unreserve() {
	a.records.Add(-1)
	a.settle(nil)
}

// settle records the outcome of one record (or, with the open token, of the
// seal).
func (a *Ack) settle(err error) {
	if err != nil {
		a.mu.Lock()
		if a.err == nil {
			a.err = err
		}
		a.mu.Unlock()
	}
	if a.pending.Add(-1) == 0 {
		close(a.done)
	}
}

// Batch groups records under one Ack: Add each, then Seal (or Wait). Use it
// where many records must be durable before one action — answering a
// webhook's whole EventList, checkpointing a file offset. A Batch may be
// added to from several goroutines.
type Batch struct {
	p   *Publisher
	ack Ack

	mu     sync.Mutex // makes "not sealed, reserve" atomic against Seal
	sealed bool
}

// NewBatch returns an empty, open batch.
func (p *Publisher) NewBatch() *Batch {
	b := &Batch{p: p}
	b.ack.init()
	return b
}

// Add publishes rec as part of the batch. It blocks while max_in_flight
// records are unacknowledged, until ctx ends or the publisher closes. An
// error means rec was not published (its outcome is not part of the Ack);
// records added before stay in flight.
func (b *Batch) Add(ctx context.Context, rec Record) error {
	return b.add(ctx, rec)
}

// AddDeadLetter publishes rec, which the source rejects for reason (a line
// that is not a valid event), to the dead-letter stream — stage "collector",
// a sample of the bytes, the reason — rather than dropping it. It is part of
// the batch like any record: the Ack completes when JetStream stored it.
// rec.ID should be set when the record has an identity (a byte offset, say),
// so that re-sending it after a restart stores it once.
func (b *Batch) AddDeadLetter(ctx context.Context, rec Record, reason string) error {
	if reason == "" {
		reason = "rejected by the collector"
	}
	rec.DeadLetter = reason
	return b.add(ctx, rec)
}

func (b *Batch) add(ctx context.Context, rec Record) error {
	b.mu.Lock()
	if b.sealed {
		b.mu.Unlock()
		return ErrSealed
	}
	b.ack.reserve()
	b.mu.Unlock()
	if err := b.p.publish(ctx, rec, &b.ack); err != nil {
		b.ack.unreserve()
		return err
	}
	return nil
}

// Seal closes the batch to further Adds and returns its Ack. It may be
// called more than once.
func (b *Batch) Seal() *Ack {
	b.mu.Lock()
	first := !b.sealed
	b.sealed = true
	b.mu.Unlock()
	if first {
		b.ack.settle(nil) // the open token
	}
	return &b.ack
}

// Wait seals the batch and waits for its Ack.
func (b *Batch) Wait(ctx context.Context) error {
	return b.Seal().Wait(ctx)
}
