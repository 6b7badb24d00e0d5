// Package sinktest is the conformance suite every crowsnest sink must pass,
// and the helpers it is built from: a real embedded JetStream with the
// crowsnest topology, documents to publish, and a sink wrapper that injects
// the faults a real store cannot be made to produce on demand.
//
// A sink's test calls Run with a Harness that opens the sink over a store and
// reads back what the store holds:
//
//	func TestConformance(t *testing.T) {
//		sinktest.Run(t, sinktest.Harness{
//			Name:        "file",
//			NewStore:    func(tb testing.TB) sinktest.Store { return &fileStore{dir: tb.TempDir()} },
//			ExactlyOnce: true,
//			Reject:      []byte("{not json"),
//		})
//	}
//
// The suite checks, each against its own server: at-least-once delivery with
// end-to-end acks; a crash after a write and before its acks (the connection
// dies inside WriteBatch) is redelivered to a fresh sink over the same store,
// and stored once when the sink claims ExactlyOnce; a permanently rejected
// record, and only it, lands in the dead-letter stream with its original
// bytes while the rest is written; retryable failures are retried in-process
// and by redelivery until written; a record still failing on its last
// delivery is dead-lettered; shutdown flushes and acknowledges the batch it
// holds; a write slower than AckWait is kept alive and not redelivered under
// it; and, throughout, the runner never gives the sink a redelivery at or
// below an ack floor it has reported (ConsumerObserver).
//
// This package is for tests and benchmarks only; it must not be imported by
// a sink's production code.
package sinktest
