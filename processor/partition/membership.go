package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// Membership holds this replica's lease and says which partitions it owns.
type Membership struct {
	cfg        Config
	partitions int
	js         jetstream.JetStream
	log        *slog.Logger
	updates    chan []int
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
		cfg.ReplicaID = generatedID()
	}
	return &Membership{cfg: cfg, partitions: partitions, js: js, updates: make(chan []int, 1),
		log: log.With("replica", cfg.ReplicaID)}, nil
}

// ID is this replica's id.
func (m *Membership) ID() string { return m.cfg.ReplicaID }

// Updates delivers the partitions this replica owns (ascending) each time
// they change; a reader that falls behind gets the latest set. It is closed
// when Run returns.
func (m *Membership) Updates() <-chan []int { return m.updates }

// Run holds the lease until ctx ends, then deletes it (so the others take
// over at once, not a lease later) and closes Updates. It fails only when
// the bucket cannot be set up; once running, a renewal NATS refuses is
// logged and retried at the next tick, and the replica keeps the partitions
// it has (the pinned consumers keep them exclusive) until it learns better.
func (m *Membership) Run(ctx context.Context) error {
	defer close(m.updates)
	kv, err := m.js.CreateOrUpdateKeyValue(ctx, topology.ProcessorsBucketConfig(m.cfg.Lease))
	if err != nil {
		return fmt.Errorf("membership bucket %s: %w", topology.ProcessorsBucket, err)
	}
	// A watch wakes us when a replica joins or leaves cleanly; an expired
	// lease shows only in the listing at the next tick.
	wake := make(chan struct{}, 1)
	if w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly()); err == nil {
		defer func() { _ = w.Stop() }()
		go func() {
			known := map[string]bool{}
			for e := range w.Updates() {
				if e == nil {
					continue
				}
				// Renewals of replicas already known change nothing.
				if e.Operation() == jetstream.KeyValuePut {
					if known[e.Key()] {
						continue
					}
					known[e.Key()] = true
				} else {
					delete(known, e.Key())
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}()
	} else {
		m.log.Warn("membership watch failed; changes are seen at each renewal", "error", err)
	}

	tick := time.NewTicker(m.cfg.Lease / 3)
	defer tick.Stop()
	var owned []int
	first := true
	renew := true
	for {
		if renew {
			if _, err := kv.Put(ctx, m.cfg.ReplicaID, []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil && ctx.Err() == nil {
				m.log.Warn("renew membership lease", "error", err)
			}
		}
		if members, err := listMembers(ctx, kv); err != nil {
			if ctx.Err() == nil {
				m.log.Warn("list processor replicas", "error", err)
			}
		} else {
			if !slices.Contains(members, m.cfg.ReplicaID) {
				members = append(members, m.cfg.ReplicaID) // our put may not be visible yet
			}
			now := Assign(members, m.partitions)[m.cfg.ReplicaID]
			if first || !slices.Equal(now, owned) {
				m.log.Info("partitions assigned", "replicas", len(members), "partitions", now)
				owned, first = now, false
				select {
				case <-m.updates: // replace a set nobody read yet
				default:
				}
				m.updates <- slices.Clone(owned)
			}
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := kv.Delete(dctx, m.cfg.ReplicaID); err != nil {
				m.log.Warn("delete membership lease; it expires instead", "error", err)
			}
			cancel()
			return nil
		case <-tick.C:
			renew = true
		case <-wake:
			renew = false
		}
	}
}

func listMembers(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	l, err := kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	defer func() { _ = l.Stop() }()
	var out []string
	for k := range l.Keys() {
		out = append(out, k)
	}
	return out, nil
}
