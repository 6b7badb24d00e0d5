package kvstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// Store is a detect.StateStore over the crowsnest-state bucket, opened on
// first use so New does no I/O. It is safe for concurrent use.
type Store struct {
	js jetstream.JetStream

	mu     sync.Mutex
	kv     jetstream.KeyValue
	stream jetstream.Stream

	// inflight is the latest asynchronous write of each key not yet
	// acknowledged: a read or a purge of the key waits for it, so it sees
	// the key as the engine last wrote it and no write lands after a purge.
	wmu      sync.Mutex
	inflight map[string]*Write
}

// writeBound bounds how long a Write waits for its PubAck when the
// connection dies under it (a PubAck that never comes): the input it
// belongs to is redelivered by then anyway.
const writeBound = 30 * time.Second

// A Write is a Put published without waiting: the caller that collected it
// (WithWrites) must see it done without error before it acks the input
// whose processing made it.
type Write struct {
	key  string
	done chan struct{}
	err  error // set before done is closed
}

// Done is closed once the server stored the write or it failed (Err).
func (w *Write) Done() <-chan struct{} { return w.done }

// Err is why the write failed; nil once Done if it is stored. Call it only
// after Done is closed.
func (w *Write) Err() error { return w.err }

type collectorKey struct{}

// WithWrites returns a context under which Put does not wait for the
// server: it publishes the value and hands the pending Write to collect,
// called on the goroutine calling Put. The processor passes its per-input
// collector so a correlation's checkpoint becomes one more output of the
// input, awaited with its event and alerts before the input is acked —
// instead of a round trip per correlation match on the event path.
func WithWrites(ctx context.Context, collect func(*Write)) context.Context {
	return context.WithValue(ctx, collectorKey{}, collect)
}

// subject is where the bucket stores key: what KeyValue.Put publishes to
// for a bucket in this account, neither mirrored nor behind a domain prefix
// (topology declares it so; Delete purges the same subject).
func subject(key string) string { return "$KV." + topology.StateBucket + "." + key }

// putAsync publishes value under key and returns at once; collect gets the
// Write. Writes of one key keep their order: they are published on one
// connection, to one stream, which stores them as they arrive.
func (s *Store) putAsync(key string, value []byte, collect func(*Write)) error {
	if !validKey(key) {
		return fmt.Errorf("put %q: not a valid key", key)
	}
	fut, err := s.js.PublishMsgAsync(&nats.Msg{Subject: subject(key), Data: value})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	w := &Write{key: key, done: make(chan struct{})}
	s.wmu.Lock()
	if s.inflight == nil {
		s.inflight = map[string]*Write{}
	}
	s.inflight[key] = w
	s.wmu.Unlock()
	// A future's channels have a single reader; this goroutine is it, so
	// both the input's acker and a read of the key can wait on done.
	go func() {
		timer := time.NewTimer(writeBound)
		defer timer.Stop()
		select {
		case <-fut.Ok():
		case err := <-fut.Err():
			w.err = fmt.Errorf("put %s: %w", key, err)
		case <-timer.C:
			w.err = fmt.Errorf("put %s: no PubAck within %s", key, writeBound)
		}
		s.wmu.Lock()
		if s.inflight[key] == w {
			delete(s.inflight, key)
		}
		s.wmu.Unlock()
		close(w.done)
	}()
	collect(w)
	return nil
}

// settle waits until no asynchronous write of key (or, with all, of any
// key) is in flight. A failed write is no error here: its input is
// redelivered, and the key is read as the server holds it.
func (s *Store) settle(ctx context.Context, key string, all bool) error {
	s.wmu.Lock()
	var wait []*Write
	if all {
		for _, w := range s.inflight {
			wait = append(wait, w)
		}
	} else if w := s.inflight[key]; w != nil {
		wait = append(wait, w)
	}
	s.wmu.Unlock()
	for _, w := range wait {
		select {
		case <-w.done:
		case <-ctx.Done():
			return fmt.Errorf("wait for the write of %s: %w", w.key, ctx.Err())
		}
	}
	return nil
}

// validKey reports whether key is one literal subject token sequence.
func validKey(key string) bool {
	return key != "" && !strings.ContainsAny(key, " \t\r\n*>") && !strings.HasPrefix(key, ".") && !strings.HasSuffix(key, ".")
}

// New returns a store over js's crowsnest-state bucket.
func New(js jetstream.JetStream) *Store { return &Store{js: js} }

func (s *Store) open(ctx context.Context) (jetstream.KeyValue, jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, s.stream, nil
	}
	kv, err := s.js.KeyValue(ctx, topology.StateBucket)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", topology.StateBucket, err)
	}
	stream, err := s.js.Stream(ctx, topology.StateBucketStream)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", topology.StateBucketStream, err)
	}
	s.kv, s.stream = kv, stream
	return kv, stream, nil
}

// Get returns key's value, or nil and no error when the bucket does not
// hold it.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	kv, _, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.settle(ctx, key, false); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return e.Value(), nil
}

// Put stores value under key and returns once the server has it — or, under
// a context from WithWrites, once it is published, its Write collected.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	if collect, ok := ctx.Value(collectorKey{}).(func(*Write)); ok && collect != nil {
		return s.putAsync(key, value, collect)
	}
	kv, _, err := s.open(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Delete removes every revision of key. It purges the key's subject from
// the bucket's stream rather than calling KeyValue.Delete, whose delete
// marker would stay in the stream forever: a processor closes windows all
// day, and each closed window must leave nothing behind.
func (s *Store) Delete(ctx context.Context, key string) error {
	if key == "" || strings.ContainsAny(key, " *>") {
		return fmt.Errorf("delete %q: not a valid key", key)
	}
	_, stream, err := s.open(ctx)
	if err != nil {
		return err
	}
	if err := s.settle(ctx, key, false); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject("$KV."+topology.StateBucket+"."+key)); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// Keys returns the keys that start with prefix (which must end at a token
// boundary, with a dot, or be empty for all keys).
func (s *Store) Keys(ctx context.Context, prefix string) ([]string, error) {
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		return nil, fmt.Errorf("list keys: prefix %q must end with a dot", prefix)
	}
	kv, _, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.settle(ctx, "", true); err != nil {
		return nil, fmt.Errorf("list keys %s>: %w", prefix, err)
	}
	lister, err := kv.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return nil, fmt.Errorf("list keys %s>: %w", prefix, err)
	}
	var keys []string
	// The lister stops itself once it has sent every key (or ctx ends).
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list keys %s>: %w", prefix, err)
	}
	return keys, nil
}
