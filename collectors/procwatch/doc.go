// Package procwatch is the unprivileged runtime collector for a pod's
// sidecar (shareProcessNamespace: true): it polls /proc for process
// execution (pid, ppid, executable, argv, uid/gid, cwd, start time,
// container id from the cgroup) and exits, reads /proc/net/{tcp,tcp6,udp,
// udp6} for new listeners and connections and maps them to processes
// through /proc/<pid>/fd, and watches configured files with inotify
// (github.com/fsnotify/fsnotify), reporting changes with SHA-256 hashes.
//
// It says what it can and cannot see: a capabilities event at start and
// whenever that changes (which processes are visible, whether their exe,
// cwd and fds are readable with its privileges, which socket tables it can
// read, how execs are detected). Without CAP_SYS_PTRACE a non-root sidecar
// cannot read exe, cwd or fds of processes of other users; it still reports
// them with what it can read, and the missing fields in the event's errors.
// Exec detection is by polling: a process that starts and exits between two
// polls is missed. Where the kernel's process events connector can be
// opened (CAP_NET_ADMIN in the initial namespaces: a node agent, never an
// unprivileged sidecar) every exec is reported from it as well, read from
// /proc at once, or with its pid alone when it already exited.
//
// The raw record format is defined here: FORMAT.md, for the processor's
// mapper. Message ids come from each event's identity (boot id, pid and
// start time for a process; socket inode; file path and content), so a
// restarted collector re-reporting the same running processes stores
// nothing new within the duplicate window.
//
// It must not need privileges, write to /proc or the watched files, or
// interpret what it sees (that is the processor's job).
package procwatch
