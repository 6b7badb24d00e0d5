// Package headers names every NATS header crowsnest puts on a message, once.
//
// The names are part of the wire contract in docs/ARCHITECTURE.md: collectors,
// the processor, sinks and the dead-letter tooling all read and write them, so
// they are declared here and nowhere else. The package also owns the one time
// format used in header values.
//
// It must not grow behaviour: no I/O, no NATS client code, no knowledge of
// streams or subjects (that is bus/topology).
package headers
