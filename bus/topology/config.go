package topology

import (
	"errors"
	"fmt"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/internal/fielderr"
)

// ConfigKey is the key the topology section sits under in crowsnest's config
// file. Validate reports paths relative to Config ("raw.max_bytes"); Ensure
// and the config loader put ConfigKey in front ("topology.raw.max_bytes").
const ConfigKey = "topology"

// Storage is where JetStream keeps a stream: "file" or "memory".
type Storage string

// Storage values.
const (
	StorageFile   Storage = "file"
	StorageMemory Storage = "memory"
)

// Discard says what a full stream does with a new message: "new" refuses it
// (the publisher gets an error and must retry), "old" deletes the oldest
// message to make room.
type Discard string

// Discard values.
const (
	DiscardNew Discard = "new"
	DiscardOld Discard = "old"
)

// Config is the user's say over the streams: how many replicas, which
// storage, how long and how much each class of stream keeps, and how the
// consumers redeliver. Names and subjects are not configurable: they are the
// contract between stages.
type Config struct {
	// Replicas of every stream and of the state bucket: 1 on a single server,
	// 3 (or 5) on a cluster.
	Replicas int `yaml:"replicas"`
	// Storage of every stream and of the state bucket.
	Storage Storage `yaml:"storage"`
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values to
	// drop duplicates. A publisher retry or processor restart later than this
	// produces a duplicate, which the stores still absorb (event.id is their key).
	DuplicateWindow time.Duration `yaml:"duplicate_window"`

	// Raw is the limits of each per-source raw stream (each gets these, not a share).
	Raw Limits `yaml:"raw"`
	// Events is the limits of CROWSNEST_EVENTS.
	Events Limits `yaml:"events"`
	// Alerts is the limits of CROWSNEST_ALERTS.
	Alerts Limits `yaml:"alerts"`
	// DeadLetter is the limits of CROWSNEST_DLQ.
	DeadLetter Limits `yaml:"dead_letter"`

	// State is the processor's key-value bucket.
	State StateConfig `yaml:"state"`

	// Partitions is how many partitions each raw stream has: the most
	// processor replicas that can share the work. The records of one entity
	// always land in one partition. Fixed once the raw streams exist: Ensure
	// refuses to change it on an existing stream (see docs/ARCHITECTURE.md).
	Partitions int `yaml:"partitions"`

	// Consumers is the redelivery settings of the durable consumers.
	Consumers ConsumersConfig `yaml:"consumers"`
}

// Limits bound one stream. When either limit is reached the stream applies
// Discard.
type Limits struct {
	// MaxAge is how long a message is kept; 0 keeps messages until MaxBytes
	// forces them out.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes is the most the stream stores. JetStream reserves it against the
	// server's max_store when the stream is created.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Discard is what a full stream does with a new message.
	Discard Discard `yaml:"discard"`
}

