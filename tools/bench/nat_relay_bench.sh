#!/usr/bin/env bash
# Relay benchmark in the NAT lab (the lab of tests/integration/nat_relay_test.sh):
# symmetric<->symmetric pairs, which only connect through a relay. TRIALS
# fresh pairs (each host keeps its identity):
#   warm: both daemons hold relay allocations and published their records;
#         time of the first `send --wait` until it is acknowledged
#   cold: from starting both daemons to the first message acknowledged
#
# usage: tools/bench/nat_relay_bench.sh [BIN_DIR] [TRIALS]
# Needs root (exit 77 otherwise).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-$HERE/../../build/bin}
TRIALS=${2:-10}
# shellcheck source=bench_lib.sh
source "$HERE/bench_lib.sh"
[[ $(id -u) -eq 0 ]] || { echo "SKIP: the NAT lab needs root"; exit 77; }
out=$(mktemp -d /tmp/kh-relaybench.XXXXXX)
trap 'rm -rf "$out"' EXIT

RELAY_TRIALS=$TRIALS BENCH_RESULTS="$out/results" \
  bash "$HERE/../../tests/integration/nat_relay_test.sh" "$BIN" >"$out/run.log" 2>&1
rc=$?
[[ -s $out/results ]] || { tail -30 "$out/run.log"; echo "FAIL: no results (exit $rc)"; exit 1; }

echo "keyhole through a relay in the lab (symmetric <-> symmetric), $(nproc) cores, $TRIALS fresh pairs"
echo
echo "| measure | success | p50 ms | p95 ms | max ms |"
echo "|---|---|---|---|---|"
for kind in warm cold; do
  n=$(awk -v k=$kind '$1 == k' "$out/results" | wc -l)
  times=$(awk -v k=$kind '$1 == k && $2 != "fail" { print $2 }' "$out/results" | sort -n)
  ok=$(grep -c . <<<"$times" || true)
  label="first message, both up (warm)"
  [[ $kind == cold ]] && label="start of both daemons -> first message acked (cold)"
  echo "| $label | $ok/$n | $(percentile 50 <<<"$times") | $(percentile 95 <<<"$times") | $(tail -1 <<<"$times") |"
done
echo "(lab run exit status $rc)"
