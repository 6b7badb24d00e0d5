package topology

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// codeClusterNotAvailable is JetStream's "JetStream system temporarily
// unavailable": a cluster without a meta leader right now.
const codeClusterNotAvailable = 10008

// Transient reports whether err says JetStream did not answer now (a
// timeout, no responders, the cluster unavailable, JetStream not up yet)
// rather than refused: what a node restart or a leader election in a
// cluster produces, and asking again a little later cures. A refusal (a
// permission, a conflicting configuration) is not transient.
func Transient(err error) bool {
	if err == nil || errors.Is(err, nats.ErrPermissionViolation) || errors.Is(err, nats.ErrConnectionClosed) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == codeClusterNotAvailable
}

// RetryFor is how long the calls a stage makes as it starts (EnsureConsumer,
// LookupStream) ask again while the answers are Transient: longer than a
// cluster takes to elect new leaders after losing a node.
const RetryFor = time.Minute

// RetryTransient calls f until it returns nil or an error that is not
// Transient, ctx ends, or limit has passed, and returns f's last error. The
// waits between calls double from 250 ms up to 5 s.
func RetryTransient(ctx context.Context, limit time.Duration, f func() error) error {
	deadline := time.Now().Add(limit)
	wait := 250 * time.Millisecond
	for {
		err := f()
		if err == nil || ctx.Err() != nil || !Transient(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// LookupStream returns the stream name, asking again for up to RetryFor
// while the answers are Transient: a processor looking its raw streams up
// while a cluster node restarted exited on the first timeout (found by
// e2e/chaos TestClusterRestartsSmoke).
func LookupStream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := RetryTransient(ctx, RetryFor, func() (err error) {
		s, err = js.Stream(ctx, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", name, err)
	}
	return s, nil
}
