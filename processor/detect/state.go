package detect

import "context"

// StateStore keeps correlation windows across restarts: the processor gives
// the engine one over the crowsnest-state key-value bucket. Get returns nil
// and no error for a key it does not hold. Every operation is synchronous:
// the engine writes a window before the input that changed it is acked.
type StateStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
}

// WithStateStore persists correlation windows in s.
func WithStateStore(s StateStore) Option { return func(e *Engine) { e.store = s } }
