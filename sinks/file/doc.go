// Package file is the file sink: it writes every event and alert as one JSON
// line (the document exactly as published) to files under a directory,
// rotated by size and age:
//
//	events-20261126T101500Z-000001.jsonl
//	alerts-20261126T101500Z-000001.jsonl
//
// A file name says which stream it holds, when it was opened (UTC) and its
// number, which keeps growing across restarts; a restart never appends to an
// old file, it opens a new one. Each batch is synced (fsync) before it is
// reported written, so the acknowledgement that follows is honest.
//
// # Exactly once in the files
//
// JetStream delivers at least once: a crash after a batch was written and
// before its acks reached the server redelivers the batch. The sink stores
// each stream message once anyway, by remembering which stream sequences it
// wrote. Sequences rather than event ids, because they are small, unique per
// stream, increase in delivery order (so the set of written ones compresses
// into a few ranges, "1-90000,90002-120000", whatever the volume), and are
// the same on every redelivery of a message.
//
// Per stream, the sink keeps an index, .index/<stream>.journal, an
// append-only log with one line per batch: the file written, its size after
// the batch, and the sequences the batch wrote. A batch is committed in this
// order: append the lines to the data file, sync it, append the commit line
// to the index, sync it, report the batch written (the runner then acks). So:
//
//   - A crash before the commit line is durable leaves bytes in the data file
//     that no commit covers; at start-up the sink cuts each file back to its
//     last committed size and removes files opened after the last commit.
//     Those records were never acknowledged: they come again and are written
//     once.
//   - A crash after the commit line, before the acks, leaves the records in
//     the files and their sequences in the index; when they are redelivered
//     the sink skips them and reports them written, and the runner acks them.
//
// Why not "the highest sequence written", the simplest index? Because
// delivery order is not sequence order once anything is redelivered: a record
// that failed and was negatively acknowledged comes back after later ones
// were written, and a high-water mark would skip it — a loss. The set of
// ranges is exact in both directions.
//
// The index forgets what it no longer needs: sequences at or below the
// consumer's ack floor, as the runner reports it (it never passes a
// redelivery at or below a floor it reported: see sink.ConsumerObserver), are
// dropped once that floor is two minutes old — a nats-server killed right
// after it reported a floor can come back with an older one (its consumer
// state reaches the disk after the acks) and redeliver what was
// acknowledged meanwhile, which the sink must still recognise — and the journal is compacted into one snapshot line on every
// rotation and whenever it passes 1 MiB. Without ack-floor
// reports the set is capped at 100,000 ranges, forgetting the oldest; a
// forgotten record redelivered later is written twice, never lost.
//
// Two messages with the same event.id are two stream messages (the stream's
// duplicate window had passed) and both are written; stores keyed by id
// absorb that, files do not pretend to.
//
// A record whose body is not JSON is rejected permanently (the runner
// dead-letters it). A JSON body spread over several lines is compacted onto
// one.
//
// With fsync off, the order above still holds for a process crash (the page
// cache survives it) but not for a power loss, which can lose acknowledged
// records.
//
// This package must not ack messages, talk to NATS, or read the files it
// wrote except to recover at start-up.
package file
