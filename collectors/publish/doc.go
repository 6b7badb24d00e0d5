// Package publish is the one publisher every crowsnest collector uses to hand
// raw records to JetStream.
//
// A source builds a [Record] (source name, the bytes exactly as the source
// produced them, the record's natural identity) and hands it to a
// [Publisher], which publishes it asynchronously to
// crowsnest.raw.<source>.<collector>.<key> (key: topology.KeyToken of the
// record's Key, the entity that picks its partition) with the headers of
// docs/ARCHITECTURE.md (Nats-Msg-Id, Crowsnest-Source, Crowsnest-Collector,
// Crowsnest-Node, Crowsnest-Observed), keeps at most max_in_flight records
// unacknowledged, and retries transient failures with backoff until JetStream
// acknowledges each record. A source learns that its records are durable
// through an [Ack] (one record: [Publisher.PublishAsync]; many: a [Batch]) and
// only then checkpoints its position or answers its client.
//
// When JetStream cannot take records (the server is down, the stream is full)
// the publisher blocks the source, with context cancellation: backpressure,
// never loss. A record larger than max_event_bytes (or than the server's
// max_payload) is never published raw: it goes to the dead-letter stream with
// stage "collector", a truncated sample and the reason, and is counted as
// discarded.
//
// Two seams connect it to its neighbours: [Transformer] (redaction before
// publish, collectors/redact) and [Spool] (the disk spool taking records
// while NATS is unreachable, collectors/spool; a spool that drops by the
// user's policy returns [ErrDropped] and reports the loss itself).
//
// The package must not parse records (that is the processor's job), know
// about any particular source beyond its name, or reach further down the
// pipeline than JetStream.
package publish
