// Package deadletter is the format of a dead-letter record and its publisher.
//
// A stage that cannot handle a message for good (a record the processor
// cannot parse, an event a store rejects as malformed) publishes a record to
// CROWSNEST_DLQ on crowsnest.dlq.<stage>.<source> (a collector on
// crowsnest.dlq.collector.<source>.<collector>, so that NATS permissions bind
// it to its own id) and only then Terms the original. The record's body is the original bytes (cut to a size cap, with
// Crowsnest-Truncated and Crowsnest-Original-Size saying so); its headers say
// why (Crowsnest-Error, one line), where (Crowsnest-Stage,
// Crowsnest-Original-Subject), after how many tries (Crowsnest-Delivery-Count)
// and what it was (Crowsnest-Source, Crowsnest-Original-Msg-Id, and the
// collector provenance headers). Its Nats-Msg-Id is dlq-<stage>-<original id>,
// so a rejection repeated on redelivery is recorded once.
//
// Publish returns only after JetStream has stored the record, so the caller
// may Term the original as soon as it returns nil. Decode reads a record back
// (tests, the `crowsnest dlq` command).
//
// It must not decide what is permanent (the stage does), ack or term the
// original message, or retry: on error the caller Naks and tries again later.
package deadletter
