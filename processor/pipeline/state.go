package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// kvState is the detection engine's state store over the crowsnest-state
// key-value bucket, opened on first use so New does no I/O.
type kvState struct {
	js jetstream.JetStream

	mu sync.Mutex
	kv jetstream.KeyValue
}

func (s *kvState) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	kv, err := s.js.KeyValue(ctx, topology.StateBucket)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", topology.StateBucket, err)
	}
	s.kv = kv
	return kv, nil
}

func (s *kvState) Get(ctx context.Context, key string) ([]byte, error) {
	kv, err := s.bucket(ctx)
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

func (s *kvState) Put(ctx context.Context, key string, value []byte) error {
	kv, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}
