// Package spool is the bounded local disk spool behind the publisher's
// Spool seam: while NATS is unreachable and the publisher's in-flight slots
// are taken, records are appended here instead of blocking the source, and
// replayed, in the order they were spooled and with their original message
// ids (so that a replay JetStream already has is dropped as a duplicate),
// once the connection is back.
//
// On disk it is a directory of append-only segment files. Each record is
// framed with a magic number, its length and a CRC-32C of its payload; the
// replay position is a small cursor file rewritten atomically after
// JetStream acknowledged what precedes it, and fully replayed segments are
// deleted. The fsync policy (always, interval, never) trades throughput for
// what a power cut may take.
//
// It is bounded by max_bytes: when full, Put blocks until replay makes room
// or its context ends — backpressure to the source (the tail stops reading,
// the webhook answers 503), never a silent drop. A torn or corrupted record
// (crash mid-write, bit rot) is detected by its checksum and skipped; the
// reader resynchronizes on the next valid frame, and the skipped bytes are
// counted (crowsnest_collector_spool_corrupt_bytes_total) and logged as a
// gap. No input makes it panic.
//
// It must not parse records or decide what to publish where: it hands back
// exactly what the publisher gave it.
package spool
