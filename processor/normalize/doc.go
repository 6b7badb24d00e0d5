// Package normalize is the processor's hot path: it turns one raw record, as a
// collector published it, into one crowsnest event (schemas.Event, ECS
// nesting, OCSF class ids) or a rejection that says why.
//
// It owns the contract every source implements ([Mapper], optionally
// [Splitter]), the limits applied before any mapper sees a byte ([Config]: record
// size, nesting depth, UTF-8, kept-blob sizes), the fields every event gets
// whatever its source ([Normalizer]: event.id, event.ingested, event.dataset,
// crowsnest.*, event.original, ocsf.type_uid, de-duplicated related.*, image
// trust), the [Registry] type, and [Lines], the JSON-lines loop behind
// `crowsnest normalize`. The per-source mappers live in sub-packages
// (normalize/k8saudit, normalize/falco, normalize/tetragon, normalize/docker,
// normalize/auditd, normalize/procwatch, normalize/jsonmap); the list of them
// is normalize/sources. A source whose
// records are not JSON (auditd's text) declares [FormatText] and gets only
// the size and UTF-8 checks.
//
// What it must not do: I/O other than the reader and writer handed to Lines;
// NATS, enrichment or detection (those are later stages); reflection or
// map[string]any per event; global mutable state. A rejected record is never
// an error of the normalizer itself: it is a [RejectError] with a stable
// reason code for the dead-letter stream and the error metric.
package normalize
