// Package collector maps the collectors' own records (source "collector",
// collectors/spool's gap records) to crowsnest events, so that what a
// collector lost is visible in the SIEM beside what it saw.
//
// A gap record says that a collector lost records: dropped because its spool
// was full and its full_policy is drop, or skipped as corrupt spool bytes.
// It becomes one event:
//
//	event.kind metric, event.action gap, event.category host, event.type info
//	event.reason            spool_full or spool_corrupt
//	event.start, event.end  when the loss happened (first, last)
//	crowsnest.gap.source    the source whose records were lost ("" unknown)
//	crowsnest.gap.records   how many (0 when unknown: corruption)
//	crowsnest.gap.bytes     how many spool bytes they took
//	host.name               the collector's node (Crowsnest-Node)
//	OCSF                    0 Base Event, 99 Other, severity Medium (3)
//
// The gap record's body is trusted as far as the collector is: its subject
// binds it to the collector that publishes it. event.id is the gap's id,
// fixed when the gap opened, so a gap re-sent after a restart is one event.
//
// It must not map anything but a gap record (any other type is rejected
// with not_collector), nor invent counts the record does not carry.
package collector
