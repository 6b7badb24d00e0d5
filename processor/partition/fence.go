package partition

import (
	"context"
	"sync/atomic"
	"time"
)

// Fence is this replica's hold on one partition, checked without asking the
// server: Valid reports whether the partition's claim was created or renewed
// recently enough — two thirds of a lease, measured from before the request
// was sent — that it cannot have expired in the bucket, so no other replica
// can hold it yet. The pipeline checks it before each fetch and each message.
// A replica that stalls for longer than a lease (a long GC pause, SIGSTOP, a
// node starved of CPU) and wakes up after another replica took its
// partitions over therefore processes nothing more of them, even before its
// membership loop notices. JetStream's pinned priority group gives the same
// guarantee at the server, at the cost of a header added to every delivered
// message (bus/topology pinned_ttl).
type Fence struct {
	base  time.Time    // monotonic origin of until
	until atomic.Int64 // nanoseconds after base; 0: not held
}

func newFence(base time.Time) *Fence { return &Fence{base: base} }

// Valid reports whether the claim is still certainly ours.
func (f *Fence) Valid() bool {
	u := f.until.Load()
	return u > 0 && time.Since(f.base) < time.Duration(u)
}

// Expires is when the fence lapses unless renewed; zero when not held.
func (f *Fence) Expires() time.Time {
	u := f.until.Load()
	if u == 0 {
		return time.Time{}
	}
	return f.base.Add(time.Duration(u))
}

// Wait returns once the fence is valid (true) or ctx is done (false).
func (f *Fence) Wait(ctx context.Context) bool {
	for !f.Valid() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(fenceWaitPoll):
		}
	}
	return true
}

// fenceWaitPoll is how often Wait looks again: renewals come every third of
// a lease (at least a second), so a fence restored by one is seen soon
// enough, and a poll costs nothing.
const fenceWaitPoll = 50 * time.Millisecond

// extend makes the fence valid until valid after sent, the moment the
// request that created or renewed the claim was sent: the bucket's TTL runs
// from when the server stored it, which is later. It never moves the fence
// back (a slow renewal answered after a faster one).
func (f *Fence) extend(sent time.Time, valid time.Duration) {
	u := int64(sent.Sub(f.base) + valid)
	for {
		cur := f.until.Load()
		if cur >= u || f.until.CompareAndSwap(cur, u) {
			return
		}
	}
}

// clear makes the fence invalid: the claim is released, lost or given up.
func (f *Fence) clear() { f.until.Store(0) }