// StateConfig shapes the crowsnest-state key-value bucket.
type StateConfig struct {
	// History is how many values each key keeps, 1 to 64.
	History int `yaml:"history"`
	// TTL expires keys not written for this long; 0 keeps them forever.
	TTL time.Duration `yaml:"ttl"`
	// MaxBytes is the most the bucket stores.
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// ConsumersConfig holds the settings of each kind of durable consumer.
type ConsumersConfig struct {
	// Processor is the processor's consumer on every raw stream.
	Processor ConsumerSettings `yaml:"processor"`
	// Sink is every sink's consumer on the events and alerts streams.
	Sink ConsumerSettings `yaml:"sink"`
}

// ConsumerSettings is how a durable pull consumer redelivers.
type ConsumerSettings struct {
	// AckWait is how long JetStream waits for an ack before redelivering the
	// first time. Long work should call InProgress rather than raise this.
	AckWait time.Duration `yaml:"ack_wait"`
	// Backoff is the wait before each later redelivery after an ack timeout:
	// the second, third, ... (the last value repeats). Empty repeats AckWait.
	// Naks are not affected: Nak redelivers at once, NakWithDelay after its delay.
	Backoff []time.Duration `yaml:"backoff"`
	// MaxDeliver is how many times a message is delivered before JetStream
	// gives up on it (see the package doc); -1 is unlimited.
	MaxDeliver int `yaml:"max_deliver"`
	// MaxAckPending is how many messages may be delivered and not yet acked
	// across all instances sharing the consumer. A batching sink needs at least
	// its batch size times the batches it has in flight.
	MaxAckPending int `yaml:"max_ack_pending"`
	// PinnedTTL, when set, makes the consumer deliver to one pinned client at
	// a time (a JetStream priority group) and unpin a client that has not
	// pulled for this long, so another can take over. Only the processor's
	// partition consumers use it, as a server-side guard on top of their
	// claims; 0 (the default) turns pinning off. Give every replica the
	// same value: each makes the consumers as its configuration says.
	PinnedTTL time.Duration `yaml:"pinned_ttl"`
}

// NewDefaultConfig returns defaults fit for a laptop or a small node. Raw
// streams hold only the unprocessed backlog (they are work queues), so 1 GiB
// per source is about a million records of slack; the reservations add up to
// ~19 GiB, which JetStream must be able to reserve from its max_store.
func NewDefaultConfig() Config {
	return Config{
		Replicas:        1,
		Storage:         StorageFile,
		DuplicateWindow: 10 * time.Minute,
		Raw:             Limits{MaxAge: 72 * time.Hour, MaxBytes: 1 * GiB, Discard: DiscardNew},
		Events:          Limits{MaxAge: 24 * time.Hour, MaxBytes: 10 * GiB, Discard: DiscardOld},
		Alerts:          Limits{MaxAge: 30 * 24 * time.Hour, MaxBytes: 1 * GiB, Discard: DiscardOld},
		DeadLetter:      Limits{MaxAge: 30 * 24 * time.Hour, MaxBytes: 1 * GiB, Discard: DiscardNew},
		State:           StateConfig{History: 1, TTL: 0, MaxBytes: 256 * MiB},
		Partitions:      DefaultPartitions,
		Consumers: ConsumersConfig{
			Processor: ConsumerSettings{
				AckWait:       30 * time.Second,
				Backoff:       []time.Duration{time.Minute, 5 * time.Minute},
				MaxDeliver:    5,
				MaxAckPending: 2048,
				// No pinning: the processor's partition claims, checked
				// before every fetch and message (processor/partition
				// Fence), keep a partition to one replica already, and a
				// pinned consumer costs the server a header rewrite per
				// delivered message (~8 % of the processor's throughput,
				// docs/BENCHMARKS.md).
			},
			// Sinks retry transient store failures for as long as it takes: a
			// store outage must not turn into lost events. Permanent failures
			// are dead-lettered by the sink runner, not by MaxDeliver.
			Sink: ConsumerSettings{
				AckWait:       time.Minute,
				MaxDeliver:    -1,
				MaxAckPending: 8192,
			},
		},
	}
}

// Validate reports every invalid field, joined, each naming its key path
// relative to Config ("raw.max_bytes: must be > 0").
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fielderr.New(path, format, args...))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		add("replicas", "must be between 1 and 5, got %d (use 1 on a single server, 3 on a cluster)", c.Replicas)
	}
	if c.Storage != StorageFile && c.Storage != StorageMemory {
		add("storage", "must be %q or %q, got %q", StorageFile, StorageMemory, c.Storage)
	}
	if c.DuplicateWindow <= 0 {
		add("duplicate_window", "must be > 0 (e.g. 10m), got %s", c.DuplicateWindow)
	}
	classes := []struct {
		path string
		l    Limits
	}{{"raw", c.Raw}, {"events", c.Events}, {"alerts", c.Alerts}, {"dead_letter", c.DeadLetter}}
	for _, cl := range classes {
		if cl.l.MaxAge < 0 {
			add(cl.path+".max_age", "must be >= 0 (0 keeps messages until max_bytes), got %s", cl.l.MaxAge)
		}
		if cl.l.MaxBytes <= 0 {
			add(cl.path+".max_bytes", "must be > 0 (e.g. 1GiB), got %d", int64(cl.l.MaxBytes))
		}
		if cl.l.Discard != DiscardNew && cl.l.Discard != DiscardOld {
			add(cl.path+".discard", "must be %q or %q, got %q", DiscardNew, DiscardOld, cl.l.Discard)
		}
		if cl.l.MaxAge > 0 && c.DuplicateWindow > cl.l.MaxAge {
			add("duplicate_window", "%s is longer than %s.max_age %s; JetStream needs the duplicate window to fit in every stream's max_age: shorten duplicate_window or lengthen max_age",
				c.DuplicateWindow, cl.path, cl.l.MaxAge)
		}
	}
	if c.State.History < 1 || c.State.History > 64 {
		add("state.history", "must be between 1 and 64, got %d", c.State.History)
	}
	if c.State.TTL < 0 {
		add("state.ttl", "must be >= 0 (0 keeps keys forever), got %s", c.State.TTL)
	}
	if c.State.MaxBytes <= 0 {
		add("state.max_bytes", "must be > 0 (e.g. 256MiB), got %d", int64(c.State.MaxBytes))
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		add("partitions", "must be between 1 and %d, got %d", MaxPartitions, c.Partitions)
	}
	errs = append(errs, c.Consumers.Processor.validate("consumers.processor"))
	errs = append(errs, c.Consumers.Sink.validate("consumers.sink"))
	return errors.Join(errs...)
}

func (s ConsumerSettings) validate(path string) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fielderr.New(path+"."+field, format, args...))
	}
	if s.AckWait <= 0 {
		add("ack_wait", "must be > 0 (e.g. 30s), got %s", s.AckWait)
	}
	for i, d := range s.Backoff {
		if d <= 0 {
			add(fmt.Sprintf("backoff[%d]", i), "must be > 0, got %s", d)
		}
	}
	switch {
	case s.MaxDeliver == 0 || s.MaxDeliver < -1:
		add("max_deliver", "must be >= 1, or -1 for unlimited, got %d", s.MaxDeliver)
	case s.MaxDeliver > 0 && 1+len(s.Backoff) > s.MaxDeliver:
		add("backoff", "has %d steps, which with ack_wait is more than max_deliver %d redeliveries can use: drop steps or raise max_deliver",
			len(s.Backoff), s.MaxDeliver)
	}
	if s.MaxAckPending < 1 {
		add("max_ack_pending", "must be >= 1, got %d", s.MaxAckPending)
	}
	if s.PinnedTTL < 0 {
		add("pinned_ttl", "must be >= 0 (0 turns pinning off), got %s", s.PinnedTTL)
	}
	return errors.Join(errs...)
}
