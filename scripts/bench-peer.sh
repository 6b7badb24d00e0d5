#!/usr/bin/env bash
# Kubernetes audit normalization, crowsnest against its peer Benthos v4 (core,
# MIT), on the same file in the same run: file → mapping → file for both, CPU
# time (user+sys, /usr/bin/time) per run, medians over RUNS runs, and the
# ratio of events per CPU-second. See docs/BENCHMARKS.md (Normalization).
#
#   scripts/bench-peer.sh                 # or: make bench-peer
#   INPUT=sample EVENTS=50000 RUNS=5 scripts/bench-peer.sh
#
# INPUT  hkerma (default when present): 16,563 real kube-apiserver records of
#        ../shared/corpora/hkerma-k8s-audit (~440 B, Metadata level; cite
#        PerfSPEC, see SOURCES.md); sample: the bundled replay sample
#        collectors/replay/samples/k8s_audit.jsonl (92 records, ~970 B, with
#        annotations and request objects); or a path to audit JSON lines.
#        Repeated until EVENTS lines.
# EVENTS lines per run (default 100000). RUNS runs of each (default 3).
# WORK   scratch directory (default: a fresh mktemp -d, removed at exit).
# CROWSNEST_BIN  a crowsnest binary to measure instead of building ./cli.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

EVENTS=${EVENTS:-100000}
RUNS=${RUNS:-3}
hkerma="$root/../shared/corpora/hkerma-k8s-audit/audit-logs.reconstructed.jsonl"
sample="$root/collectors/replay/samples/k8s_audit.jsonl"
if [[ -z ${INPUT:-} ]]; then
  if [[ -f $hkerma ]]; then INPUT=hkerma; else
    echo "note: $hkerma absent (a clone without ../shared); using the bundled replay sample" >&2
    INPUT=sample
  fi
fi
case $INPUT in
  hkerma) src=$hkerma ;;
  sample) src=$sample ;;
  *) src=$INPUT ;;
esac
if [[ ! -s $src ]]; then
  echo "SKIP bench-peer: input $src is absent or empty" >&2
  exit 0
fi
[[ $EVENTS =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "EVENTS and RUNS must be positive integers" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "bench-peer needs /usr/bin/time (GNU time) for user+sys CPU" >&2; exit 2; }

if [[ -z ${WORK:-} ]]; then
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"

echo "== building Benthos v4 (bench/peer, its own module outside go.work)" >&2
(cd bench/peer && GOWORK=off go build -trimpath -o "$WORK/benthos" ./benthos && GOWORK=off go build -o "$WORK/compare" ./compare)
crowsnest=${CROWSNEST_BIN:-}
if [[ -z $crowsnest ]]; then
  echo "== building crowsnest" >&2
  CGO_ENABLED=0 go build -trimpath -o "$WORK/crowsnest" ./cli
  crowsnest="$WORK/crowsnest"
fi

# The input: src's non-blank lines repeated until EVENTS lines.
in="$WORK/input.jsonl"
if ! awk -v want="$EVENTS" 'NF { line[++k] = $0 }
    END { if (k == 0) exit 1; for (i = 0; i < want; i++) print line[i % k + 1] }' "$src" >"$in"; then
  echo "SKIP bench-peer: input $src holds no records" >&2
  exit 0
fi
bytes=$(stat -c %s "$in")
echo "== input: $INPUT ($src), $EVENTS events, $((bytes / EVENTS)) B/event average" >&2

# run NAME CMD...: one timed run; appends "name wall cpu" to $WORK/times.
run() {
  local name=$1; shift
  local out="$WORK/$name.out" tf="$WORK/$name.time"
  rm -f "$out"
  if ! IN="$in" OUT="$out" /usr/bin/time -f '%e %U %S' -o "$tf" "$@" >"$out.stdout" 2>"$WORK/$name.stderr"; then
    echo "$name failed:" >&2; tail -20 "$WORK/$name.stderr" >&2; exit 1
  fi
  [[ -s $out ]] || out="$out.stdout"
  local lines; lines=$(wc -l <"$out")
  if [[ $lines -ne $EVENTS ]]; then
    echo "$name wrote $lines events for $EVENTS input lines" >&2; tail -5 "$WORK/$name.stderr" >&2; exit 1
  fi
  read -r wall user sys <"$tf"
  echo "$name $wall $(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.3f", u+s}')" >>"$WORK/times"
  printf '  %-10s wall %6.2fs  cpu %6.2fs  %9.0f events/s  %9.0f events/CPU-s\n' "$name" "$wall" \
    "$(tail -1 "$WORK/times" | cut -d' ' -f3)" \
    "$(awk -v n="$EVENTS" -v w="$wall" 'BEGIN{print (w>0)?n/w:0}')" \
    "$(awk -v n="$EVENTS" -v c="$(tail -1 "$WORK/times" | cut -d' ' -f3)" 'BEGIN{print (c>0)?n/c:0}')" >&2
}

# Like for like: both write the same document for the source's first
# (distinct) records, but for what the README says the peer leaves out.
check="$WORK/check.jsonl"
awk 'NF && n++ < 5000' "$src" >"$check"
rm -f "$WORK/check.benthos.jsonl"
IN="$check" OUT="$WORK/check.benthos.jsonl" "$WORK/benthos" -c "$root/bench/peer/config/k8saudit.yaml" 2>"$WORK/check.stderr"
"$crowsnest" normalize --source k8s_audit "$check" >"$WORK/check.crowsnest.jsonl" 2>>"$WORK/check.stderr" || true
echo "== same output?" >&2
"$WORK/compare" "$WORK/check.crowsnest.jsonl" "$WORK/check.benthos.jsonl" >&2 ||
  echo "   (comparison failed; see $WORK/check.stderr — figures below still measured)" >&2

: >"$WORK/times"
for ((r = 1; r <= RUNS; r++)); do
  echo "== run $r/$RUNS" >&2
  run benthos "$WORK/benthos" -c "$root/bench/peer/config/k8saudit.yaml"
  run crowsnest "$crowsnest" normalize --source k8s_audit "$in"
done

# Medians of events per CPU-second and per wall second, and the ratio.
awk -v n="$EVENTS" -v input="$INPUT" '
  function median(a, k,   i, j, t) {
    for (i = 2; i <= k; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return (k % 2) ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
  }
  { k[$1]++; cpu[$1, k[$1]] = n / $3; wall[$1, k[$1]] = n / $2 }
  END {
    for (name in k) {
      for (i = 1; i <= k[name]; i++) { c[i] = cpu[name, i]; w[i] = wall[name, i] }
      mc[name] = median(c, k[name]); mw[name] = median(w, k[name])
    }
    printf "input %s, %d events, medians of %d runs\n", input, n, k["crowsnest"]
    printf "%-10s %14s %12s\n", "", "events/CPU-s", "events/s"
    printf "%-10s %14.0f %12.0f\n", "benthos", mc["benthos"], mw["benthos"]
    printf "%-10s %14.0f %12.0f\n", "crowsnest", mc["crowsnest"], mw["crowsnest"]
    printf "ratio crowsnest/benthos per CPU-second: %.1fx\n", mc["crowsnest"] / mc["benthos"]
  }' "$WORK/times"
