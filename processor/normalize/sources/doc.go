// Package sources lists every source the processor normalizes, in one place:
// adding a source is one folder under processor/normalize and one line here.
// It must not hold state: each call builds a fresh registry.
package sources
