// Package sink is the framework every crowsnest sink is built on: the Sink
// interface a store implements, the Runner that feeds it from JetStream, the
// per-record error vocabulary, and the Factory a sink registers.
//
// # Who does what
//
// A sink writes; the Runner acknowledges. The Runner owns one durable pull
// consumer per stream (CROWSNEST_EVENTS and CROWSNEST_ALERTS, named
// sink-<name>, so the two streams progress independently), cuts the messages
// into batches by count, bytes and time, and calls WriteBatch with the
// records of one stream in delivery order. What WriteBatch returns decides the
// fate of every message:
//
//	nil                      every record is durable in the store: ack all
//	*BatchError              the records it names failed, the rest are acked;
//	                         a failure wrapped by Permanent is dead-lettered,
//	                         any other failure is retried
//	Permanent(err)           every record is dead-lettered
//	any other error          every record is retried
//
// Retrying means: the failed records are written again in-process with
// exponential backoff and jitter, up to RetryConfig.MaxAttempts; then they are
// negatively acknowledged with a delay that grows with the delivery count, so
// JetStream redelivers them later and a store outage never turns into a retry
// storm. On the consumer's last delivery (MaxDeliver) a record that still fails
// is dead-lettered instead. Dead-lettering means: the original bytes are
// published to CROWSNEST_DLQ (subject crowsnest.dlq.sink-<name>.<source>,
// headers naming the error, the stage and the delivery count) and only once
// JetStream has acknowledged that publish is the original terminated
// (TermWithReason). A record is never acknowledged before the store or the
// dead-letter stream holds it.
//
// Every delivered message not yet settled — in the batch being written, the
// batch being filled or queued behind them — is kept alive with InProgress
// every fifth of AckWait (or of the shortest backoff step), on a clock of its
// own, so a slow store never gets its messages redelivered under it. Should a
// message come again anyway (the process stalled for longer than that), the
// Runner holds it once, by stream sequence, and settles only its newest
// delivery: a stale Nak after the last delivery was dead-lettered would make
// JetStream redeliver past MaxDeliver, which pins the consumer's ack floor.
// A redelivery at or below the ack floor (already settled; it was on its way
// when the ack landed) is dropped. In-flight memory is
// bounded by the consumer's MaxAckPending (consumers.sink.max_ack_pending in
// the topology config): JetStream delivers no more unacknowledged messages.
//
// On shutdown (the context given to Run is cancelled) the Runner stops
// fetching, writes and acknowledges what it holds (retryable failures are
// then handed back at once rather than retried), then closes the sink; all
// within DrainTimeout, after which what is left is negatively acknowledged
// for immediate redelivery elsewhere. Run returns after that.
//
// # What a sink must not do
//
// A sink must not ack, nak or otherwise touch JetStream messages, retry on its
// own beyond what one WriteBatch call needs, or keep Record.Data after
// WriteBatch returns (it aliases the message buffer). WriteBatch may be called
// concurrently for different streams, never concurrently for the same one.
//
// The conformance suite every sink must pass lives in sink/sinktest.
package sink
