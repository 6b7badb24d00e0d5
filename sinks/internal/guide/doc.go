// Package guide holds the test that proves docs/adding-a-sink.md: the
// guide's code, extracted, must compile and pass its own tests, the sink
// conformance suite included. It has no code of its own.
package guide
