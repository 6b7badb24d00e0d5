package partition

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// Keys in the bucket: member.<replica> is a replica's lease; claim.<p> says
// which replica processes partition p. Both expire a lease after their last
// renewal.
const (
	memberPrefix = "member."
	claimPrefix  = "claim."
)

// Membership holds this replica's lease and its partitions' claims, and says
// which partitions it may process.
//
// A partition is processed by the replica that holds its claim. A replica
// claims a partition assigned to it only once the claim is free: the
// previous owner deletes it after it has finished (Release) — or it expires
// a lease after that owner died. So two replicas never process one partition
// at once, however slow the previous owner is to let go.
type Membership struct {
	cfg        Config
	partitions int
	js         jetstream.JetStream
	log        *slog.Logger
	updates    chan []int
	wake       chan struct{}
	nonce      string // this process's mark on its lease: tells a twin from ourselves

	mu     sync.Mutex
	kv     jetstream.KeyValue
	claims map[int]uint64 // partition -> revision of our claim
	fences []*Fence       // per partition; moved only with mu held, as claims change
}

// New returns a Membership of a replica among those sharing partitions
// partitions. Run starts it.
func New(js jetstream.JetStream, cfg Config, partitions int, log *slog.Logger) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("partitions config: %w", err)
	}
	if partitions < 1 || partitions > topology.MaxPartitions {
		return nil, fmt.Errorf("partitions: count must be 1..%d, got %d", topology.MaxPartitions, partitions)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = defaultID()
	}
	base := time.Now()
	fences := make([]*Fence, partitions)
	for p := range fences {
		fences[p] = newFence(base)
	}
	return &Membership{cfg: cfg, partitions: partitions, js: js, updates: make(chan []int, 1), nonce: newNonce(),
		wake: make(chan struct{}, 1), claims: map[int]uint64{}, fences: fences, log: log.With("replica", cfg.ReplicaID)}, nil
}

// Fence is partition p's fence (valid while this replica's claim on it
// certainly is); the same value for the Membership's life.
func (m *Membership) Fence(p int) *Fence { return m.fences[p] }

// fenceValidity is how long after the request that created or renewed a
// claim the claim is certainly still ours: two thirds of a lease, the point
// where Run gives claims up, leaving a third of a lease for the server's and
// this host's clocks to disagree on how long a lease is.
func (m *Membership) fenceValidity() time.Duration { return 2 * m.cfg.Lease / 3 }

// ID is this replica's id.
func (m *Membership) ID() string { return m.cfg.ReplicaID }

// Updates delivers the partitions this replica may process (ascending) each
// time they change; a reader that falls behind gets the latest set. A
// partition leaving the set must be stopped, its messages in hand finished,
// and then Released. Updates is closed when Run returns.
func (m *Membership) Updates() <-chan []int { return m.updates }

// Release gives up partition p's claim once this replica has stopped
// processing it, so that its next owner claims it at once. Call it for every
// partition that left the Updates set, and for every partition still held
// after Run returned.
func (m *Membership) Release(ctx context.Context, p int) {
	m.mu.Lock()
	rev, ok := m.claims[p]
	delete(m.claims, p)
	m.fences[p].clear()
	kv := m.kv
	m.mu.Unlock()
	if !ok || kv == nil {
		return
	}
	err := kv.Delete(ctx, claimKey(p), jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyExists) {
		// A renewal raced the release and moved the revision: the claim is
		// still ours if it still names us.
		if e, gerr := kv.Get(ctx, claimKey(p)); gerr == nil && string(e.Value()) == m.cfg.ReplicaID {
			err = kv.Delete(ctx, claimKey(p), jetstream.LastRevision(e.Revision()))
		}
	}
	if err != nil {
		m.log.Warn("release partition claim; it expires instead", "partition", p, "error", err)
	}
	m.poke()
}

