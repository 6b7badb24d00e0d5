package detect

import "context"

// StateStore keeps correlation windows across restarts: the processor gives
// the engine one over the crowsnest-state key-value bucket (kvstate). Get
// returns nil and no error for a key it does not hold; Delete of such a key
// is no error; Keys lists the keys starting with a prefix ending in a dot.
// The engine writes a window before the input that changed it is acked, and
// deletes it when the window closes. A store may let Put return before the
// write is durable only when ctx tells it who waits for the write (as
// kvstate.WithWrites does for the processor, which acks the input after);
// then a Get, Delete or Keys must still see every Put made before it.
type StateStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// WithStateStore persists correlation windows in s.
func WithStateStore(s StateStore) Option { return func(e *Engine) { e.store = s } }
