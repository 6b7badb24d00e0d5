package kvstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

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
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return e.Value(), nil
}

// Put stores value under key and returns once the server has it.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
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