// Held is the partitions this replica holds claims on.
func (m *Membership) Held() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int, 0, len(m.claims))
	for p := range m.claims {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (m *Membership) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// newNonce is a random mark for this process's lease.
func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

func claimKey(p int) string { return claimPrefix + strconv.Itoa(p) }

// Run holds the lease and the claims until ctx ends, then deletes the lease
// (so the others reassign at once, not a lease later) and closes Updates;
// the claims are the caller's to Release once it has stopped. Run fails only
// when the bucket cannot be set up; once running, a renewal NATS refuses is
// logged and retried, and claims not renewed for two thirds of a lease are
// given up (Updates drops them), since by the time they expire another
// replica may take them.
func (m *Membership) Run(ctx context.Context) error {
	defer close(m.updates)
	// Retried like the other start-up calls: a cluster electing leaders
	// after losing a node must not stop the replica.
	var kv jetstream.KeyValue
	err := topology.RetryTransient(ctx, topology.RetryFor, func() (err error) {
		kv, err = m.js.CreateOrUpdateKeyValue(ctx, topology.ProcessorsBucketConfig(m.cfg.Lease))
		return err
	})
	if err != nil {
		return fmt.Errorf("membership bucket %s: %w", topology.ProcessorsBucket, err)
	}
	m.mu.Lock()
	m.kv = kv
	m.mu.Unlock()
	// A watch wakes us when a replica joins or leaves, or a claim is
	// released; an expiry shows only in the listing at the next tick.
	if w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly()); err == nil {
		defer func() { _ = w.Stop() }()
		go m.forwardChanges(w)
	} else {
		m.log.Warn("membership watch failed; changes are seen at each renewal", "error", err)
	}

	tick := time.NewTicker(m.cfg.Lease / 3)
	defer tick.Stop()
	var (
		sent      []int
		first     = true
		renew     = true
		lastRenew = time.Now()
	)
	for {
		if renew {
			if m.renew(ctx, kv) {
				lastRenew = time.Now()
			} else {
				if time.Since(lastRenew) > 2*m.cfg.Lease/3 {
					// Our claims may expire before we can renew them: stop
					// processing rather than risk two owners.
					m.dropClaims()
				}
				kv = m.rebucket(ctx, kv)
			}
		}
		if members, err := m.members(ctx, kv); err != nil {
			if ctx.Err() == nil {
				m.log.Warn("list processor replicas", "error", err)
				kv = m.rebucket(ctx, kv)
			}
		} else {
			assigned := Assign(members, m.partitions)[m.cfg.ReplicaID]
			m.claim(ctx, kv, assigned)
			now := m.processable(assigned)
			if first || !slices.Equal(now, sent) {
				m.log.Info("partitions to process", "replicas", len(members), "assigned", assigned, "processing", now)
				sent, first = now, false
				select {
				case <-m.updates: // replace a set nobody read yet
				default:
				}
				m.updates <- slices.Clone(sent)
			}
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := kv.Delete(dctx, memberPrefix+m.cfg.ReplicaID); err != nil {
				m.log.Warn("delete membership lease; it expires instead", "error", err)
			}
			cancel()
			return nil
		case <-tick.C:
			renew = true
		case <-m.wake:
			renew = false
		}
	}
}

// rebucket makes the bucket again when it is gone and returns the handle
// to use. The bucket lives in memory, so a nats-server restart loses it
// with every lease and claim in it; without this no replica could renew or
// claim anything again, and every partition would stay unprocessed.
// Claims held from before fail their next renewal (their revision is gone)
// and are claimed afresh, as after any lost claim.
func (m *Membership) rebucket(ctx context.Context, kv jetstream.KeyValue) jetstream.KeyValue {
	if _, err := m.js.KeyValue(ctx, topology.ProcessorsBucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv
	}
	nkv, err := m.js.CreateOrUpdateKeyValue(ctx, topology.ProcessorsBucketConfig(m.cfg.Lease))
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("membership bucket is gone and cannot be made again yet", "bucket", topology.ProcessorsBucket, "error", err)
		}
		return kv
	}
	m.log.Warn("membership bucket was gone (it lives in memory: a nats-server restart loses it); made it again", "bucket", topology.ProcessorsBucket)
	m.mu.Lock()
	m.kv = nkv
	m.mu.Unlock()
	return nkv
}

