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
// Each frame carries every field of publish.Record (frame.go; older
// version 1 frames, without the partition key and the dead-letter reason,
// are still read), so a record replays exactly as it was handed in.
//
// It is bounded by max_bytes: when full, Put blocks until replay makes room
// or its context ends — backpressure to the source (the tail stops reading,
// the webhook answers 503), never a silent drop. A torn or corrupted record
// (crash mid-write, bit rot) is detected by its checksum and skipped; the
// reader resynchronizes on the next valid frame, and the skipped bytes are
// counted (crowsnest_collector_spool_corrupt_bytes_total) and logged as a
// gap. No input makes it panic.
//
// A user may choose loss over backpressure (full_policy: drop). Then, and
// for corrupt bytes, the loss is made visible rather than silent: gap.go
// counts it per source and reason, and FlushGaps (every gap_interval and at
// shutdown, driven by the agent) publishes one gap record per source and
// reason on the collector source:
//
//	{"type":"gap","id":"gap-spool_full-<ns>-<random>","source":"k8s_audit",
//	 "reason":"spool_full","records":25,"bytes":7075,
//	 "first":"<RFC 3339>","last":"<RFC 3339>"}
//
// (processor/normalize/collector maps it). A gap is forgotten only once
// JetStream acknowledged its record; until then it is re-sent under the same
// id, and kept in gaps.json across restarts. Gap records are never dropped.
//
// It must not parse records or decide what to publish where: it hands back
// exactly what the publisher gave it.
package spool
