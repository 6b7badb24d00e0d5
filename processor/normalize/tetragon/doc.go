// Package tetragon maps Cilium Tetragon's JSON export (the export file or
// stdout of `tetra getevents -o json`: one GetEventsResponse per line) to
// crowsnest events: process_exec and process_exit (OCSF Process Activity),
// process_kprobe, process_lsm, process_tracepoint and process_uprobe — as
// network (sock/skb/sockaddr arguments: OCSF Network Activity), file
// (file/path arguments: OCSF File System Activity), kernel-module or process
// activity by their arguments and hook —, and the older process_connect,
// process_close and process_listen events.
//
// Process identity follows Tetragon: exec_id is process.entity_id, so
// events of one process join on it; the pod, container and node become ECS
// orchestrator, container and host fields.
//
// It must not keep process state across records (ancestry lookups, exec
// caches): each record maps on its own; enrichment joins them later.
package tetragon
