package topology

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerDecl is one durable consumer: the stream it reads and its
// configuration.
type ConsumerDecl struct {
	Stream string
	Config jetstream.ConsumerConfig
}

// ProcessorConsumerName is the durable name of the processor's consumer of
// partition p on every raw stream: processor-p<p>.
func ProcessorConsumerName(p int) string {
	return ProcessorConsumer + "-p" + strconv.Itoa(p)
}

// ProcessorConsumerConfig is the processor's durable pull consumer of
// partition p of source's raw stream: filtered on the partition (a work queue
// admits several consumers whose filters do not overlap), explicit acks, every
// message from the start, redelivery per s, and with s.PinnedTTL one pinned
// client at a time in ProcessorPriorityGroup.
func ProcessorConsumerConfig(source string, p int, s ConsumerSettings) (jetstream.ConsumerConfig, error) {
	filter, err := RawPartitionSubjects(source, p)
	if err != nil {
		return jetstream.ConsumerConfig{}, err
	}
	c := consumerConfig(ProcessorConsumerName(p), fmt.Sprintf("crowsnest: processor, partition %d (managed by crowsnest)", p), s)
	c.FilterSubject = filter
	if s.PinnedTTL > 0 {
		c.PriorityPolicy = jetstream.PriorityPolicyPinned
		c.PriorityGroups = []string{ProcessorPriorityGroup}
		c.PinnedTTL = s.PinnedTTL
	}
	return c, nil
}

// ProcessorConsumers declares the processor's consumer of every partition on
// every raw stream, in the order of Sources, then partitions.
func ProcessorConsumers(partitions int, s ConsumerSettings) []ConsumerDecl {
	out := make([]ConsumerDecl, 0, len(Sources())*max(partitions, 0))
	for _, src := range Sources() {
		name, _ := RawStream(src) // valid by construction
		for p := range partitions {
			c, err := ProcessorConsumerConfig(src, p, s)
			if err != nil {
				break // partitions beyond MaxPartitions: Config.Validate reports it
			}
			out = append(out, ConsumerDecl{Stream: name, Config: c})
		}
	}
	return out
}

// SinkConsumerConfig is sink name's durable pull consumer (sink-<name>),
// the same on the events and the alerts stream. A new sink starts from the
// oldest message the stream still holds, so it back-fills what is retained.
func SinkConsumerConfig(name string, s ConsumerSettings) (jetstream.ConsumerConfig, error) {
	durable, err := SinkConsumerName(name)
	if err != nil {
		return jetstream.ConsumerConfig{}, err
	}
	return consumerConfig(durable, "crowsnest: sink "+name+" (managed by crowsnest)", s), nil
}

// SinkConsumers declares sink name's consumers on the events and the alerts
// stream.
func SinkConsumers(name string, s ConsumerSettings) ([]ConsumerDecl, error) {
	c, err := SinkConsumerConfig(name, s)
	if err != nil {
		return nil, err
	}
	alerts := c
	alerts.BackOff = slices.Clone(c.BackOff) // no aliasing between the two declarations
	return []ConsumerDecl{{Stream: EventsStream, Config: c}, {Stream: AlertsStream, Config: alerts}}, nil
}

func consumerConfig(durable, desc string, s ConsumerSettings) jetstream.ConsumerConfig {
	c := jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   desc,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.AckWait,
		MaxDeliver:    s.MaxDeliver,
		MaxAckPending: s.MaxAckPending,
		ReplayPolicy:  jetstream.ReplayInstantPolicy,
	}
	if len(s.Backoff) > 0 {
		// JetStream's BackOff[i] is the ack wait after delivery i+1 and, when
		// set, replaces AckWait; ours starts with AckWait so ack_wait keeps
		// meaning "the first wait" whether or not backoff is set.
		c.BackOff = append([]time.Duration{s.AckWait}, s.Backoff...)
	}
	return c
}

// EnsureConsumer creates d's consumer or updates it to d's configuration, and
// returns it. Fields JetStream cannot update on an existing consumer (such as
// the deliver policy) fail with the server's reason. A Transient error is
// retried, with backoff, for up to a minute: a stage ensuring its consumers
// while a cluster node restarts exited on the first timeout (found by
// e2e/chaos TestClusterRestarts).
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, d ConsumerDecl) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	err := RetryTransient(ctx, RetryFor, func() (err error) {
		c, err = js.CreateOrUpdateConsumer(ctx, d.Stream, d.Config)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on stream %s: %w", d.Config.Durable, d.Stream, err)
	}
	return c, nil
}

// IsLastDelivery reports whether a message delivered numDelivered times
// (jetstream.MsgMetadata.NumDelivered) will not be delivered again if it is
// not acked now: the moment a stage must dead-letter and Term it instead of
// Nak-ing (see the package doc). Always false with unlimited MaxDeliver.
func (s ConsumerSettings) IsLastDelivery(numDelivered uint64) bool {
	return s.MaxDeliver > 0 && numDelivered >= uint64(s.MaxDeliver)
}
