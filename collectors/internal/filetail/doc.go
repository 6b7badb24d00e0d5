// Package filetail follows line-oriented log files for the file sources
// (the Kubernetes audit log, auditd, JSON lines): rotation by rename and
// create or copytruncate, a
// durable per-file checkpoint (device, inode, offset) written only after
// JetStream acknowledged everything before it, resumption after restart
// with no loss (re-sent records carry the same message ids, so JetStream
// drops them), partial last lines held back, overlong lines dead-lettered.
//
// What a chunk of lines becomes is the Handler's business; it may leave a
// tail of the chunk unconsumed (an auditd event whose records are not all
// written yet), which is offered again with more data, or as final once the
// file was idle for flush_after or rotated.
//
// It must not parse records or write to the files it reads.
package filetail
