// Package msgid derives message ids from the natural identity of what a
// message carries.
//
// The id is the message's Nats-Msg-Id, the event's event.id, its
// Elasticsearch _id and ClickHouse's dedup key, so the same input always
// yields the same id, whichever process or replica computes it and however
// often: a collector that re-reads a file, a processor that crashes between
// publish and ack, a sink that retries a bulk request all produce duplicates
// that the next layer drops by id.
//
// Every id this package returns passes Validate: visible ASCII only (it
// travels in a NATS header, so no CR, LF, spaces or control bytes) and at most
// MaxLen bytes. Inputs that would break that are mapped deterministically: the
// offending bytes become '_' and a hash of the whole input is appended, so
// distinct inputs keep distinct ids.
//
// It must not read clocks, random numbers, counters or anything else that
// differs between two computations of the same id.
package msgid
