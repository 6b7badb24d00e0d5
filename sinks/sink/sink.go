package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/nats-io/nats.go"
)

// Sink writes batches of records to a store. See the package documentation
// for what each return value of WriteBatch makes the Runner do.
type Sink interface {
	// WriteBatch makes every record of batch durable in the store, or says
	// which records failed and whether each failure is permanent. It returns
	// only once the store confirmed the write: the Runner acknowledges the
	// messages right after.
	WriteBatch(ctx context.Context, batch []Record) error
	// Close releases the sink's resources. It is called once, after the last
	// WriteBatch has returned; ctx bounds how long it may take.
	Close(ctx context.Context) error
}

// ConsumerObserver is implemented by sinks that want to know the state of
// their consumers (a live view showing the lag, a sink that prunes what it
// remembers about acknowledged messages). The Runner calls ObserveConsumer
// about every RunnerConfig.StatusInterval for each stream, between that
// stream's WriteBatch calls (never during one), but concurrently with the
// other stream's: implementations must be safe for that.
//
// Once ObserveConsumer has reported an AckFloor, WriteBatch is never given a
// redelivery of that stream at or below it, so a sink may forget what it
// wrote there. (A redelivery sent before an ack landed can still arrive
// afterwards; the Runner drops it.) One exception: a nats-server that
// crashes can come back with an older ack floor than it reported (consumer
// state reaches its disk after the acks) and redeliver what was acknowledged
// since; a sink that forgets must wait a while first (the file sink waits
// two minutes).
type ConsumerObserver interface {
	ObserveConsumer(ConsumerStatus)
}

// ConsumerStatus is a sink consumer's state, from the consumer info.
type ConsumerStatus struct {
	Kind Kind
	// NumPending is how many messages of the stream the consumer has not
	// delivered yet: the sink's lag.
	NumPending uint64
	// NumAckPending is how many delivered messages wait for an ack.
	NumAckPending int
	// AckFloor is the stream sequence at or below which every message has
	// been acknowledged (or terminated): none of them is delivered again,
	// unless someone resets the consumer.
	AckFloor uint64
}

// Kind tells which stream a record comes from.
type Kind uint8

// The streams a sink consumes.
const (
	KindEvents Kind = iota + 1 // CROWSNEST_EVENTS: one schemas.Event per message
	KindAlerts                 // CROWSNEST_ALERTS: one schemas.Alert per message
)

// Kinds lists every kind, in a stable order.
func Kinds() []Kind { return []Kind{KindEvents, KindAlerts} }

// String returns "events" or "alerts", the word used in config files, file
// names and log lines.
func (k Kind) String() string {
	switch k {
	case KindEvents:
		return "events"
	case KindAlerts:
		return "alerts"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Stream is the JetStream stream that holds records of kind k.
func (k Kind) Stream() string {
	switch k {
	case KindEvents:
		return topology.EventsStream
	case KindAlerts:
		return topology.AlertsStream
	}
	return ""
}

// ParseKind parses "events" or "alerts".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "events":
		return KindEvents, nil
	case "alerts":
		return KindAlerts, nil
	}
	return 0, fmt.Errorf("unknown stream %q (want events or alerts)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, so config files write
// streams: [events, alerts].
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Record is one message of the events or alerts stream, as a sink sees it.
type Record struct {
	// Data is the message body exactly as published: one schemas.Event or
	// schemas.Alert as JSON. It aliases the message buffer: a sink must copy
	// what it keeps past WriteBatch.
	Data []byte
	// ID is the message's Nats-Msg-Id, which equals event.id: the natural
	// identity a store deduplicates on.
	ID string
	// Kind is the stream the record was read from.
	Kind Kind
	// Subject is the subject it was published to (crowsnest.events.<source>,
	// crowsnest.alerts.<level>).
	Subject string
	// Header holds the message headers (bus/headers names them). Read only.
	Header nats.Header
	// Seq is the message's sequence in its stream: unique and increasing
	// within Kind, the same on every redelivery.
	Seq uint64
	// Delivered counts deliveries of this message to the sink's consumer;
	// more than 1 means a redelivery.
	Delivered uint64
	// Stored is when JetStream stored the message.
	Stored time.Time
}
