// Package partition decides which partitions of the raw streams this
// processor replica owns, with NATS only: each live replica holds a
// membership lease (a key in the crowsnest-processors bucket, renewed every
// third of the lease and expiring with it), and every replica computes the
// same assignment of partitions to the live replicas (Assign: rendezvous
// hashing with a bound on each replica's load). When a replica stops, its key
// is deleted; when it dies, its lease expires; either way the others see it
// gone at their next renewal and take its partitions over.
//
// Replicas may briefly disagree (each lists the members at its own moment):
// a partition is processed only by the holder of its claim, and each claim's
// Fence tells the pipeline, before every fetch and message, whether the claim
// is still certainly held — so a replica that stalled past its lease stops
// before the next owner can start.
//
// The package must not consume or publish records: it only says which
// partitions are ours.
package partition
