// Package auditd tails the Linux audit daemon's log (audit.log) and
// publishes one raw record per audit event: the event's records — the
// lines sharing one msg=audit(<time>:<serial>) — grouped by serial and
// joined with '\n', bytes as auditd wrote them. Lines are parsed with
// github.com/elastic/go-libaudit/v2 (auparse) only to find their type and
// serial; interpreting them is the processor's job.
//
// An event is complete at its EOE or PROCTITLE record, with a standalone
// record type (user-space and daemon messages, anomalies), once four later
// serials have been seen after its last record (auditd writes an event's
// records together; interleaving is short), or when the file has been
// idle for flush_after. Records of an event not complete yet stay unread:
// the checkpoint (collectors/internal/filetail: rotation, restart, no loss)
// never passes them. A line that is not an audit record is dead-lettered.
//
// The message id is msgid.FromContent of the event's bytes: re-reading the
// file after a restart produces the same ids, which JetStream drops.
//
// It must not open the audit netlink socket (that needs CAP_AUDIT_READ and
// competes with auditd) or write to the log.
package auditd
