#!/usr/bin/env bash
# The end-to-end benchmark (issue #9): the real collector, a standalone
# nats-server, the processor (built-in rules + SigmaHQ when
# ../shared/corpora/sigmahq is present) and three sink processes (file,
# ClickHouse, Elasticsearch) fed a Kubernetes audit / Tetragon / Falco mix
# with fresh ids; stage ceilings against the raw JetStream ceiling, the
# sustained rate where every backlog stays flat, latencies, CPU and RSS per
# process at 25/50/75 % of it, and Benthos v4 on the same audit records.
# Prints a markdown report and keeps it under .bench/. See docs/BENCHMARKS.md,
# "End to end (issue #9)". About 10-15 minutes on 2 vCPUs.
#
#   scripts/bench-e2e.sh                       # or: make bench-e2e
#   STEPS=1000,2000,4000 STEP=30s LATENCY=30s scripts/bench-e2e.sh
#
# STEPS    offered rates tried, events/s, increasing (default 500,1000,2000,4000,8000;
#          one midpoint is added between the last flat step and the first not flat)
# STEP     duration of each step (30s); LATENCY: of each latency phase (30s)
# CEILING  records of the stage-ceiling burst (60000); PEER: audit records through
#          the peer (50000)
# NOCH     0 skips the second search with the ClickHouse sink stopped (default 1:
#          the development engine shares the two cores and bounds the first)
# BIN      where binaries are built (default bin/bench; not bin/chaos, so a
#          concurrent make chaos does not overwrite them)
# Needs the development stores: CROWSNEST_TEST_CLICKHOUSE_URL and
# CROWSNEST_TEST_ELASTICSEARCH_URL, else taken from deploy/dev/services.sh env.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
BIN=${BIN:-$root/bin/bench}
mkdir -p "$BIN" .bench
if [[ -z ${CROWSNEST_TEST_CLICKHOUSE_URL:-} || -z ${CROWSNEST_TEST_ELASTICSEARCH_URL:-} ]]; then
  eval "$(bash deploy/dev/services.sh env)"
fi
echo "== building Benthos v4 (bench/peer, its own module outside go.work)" >&2
(cd bench/peer && GOWORK=off go build -trimpath -o "$BIN/benthos" ./benthos)
out="$root/.bench/e2e-$(date -u +%Y%m%dT%H%M%SZ).md"
echo "== uptime before: $(uptime)" >&2
cd e2e
CROWSNEST_BENCH_E2E=1 \
CROWSNEST_BENCH_BIN="$BIN" \
CROWSNEST_BENCH_BENTHOS="$BIN/benthos" \
CROWSNEST_BENCH_OUT="$out" \
CROWSNEST_BENCH_STEPS="${STEPS:-500,1000,2000,4000,8000}" \
CROWSNEST_BENCH_STEP="${STEP:-30s}" \
CROWSNEST_BENCH_LATENCY="${LATENCY:-30s}" \
CROWSNEST_BENCH_CEILING_EVENTS="${CEILING:-60000}" \
CROWSNEST_BENCH_PEER_EVENTS="${PEER:-50000}" \
CROWSNEST_BENCH_WITHOUT_CLICKHOUSE="${NOCH:-1}" \
  go test -count=1 -run '^TestEndToEnd$' -v -timeout 60m ./bench/
echo "== uptime after: $(uptime)" >&2
echo "report: $out" >&2
