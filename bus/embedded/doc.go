// Package embedded runs a NATS server with JetStream inside the crowsnest
// process: the bus of `crowsnest run` (one binary, no separate server to
// install) and of integration tests (see package natstest).
//
// The server listens on Host:Port (127.0.0.1 and a random port by default, so
// it is not reachable from the network unless asked), keeps JetStream data
// under DataDir, and logs through slog.
//
// Only the CLI and tests may import this package: stage binaries
// (collector, processor, sink) connect to a server with bus/natsconn and must
// not carry one. It must not install signal handlers (only main handles
// signals), exit the process, or create streams (bus/topology does).
package embedded
