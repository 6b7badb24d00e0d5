package sink

import (
	"errors"
	"fmt"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// RunnerConfig is what a user writes about how one sink is fed: which
// streams, batching, retries and shutdown. The consumer's own settings
// (ack_wait, max_ack_pending, max_deliver) are shared by every sink and live
// in the topology config (consumers.sink); Settings.Consumer carries them.
type RunnerConfig struct {
	// Streams lists the streams the sink consumes: events, alerts or both.
	Streams []Kind `yaml:"streams"`
	// MaxBatchEvents caps the records of one WriteBatch.
	MaxBatchEvents int `yaml:"max_batch_events"`
	// MaxBatchBytes caps the summed body sizes of one WriteBatch. A record
	// larger than the cap travels alone.
	MaxBatchBytes topology.ByteSize `yaml:"max_batch_bytes"`
	// FlushInterval is how long a partial batch may wait for more records.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// WriteTimeout bounds one WriteBatch call.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// DrainTimeout bounds the shutdown: the last flush plus Close.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// StatusInterval is how often the consumers' info is read (the lag
	// gauge, ConsumerObserver).
	StatusInterval time.Duration `yaml:"status_interval"`
	Retry          RetryConfig   `yaml:"retry"`
}

// RetryConfig is how retryable failures are retried: first in-process, then
// by JetStream redelivery.
type RetryConfig struct {
	// MaxAttempts is how many times one delivery is written before the
	// records still failing are handed back to JetStream (1 = no in-process
	// retry).
	MaxAttempts int `yaml:"max_attempts"`
	// InitialBackoff is the pause before the first in-process retry; it
	// doubles on each retry up to MaxBackoff, with jitter.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	// RedeliveryDelay is the NakWithDelay delay after the first delivery; it
	// doubles with each further delivery up to MaxRedeliveryDelay, with
	// jitter.
	RedeliveryDelay    time.Duration `yaml:"redelivery_delay"`
	MaxRedeliveryDelay time.Duration `yaml:"max_redelivery_delay"`
}

// NewDefaultRunnerConfig returns the defaults: both streams, batches of up to
// 500 records or 4 MiB or 1 s, 3 in-process attempts.
func NewDefaultRunnerConfig() RunnerConfig {
	return RunnerConfig{
		Streams:        []Kind{KindEvents, KindAlerts},
		MaxBatchEvents: 500,
		MaxBatchBytes:  4 * topology.MiB,
		FlushInterval:  time.Second,
		WriteTimeout:   time.Minute,
		DrainTimeout:   30 * time.Second,
		StatusInterval: 5 * time.Second,
		Retry: RetryConfig{
			MaxAttempts:        3,
			InitialBackoff:     100 * time.Millisecond,
			MaxBackoff:         5 * time.Second,
			RedeliveryDelay:    5 * time.Second,
			MaxRedeliveryDelay: 5 * time.Minute,
		},
	}
}

// FieldError is a problem with one config field, located by its key path
// relative to the block validated ("retry.max_attempts"), so whoever embeds
// the block can prefix the path.
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the problem without its path.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldPath returns the key path, so a config loader can re-root it without
// knowing this type.
func (e *FieldError) FieldPath() string { return e.Path }

// NewFieldError returns the problem with the field at path; sinks use it in
// their own Validate.
func NewFieldError(path, format string, args ...any) error {
	return &FieldError{Path: path, Err: fmt.Errorf(format, args...)}
}

// Validate reports every problem at once, joined, each naming its key.
func (c RunnerConfig) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, NewFieldError(path, format, args...))
	}
	if len(c.Streams) == 0 {
		bad("streams", "must name at least one of events, alerts")
	}
	seen := map[Kind]bool{}
	for i, k := range c.Streams {
		if k != KindEvents && k != KindAlerts {
			bad(fmt.Sprintf("streams[%d]", i), "must be events or alerts")
		}
		if seen[k] {
			bad(fmt.Sprintf("streams[%d]", i), "%s is listed twice", k)
		}
		seen[k] = true
	}
	if c.MaxBatchEvents < 1 {
		bad("max_batch_events", "must be at least 1, got %d", c.MaxBatchEvents)
	}
	if c.MaxBatchBytes < 1 {
		bad("max_batch_bytes", "must be positive, got %d", c.MaxBatchBytes)
	}
	if c.FlushInterval <= 0 {
		bad("flush_interval", "must be positive, got %s", c.FlushInterval)
	}
	if c.WriteTimeout <= 0 {
		bad("write_timeout", "must be positive, got %s", c.WriteTimeout)
	}
	if c.DrainTimeout <= 0 {
		bad("drain_timeout", "must be positive, got %s", c.DrainTimeout)
	}
	if c.StatusInterval <= 0 {
		bad("status_interval", "must be positive, got %s", c.StatusInterval)
	}
	errs = append(errs, c.Retry.validate("retry")...)
	return errors.Join(errs...)
}

func (c RetryConfig) validate(prefix string) []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, NewFieldError(prefix+"."+path, format, args...))
	}
	if c.MaxAttempts < 1 {
		bad("max_attempts", "must be at least 1, got %d", c.MaxAttempts)
	}
	if c.InitialBackoff <= 0 {
		bad("initial_backoff", "must be positive, got %s", c.InitialBackoff)
	}
	if c.MaxBackoff < c.InitialBackoff {
		bad("max_backoff", "must be at least initial_backoff (%s), got %s", c.InitialBackoff, c.MaxBackoff)
	}
	if c.RedeliveryDelay <= 0 {
		bad("redelivery_delay", "must be positive, got %s", c.RedeliveryDelay)
	}
	if c.MaxRedeliveryDelay < c.RedeliveryDelay {
		bad("max_redelivery_delay", "must be at least redelivery_delay (%s), got %s", c.RedeliveryDelay, c.MaxRedeliveryDelay)
	}
	return errs
}
