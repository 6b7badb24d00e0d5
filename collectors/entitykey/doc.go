// Package entitykey says which entity a raw record is about — the
// Kubernetes namespace, the user of a cluster-scoped request, the node — as
// the Record.Key that partitions it (bus/topology): every record with one key
// reaches the same processor replica, in order, so correlations over a pod's
// audit and runtime events see them together.
//
// One file per source reads only the fields that name the entity, with gjson
// over the raw bytes (no full parse). Keys are "ns/<namespace>",
// "user/<username>" and "node/<node>"; the same namespace gives the same key
// whatever source saw it. A record whose entity cannot be told gets "" and
// the publisher keys it by the collector's node.
//
// The package must not validate or transform records: a key is a routing hint,
// and a record it cannot read is still published (the processor decides what
// is malformed).
package entitykey
