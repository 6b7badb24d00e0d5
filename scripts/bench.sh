#!/usr/bin/env bash
# Every stage's Go benchmarks, in one run so that ratios compare like with
# like. Results go to .bench/<date>/<module>.txt; summarize medians with
# benchstat (go run golang.org/x/perf/cmd/benchstat@latest FILE).
#   COUNT=5 BENCHTIME=1s BENCH=. scripts/bench.sh [module...]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
BENCH=${BENCH:-.}
MODULES=("$@")
[[ ${#MODULES[@]} -gt 0 ]] || MODULES=(schemas bus collectors processor sinks)
out=".bench/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
for m in "${MODULES[@]}"; do
  echo "== $m (count=$COUNT benchtime=$BENCHTIME)"
  go test -run '^$' -bench "$BENCH" -benchmem -count "$COUNT" -benchtime "$BENCHTIME" "./$m/..." | tee "$out/$m.txt"
done
echo "results in $out"
