package natsconn

import (
	"errors"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// OnPermissionViolation makes nc also call fn with each permission
// violation the server reports (a denied publish or subscribe arrives
// asynchronously; a denied JetStream request otherwise only times out),
// until stop is called. The handler Connect set keeps logging them. Call it
// during start-up, not concurrently with another OnPermissionViolation on
// the same connection: it chains the current handler.
func OnPermissionViolation(nc *nats.Conn, fn func(error)) (stop func()) {
	var stopped atomic.Bool
	prev := nc.ErrorHandler()
	nc.SetErrorHandler(func(c *nats.Conn, s *nats.Subscription, err error) {
		if !stopped.Load() && errors.Is(err, nats.ErrPermissionViolation) {
			fn(err)
		}
		if prev != nil {
			prev(c, s, err)
		}
	})
	return func() { stopped.Store(true) }
}
