// Package procwatch maps the records of the procwatch sidecar collector
// (collectors/procwatch; the format is its FORMAT.md, format 1) to crowsnest
// events:
//
//	kind                 ECS category/type              OCSF
//	process_exec         process/start (seen at the     1007 Process Activity, 1 Launch
//	                     collector's start: info)       (at start: 99 Other)
//	process_exit         process/end                    1007 Process Activity, 2 Terminate
//	network_connection   network/connection, start      4001 Network Activity, 1 Open
//	network_listen       network/connection, start      4001 Network Activity, 7 Listen
//	file_change          file/creation, change,         1001 File System Activity: 1 Create,
//	                     deletion                       3 Update, 4 Delete, 5 Rename, 6 Set Attributes
//	capabilities         host/info, event.kind state    0 Base Event, 99 Other
//
// A process's identity is its boot, pid and start time: process.entity_id
// is derived from them, so an exec, its exit and its sockets join on it.
// An outbound connection's source is the local end, an inbound one's the
// remote; a listener's address is the destination. What the collector
// could not read (the record's errors) and what it can see (a
// capabilities report) go to message. event.id is the collector's message
// id, which procwatch already derives from the event's identity.
//
// It must not reject a record for what the collector could not read: an
// unprivileged sidecar misses other users' executables, and the event is
// still worth having.
package procwatch