// forwardChanges wakes Run on a new member, a member leaving, or a claim
// released; renewals of known keys change nothing.
func (m *Membership) forwardChanges(w jetstream.KeyWatcher) {
	known := map[string]bool{}
	for e := range w.Updates() {
		if e == nil {
			continue
		}
		if e.Operation() == jetstream.KeyValuePut {
			if e.Key() == memberPrefix+m.cfg.ReplicaID && string(e.Value()) != m.nonce {
				m.log.Error("another live processor uses this replica_id: give each replica its own (processor.partitions.replica_id)")
			}
			if known[e.Key()] {
				continue
			}
			known[e.Key()] = true
		} else {
			delete(known, e.Key())
		}
		m.poke()
	}
}

// renew re-puts the lease and every claim held; false when any failed.
func (m *Membership) renew(ctx context.Context, kv jetstream.KeyValue) bool {
	ok := true
	if _, err := kv.Put(ctx, memberPrefix+m.cfg.ReplicaID, []byte(m.nonce)); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("renew membership lease", "error", err)
		}
		ok = false
	}
	m.mu.Lock()
	held := make(map[int]uint64, len(m.claims))
	for p, rev := range m.claims {
		held[p] = rev
	}
	m.mu.Unlock()
	for p, rev := range held {
		sent := time.Now()
		nrev, err := kv.Update(ctx, claimKey(p), []byte(m.cfg.ReplicaID), rev)
		m.mu.Lock()
		if cur, still := m.claims[p]; still && cur == rev {
			if err == nil {
				m.claims[p] = nrev
				m.fences[p].extend(sent, m.fenceValidity())
			} else if errors.Is(err, jetstream.ErrKeyExists) {
				// Someone else's now (ours expired): never process it again
				// without claiming it afresh.
				delete(m.claims, p)
				m.fences[p].clear()
				m.log.Error("partition claim lost", "partition", p)
			}
		}
		m.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			m.log.Warn("renew partition claim", "partition", p, "error", err)
			ok = false
		}
	}
	return ok
}

func (m *Membership) dropClaims() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.claims) > 0 {
		m.log.Error("claims not renewed for two thirds of a lease: stopping their partitions", "partitions", len(m.claims))
		for p := range m.claims {
			m.fences[p].clear()
		}
		clear(m.claims)
	}
}

// claim tries to take every assigned partition not held yet; a partition
// still claimed by its previous owner is tried again at the next change.
func (m *Membership) claim(ctx context.Context, kv jetstream.KeyValue, assigned []int) {
	for _, p := range assigned {
		m.mu.Lock()
		_, held := m.claims[p]
		m.mu.Unlock()
		if held {
			continue
		}
		sent := time.Now()
		rev, err := kv.Create(ctx, claimKey(p), []byte(m.cfg.ReplicaID))
		if errors.Is(err, jetstream.ErrKeyExists) {
			// A claim naming us is our previous life's (a restart under
			// the same id): take it back now rather than a lease later.
			if e, gerr := kv.Get(ctx, claimKey(p)); gerr == nil && string(e.Value()) == m.cfg.ReplicaID {
				rev, err = kv.Update(ctx, claimKey(p), []byte(m.cfg.ReplicaID), e.Revision())
				if err == nil {
					m.log.Info("partition claim taken back from a previous run", "partition", p)
				}
			}
		}
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				m.log.Warn("claim partition", "partition", p, "error", err)
			}
			continue
		}
		m.mu.Lock()
		m.claims[p] = rev
		m.fences[p].extend(sent, m.fenceValidity())
		m.mu.Unlock()
	}
}

// processable is the assigned partitions we hold claims on.
func (m *Membership) processable(assigned []int) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []int{}
	for _, p := range assigned {
		if _, ok := m.claims[p]; ok {
			out = append(out, p)
		}
	}
	return out
}

func (m *Membership) members(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	l, err := kv.ListKeysFiltered(ctx, memberPrefix+">")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return []string{m.cfg.ReplicaID}, nil
		}
		return nil, err
	}
	defer func() { _ = l.Stop() }()
	var out []string
	for k := range l.Keys() {
		out = append(out, strings.TrimPrefix(k, memberPrefix))
	}
	if !slices.Contains(out, m.cfg.ReplicaID) {
		out = append(out, m.cfg.ReplicaID) // our put may not be visible yet
	}
	return out, nil
}
