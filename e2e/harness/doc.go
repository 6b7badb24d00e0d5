// Package harness runs crowsnest as real processes for fault tests: it builds
// the binaries (and a standalone nats-server) once, starts each process with
// its own data directory under a test's temporary directory and its own
// loopback ports, waits for /readyz, kills processes with SIGKILL or stops
// them with SIGTERM, and prints the tail of every process's log when a test
// fails.
//
// It also holds the checks the scenarios share: a generated Kubernetes audit
// log with known ids, and censuses of what reached a JetStream stream, the
// file sink, ClickHouse and Elasticsearch, compared id by id with what was
// generated (lost, duplicated, unexpected).
//
// FaultProxy stands in front of a real store and injects, per request, what
// the store cannot be made to do on demand: 429 for a whole request, chosen
// _bulk documents failed while the rest are written, connection resets
// before or after the store executed a request, an answer held after the
// write; it counts each outcome and each document id. StoreProc runs a
// scenario's own Elasticsearch or ClickHouse engine, to stop and restart
// without touching the shared development services.
//
// It only observes the pipeline through its public surfaces — command lines,
// configuration files, /readyz, stream contents and the stores — so a
// scenario tests what a user deploys. It must not import crowsnest's stage
// packages (collectors, processor, sinks): only bus/topology for the names of
// streams, which are the contract between stages.
package harness
