package sinktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Errors the fault injector returns.
var (
	ErrInjected      = errors.New("injected fault")
	ErrInjectedCrash = errors.New("injected fault: the process is dead")
)

// FaultInjectingSink wraps a real sink and injects the faults a real store
// cannot be made to produce on demand: a store that fails a record a set
// number of times, an outage of the whole store, a record the store rejects
// for good, and a crash right after a write, before its acks leave the
// process. It also records what it saw (attempts and delivery counts per
// record id), so a test can check that a fault was really met.
type FaultInjectingSink struct {
	inner sink.Sink

	mu         sync.Mutex
	retryable  map[string]int  // id → failures still to inject
	permanent  map[string]bool // ids rejected for good
	outages    int             // whole-batch failures still to inject
	slow       int             // slow writes still to inject
	delay      time.Duration
	crashAfter int // crash after this many successful writes; 0 never
	crash      func()
	writes     int
	crashed    bool
	attempts   map[string]int
	delivered  map[string]uint64

	// What ObserveConsumer reported, apart: it may come during a write of
	// the other stream.
	floorMu    sync.Mutex
	floors     map[sink.Kind]uint64
	belowFloor []string
}

// NewFaultInjectingSink wraps inner; with no faults set it only records.
func NewFaultInjectingSink(inner sink.Sink) *FaultInjectingSink {
	return &FaultInjectingSink{
		inner:     inner,
		retryable: map[string]int{},
		permanent: map[string]bool{},
		attempts:  map[string]int{},
		delivered: map[string]uint64{},
		floors:    map[sink.Kind]uint64{},
	}
}

// FailRetryable makes the record with id fail with a retryable error the
// next n times it is written.
func (f *FaultInjectingSink) FailRetryable(id string, n int) *FaultInjectingSink {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retryable[id] = n
	return f
}

// FailPermanent makes the record with id fail permanently every time.
func (f *FaultInjectingSink) FailPermanent(id string) *FaultInjectingSink {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.permanent[id] = true
	return f
}

// Outage makes the next n WriteBatch calls fail whole with a plain error,
// before anything reaches the store.
func (f *FaultInjectingSink) Outage(n int) *FaultInjectingSink {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outages = n
	return f
}

// Slow makes the next n WriteBatch calls take at least d longer, as a
// store under load does.
func (f *FaultInjectingSink) Slow(n int, d time.Duration) *FaultInjectingSink {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slow, f.delay = n, d
	return f
}

// CrashAfter calls crash right after the n-th successful write reached the
// store, before WriteBatch returns, and fails every later call without
// touching the store: a process killed between its write and its acks.
// crash should make the acks impossible (close the runner's connection).
func (f *FaultInjectingSink) CrashAfter(n int, crash func()) *FaultInjectingSink {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashAfter, f.crash = n, crash
	return f
}

// Attempts returns how many times the record with id was given to WriteBatch.
func (f *FaultInjectingSink) Attempts(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[id]
}

// MaxDelivered returns the highest delivery count seen for any record.
func (f *FaultInjectingSink) MaxDelivered() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m uint64
	for _, d := range f.delivered {
		m = max(m, d)
	}
	return m
}

// Delivered returns the highest delivery count seen for the record with id.
func (f *FaultInjectingSink) Delivered(id string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.delivered[id]
}

// BelowFloor returns the ids of the redelivered records WriteBatch was given
// at or below an ack floor ObserveConsumer had already reported: the runner
// promises there are none, so that a sink may forget what it wrote there.
func (f *FaultInjectingSink) BelowFloor() []string {
	f.floorMu.Lock()
	defer f.floorMu.Unlock()
	return slices.Clone(f.belowFloor)
}

// Crashed reports whether the crash was injected.
func (f *FaultInjectingSink) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// WriteBatch injects the configured faults and passes the rest to the real sink.
func (f *FaultInjectingSink) WriteBatch(ctx context.Context, batch []sink.Record) error {
	// One call at a time: the faults and the crash are ordered.
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return ErrInjectedCrash
	}
	f.floorMu.Lock()
	for _, r := range batch {
		if r.Delivered > 1 && r.Seq <= f.floors[r.Kind] {
			f.belowFloor = append(f.belowFloor, r.ID)
		}
	}
	f.floorMu.Unlock()
	for _, r := range batch {
		f.attempts[r.ID]++
		f.delivered[r.ID] = max(f.delivered[r.ID], r.Delivered)
	}
	if f.slow > 0 {
		f.slow--
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.outages > 0 {
		f.outages--
		return fmt.Errorf("%w: store unavailable", ErrInjected)
	}
	be := sink.NewBatchError()
	pass := make([]sink.Record, 0, len(batch))
	index := make([]int, 0, len(batch)) // pass[j] is batch[index[j]]
	for i, r := range batch {
		switch {
		case f.permanent[r.ID]:
			be.Failed(i, sink.Permanent(fmt.Errorf("%w: record %s rejected", ErrInjected, r.ID)))
		case f.retryable[r.ID] > 0:
			f.retryable[r.ID]--
			be.Failed(i, fmt.Errorf("%w: record %s failed", ErrInjected, r.ID))
		default:
			pass = append(pass, r)
			index = append(index, i)
		}
	}
	if len(pass) > 0 {
		err := f.inner.WriteBatch(ctx, pass)
		var inner *sink.BatchError
		switch {
		case err == nil:
		case errors.As(err, &inner):
			for _, it := range inner.Items() {
				if it.Index >= 0 && it.Index < len(index) {
					be.Failed(index[it.Index], it.Err)
				}
			}
		default:
			return err // the whole batch failed in the real store
		}
		f.writes++
		if f.crashAfter > 0 && f.writes == f.crashAfter {
			f.crashed = true
			f.crash()
		}
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

// Close closes the real sink, unless it crashed: a dead process closes
// nothing (CloseCrashed does, once the test is done with the store).
func (f *FaultInjectingSink) Close(ctx context.Context) error {
	f.mu.Lock()
	crashed := f.crashed
	f.mu.Unlock()
	if crashed {
		return nil
	}
	return f.inner.Close(ctx)
}

// CloseCrashed closes the real sink after a crash, to release its resources.
func (f *FaultInjectingSink) CloseCrashed(ctx context.Context) error {
	return f.inner.Close(ctx)
}

var _ sink.Sink = (*FaultInjectingSink)(nil)

// ObserveConsumer records the ack floor and passes the consumer status to
// the real sink, if it wants it.
func (f *FaultInjectingSink) ObserveConsumer(s sink.ConsumerStatus) {
	f.floorMu.Lock()
	f.floors[s.Kind] = max(f.floors[s.Kind], s.AckFloor)
	f.floorMu.Unlock()
	if o, ok := f.inner.(sink.ConsumerObserver); ok {
		o.ObserveConsumer(s)
	}
}
