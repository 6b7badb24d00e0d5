// Package naturalid builds event ids from the parts of a record that make it
// unique (a Docker event's object, action and time; an audit event's node,
// time and serial), for mappers whose source gives no single id field.
//
// It must not read clocks or anything else that differs between two
// computations: the same parts always give the same id, whichever replica
// computes it.
package naturalid
