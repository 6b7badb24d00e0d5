package topology

import (
	"context"
	"errors"
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

// consumerRetryFor bounds how long EnsureConsumer asks again while the
// answers are transient.
const consumerRetryFor = time.Minute
