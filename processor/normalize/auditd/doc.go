// Package auditd maps Linux audit events to crowsnest events. A raw record
// is one audit event as collectors/auditd publishes it: the event's records
// — the lines of audit.log sharing one msg=audit(<time>:<serial>) — in the
// order auditd wrote them, each without its line ending, joined with '\n',
// bytes as auditd wrote them (an optional "node=<name> " prefix included).
// A single line (a user-space record such as USER_LOGIN, or one line fed to
// `crowsnest normalize --source auditd`) is an event of one record. The
// source is a [normalize.FormatText] source: no JSON checks apply.
//
// The lines are parsed with Elastic's github.com/elastic/go-libaudit/v2
// (auparse) and coalesced into one event (aucoalesce), whose ECS block
// gives event.category, event.type, event.kind and the users of logins and
// account changes (user.*, user.effective.*, user.target.*, group.*); its
// summary gives event.action (executed, logged-in, …). The process
// (process.pid, parent pid, name, executable, working directory, args from
// EXECVE, command line, tty, uid and gid), the file (file.path, mode from
// PATH), the addresses (SOCKADDR) and the rule keys (tags) follow Auditbeat.
// For a syscall go-libaudit names no user: user.id is then the login user
// behind the process (auid), or its uid when it has none. uid→name lookups
// need the audited host's passwd and are not made here; the names auditd's
// ENRICHED log format appends (AUID=, UID= after a 0x1d byte) become
// user.name and process.user.name.
//
// What the ECS fields do not carry but Sigma's auditd rules test, written as
// they are against single records, is kept under auditd.* with Auditbeat's
// names: every record type of the event (auditd.record_types), the records'
// remaining fields and the process's ids (auditd.data: syscall name, arch,
// exit, a0–a3, unit, euid, …) and each PATH record's name and nametype
// (auditd.paths.*).
//
// OCSF: execve → Process Activity (1007), file syscalls (open, unlink,
// rename, chmod, …; PATH records) → File System Activity (1001), socket
// syscalls → Network Activity (4001), logins and authentications (USER_*,
// LOGIN, CRED_*) → Authentication (3002), account and group changes
// (ADD_USER, USER_CHAUTHTOK, DEL_GROUP, …) → Account Change (3001), the
// rest (audit configuration, firewall, clock) → Base Event (0). The full
// table is on [classify]; DIFFERENCES.md compares the mapping with
// go-libaudit's own golden output.
//
// event.id is derived from the node (the node= prefix, else the collector's
// node), the record time as written and the audit serial: the identity
// auditd gives an event.
//
// go-libaudit builds maps per record (regular-expression key=value parsing),
// so this is the slowest mapper; it must not resolve ids against the local
// /etc/passwd (the processor is not the audited host) or keep state across
// records.
package auditd
