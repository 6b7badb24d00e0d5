// Package bench is the end-to-end benchmark (issue #9, `make bench-e2e`):
// a realistic mix of Kubernetes audit records, Tetragon runtime events and
// Falco alerts, each with a fresh id, fed through the real collector (file
// tail, JSON-lines tail, Falco HTTP receiver) into a standalone nats-server,
// the processor (built-in rules, plus the SigmaHQ Kubernetes and Linux rules
// when ../shared/corpora/sigmahq is present) and three sink processes (file,
// ClickHouse, Elasticsearch). It measures each stage's ceiling against the
// raw JetStream ceiling of the same server, the sustained rate where every
// stage's backlog stays flat, latencies and per-process CPU and RSS at
// fractions of that rate, and the Benthos peer on the same records.
//
// It runs only when CROWSNEST_BENCH_E2E=1 (scripts/bench-e2e.sh sets it) and
// observes the pipeline only through its public surfaces, like the harness:
// files, HTTP, stream and consumer state, and the stores.
package bench
