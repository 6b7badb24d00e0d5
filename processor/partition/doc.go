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
// the partition consumers' pinned priority group (bus/topology) makes sure
// one of them at a time receives a partition's messages.
//
// The package must not consume or publish records: it only says which
// partitions are ours.
package partition
