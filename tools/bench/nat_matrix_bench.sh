#!/usr/bin/env bash
# NAT traversal benchmark: for every pair of the NAT matrix (the lab of
# tests/integration/nat_matrix_test.sh), TRIALS fresh pairs each: connect
# time (first `send --wait` on a fresh pair, until acked), success rate, the
# path reached and the punch probes both daemons sent.
#
# usage: tools/bench/nat_matrix_bench.sh [BIN_DIR] [TRIALS]
# Needs root (exit 77 otherwise). IMPAIRED=1 adds 100 ms delay and 3 % loss
# each way on every NAT link.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-$HERE/../../build/bin}
TRIALS=${2:-10}
# shellcheck source=bench_lib.sh
source "$HERE/bench_lib.sh"
[[ $(id -u) -eq 0 ]] || { echo "SKIP: the NAT lab needs root"; exit 77; }
out=$(mktemp -d /tmp/kh-natbench.XXXXXX)
trap 'rm -rf "$out"' EXIT

TRIALS_PER_PAIR=$TRIALS MESSAGES=1 BENCH_RESULTS="$out/results" \
  bash "$HERE/../../tests/integration/nat_matrix_test.sh" "$BIN" >"$out/run.log" 2>&1
rc=$?
[[ -s $out/results ]] || { tail -30 "$out/run.log"; echo "FAIL: no results (exit $rc)"; exit 1; }

echo "keyhole NAT traversal in the lab, $(nproc) cores, $TRIALS fresh pairs per row${IMPAIRED:+ (impaired: 100 ms + 3 % each way)}"
echo
echo "| pair | success | connect p50 / p95 ms | path | punch probes p50 / max |"
echo "|---|---|---|---|---|"
while read -r label; do
  rows=$(awk -v l="$label" '$1 == l' "$out/results")
  n=$(wc -l <<<"$rows")
  ok=$(awk '$2 == "ok"' <<<"$rows" | wc -l)
  times=$(awk '$2 == "ok" { print $3 }' <<<"$rows" | sort -n)
  probes=$(awk '$2 == "ok" { print $4 }' <<<"$rows" | sort -n)
  path=$(awk '$2 == "ok" { print $5 }' <<<"$rows" | sort | uniq -c | awk '{ printf "%s%s x%d", sep, $2, $1; sep = ", " }')
  if (( ok > 0 )); then
    echo "| $label | $ok/$n | $(percentile 50 <<<"$times") / $(percentile 95 <<<"$times") | $path | $(percentile 50 <<<"$probes" | cut -d. -f1) / $(tail -1 <<<"$probes") |"
  else
    echo "| $label | 0/$n | - | $(awk '{ print $5 }' <<<"$rows" | sort -u | tr '\n' ' ') | - |"
  fi
done < <(awk '{ print $1 }' "$out/results" | awk '!seen[$0]++')
echo
grep -E 'symmetric-symmetric:|udpblocked:' "$out/run.log" | sed 's/^\[[^]]*\] //'
echo "(matrix run exit status $rc; $(grep -c . "$out/results") trials)"
