// Package busbench holds the bus's Go benchmarks (bench_test.go): what the
// JetStream topology sustains on one machine for per-event messages with
// Nats-Msg-Id, for batched messages, and for pull consumption with per-message
// versus cumulative acks. It measures; it exports nothing.
//
//	go test -run '^$' -bench . -benchtime 200000x -count 3 ./busbench/
//
// By default the benchmarks run against an embedded server in the same
// process (what `crowsnest run` does). With CROWSNEST_BENCH_NATS_URL set they
// run against that server instead (e.g. a standalone nats-server -js), whose
// crowsnest streams they delete and recreate.
//
// It must not be imported by anything.
package busbench
