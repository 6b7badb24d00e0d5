// Package topology declares every NATS subject, JetStream stream, consumer and
// key-value bucket crowsnest uses, once, and creates them idempotently.
//
// Everything that names a subject or a stream gets it from here: collectors
// build raw subjects with RawSubject, the processor declares its consumers
// with ProcessorConsumers, sinks with SinkConsumers, and whichever process
// starts first calls Ensure. A second hand-written copy of a name elsewhere is
// a bug.
//
// # Retention and discard, and why
//
// Raw streams (CROWSNEST_RAW_<SOURCE>) are work queues with discard=new by
// default: a raw record leaves its stream when the processor acknowledges it
// (which it does only after its outputs are durable), so the stream's limits
// bound the unprocessed backlog. When the backlog is full, JetStream refuses new
// publishes and collectors feel the back-pressure (they retry or spool) instead
// of JetStream silently deleting the oldest records nobody has processed yet.
// The cost: a stalled processor eventually stalls collection, a raw record
// older than max_age is still dropped unprocessed, and a work queue admits
// only consumers whose filters do not overlap (the processor's, one per
// partition: ProcessorConsumers), so raw records cannot be tapped or replayed.
//
// Raw streams are partitioned by entity (partition.go): the server inserts
// the partition number it computes from the record's key token, and the
// partition count cannot change on an existing stream (Ensure refuses).
// discard=old turns the back-pressure into silent loss of the oldest backlog.
//
// CROWSNEST_EVENTS and CROWSNEST_ALERTS keep everything for max_age and drop
// the oldest when full (discard=old), so a sink that is down longer than the
// retention loses its oldest unread events but never blocks the processor or
// the other sinks. CROWSNEST_DLQ refuses new records when full (discard=new):
// a rejected record is never silently dropped; the rejecting stage keeps it
// (the processor naks, the raw backlog grows) until someone drains the DLQ.
//
// # Redelivery
//
// Consumers declared here ack explicitly. A Nak redelivers at once, NakWithDelay
// after the delay, no ack after AckWait (or the BackOff step). After MaxDeliver
// deliveries JetStream stops delivering the message to that consumer and
// publishes an advisory on
// $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>; the message
// stays in the stream (in a raw work queue: until max_age, counting against
// max_bytes). So a stage must dead-letter and Term a record on its last
// delivery (ConsumerSettings.IsLastDelivery(meta.NumDelivered)) rather than
// rely on MaxDeliver to get rid of it.
//
// # Duplicates
//
// Every message carries its natural identity as Nats-Msg-Id (bus/msgid), and
// JetStream drops a second message with a known id inside duplicate_window.
// An id stays known after its message is acked off a work queue, but a server
// restart rebuilds the known ids from the messages still stored: the id of a
// raw record processed before the restart is forgotten, so a collector that
// re-sends it afterwards has it processed again. The events stream keeps its
// messages, so the re-published event is still dropped there, and the stores
// key on event.id in any case.
//
// This package must not publish or consume data, hold connections, or know
// about sources' formats; it declares names and shapes and applies them.
package topology
