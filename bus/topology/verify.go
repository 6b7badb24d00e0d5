package topology

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/internal/fielderr"
)

// SetupCommand is how an operator creates the topology with the admin
// identity; errors about a missing topology name it.
const SetupCommand = "crowsnest nats-setup --config FILE"

// ErrMissing is matched (errors.Is) by every *MissingError.
var ErrMissing = errors.New("topology missing")

// MissingError says streams a stage needs do not exist, and the stage does
// not create them (it runs without stream-management rights).
type MissingError struct {
	Streams []string // the missing streams (a bucket as its KV_<bucket> stream)
}

func (e *MissingError) Error() string {
	noun := "stream " + e.Streams[0] + " does"
	if len(e.Streams) > 1 {
		noun = "streams " + strings.Join(e.Streams, ", ") + " do"
	}
	return fmt.Sprintf("%s not exist, and this stage does not create streams (ensure_topology: false, or an identity without stream-management rights): create the topology once with the admin identity: %s", noun, SetupCommand)
}

// Is lets errors.Is(err, ErrMissing) match.
func (e *MissingError) Is(target error) bool { return target == ErrMissing }

// ProcessorStreams names the streams the processor reads or writes: every
// raw stream, events, alerts, dead-letter, and the state bucket's stream.
// (It creates its membership bucket itself.)
func ProcessorStreams() []string {
	var out []string
	for _, src := range Sources() {
		name, _ := RawStream(src) // Sources() are valid
		out = append(out, name)
	}
	return append(out, EventsStream, AlertsStream, DeadLetterStream, StateBucketStream)
}

// SinkStreams names the streams a sink reads or writes: events, alerts and
// dead-letter.
func SinkStreams() []string {
	return []string{EventsStream, AlertsStream, DeadLetterStream}
}

// Verify checks, without changing anything, that each stream in names
// exists and, when it is one cfg declares, captures what cfg says with the
// storage, retention and partitions cfg says (the settings a stage relies
// on; limits are the admin's business). It needs only stream-info rights on
// those streams, which bus/authz gives the stage identities, so a stage that
// may not manage streams runs it instead of Ensure. Missing streams are
// reported together as one *MissingError naming SetupCommand, joined with
// any *IncompatibleError.
func Verify(ctx context.Context, js jetstream.JetStream, cfg Config, names []string) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("verify topology: invalid config:\n%w", fielderr.Prefix(ConfigKey, err))
	}
	declared := map[string]jetstream.StreamConfig{}
	for _, sc := range Streams(cfg) {
		declared[sc.Name] = sc
	}
	declared[StateBucketStream] = jetstream.StreamConfig{
		Name:      StateBucketStream,
		Subjects:  []string{"$KV." + StateBucket + ".>"},
		Storage:   storageType(cfg.Storage),
		Retention: jetstream.LimitsPolicy,
	}
	var (
		missing []string
		errs    []error
	)
	for _, name := range names {
		s, err := js.Stream(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			missing = append(missing, name)
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("look up stream %s: %w", name, err))
			if ctx.Err() != nil {
				return errors.Join(errs...)
			}
			continue
		}
		want, ok := declared[name]
		if !ok {
			continue
		}
		have := s.CachedInfo().Config
		if err := checkPartitions(have, want); err != nil {
			errs = append(errs, err)
		}
		if err := checkFixed(have, want, want.Retention); err != nil {
			errs = append(errs, err)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		errs = append([]error{&MissingError{Streams: missing}}, errs...)
	}
	return errors.Join(errs...)
}
