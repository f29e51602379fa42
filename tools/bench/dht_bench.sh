#!/usr/bin/env bash
# DHT benchmark on loopback: 1 bootstrap node + N daemons (default 50).
# Prints: time until every record is findable, lookup latency over 500 random
# lookups (measured inside the daemon: DHT time only, no CLI start-up), RSS
# of idle daemons, and CPU seconds per daemon-minute while idle.
# Usage: tools/bench/dht_bench.sh [BIN_DIR] [DAEMONS] [IDLE_SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../build/bin}
daemons=${2:-50}
idle_seconds=${3:-60}
lookups=500
source "$here/../../tests/integration/lib.sh" "$bin"

source "$here/bench_lib.sh"

kh_start boot 4700 --bootstrap-only --log-level warn
started=$(ms_now)
for i in $(seq 1 "$daemons"); do
  kh_start "d$i" $((4700 + i)) --bootstrap 127.0.0.1:4700 --log-level warn
done
all_running=$(ms_now)
declare -a ids pids
for i in $(seq 1 "$daemons"); do
  ids[$i]=$(kh_id "d$i")
  pids[$i]=$(cat "$KH_TMP/d$i/pid")
done

# Every record findable: each daemon's record looked up from another daemon
# (d(i+1)), retried until found; bounded by 120 s overall.
pending=$(seq 1 "$daemons")
deadline=$(( $(ms_now) + 120000 ))
while [[ -n "$pending" && $(ms_now) -lt $deadline ]]; do
  still=""
  for j in $pending; do
    observer=$(( j % daemons + 1 ))
    kh "d$observer" --timeout 15 lookup "${ids[$j]}" >/dev/null 2>&1 || still+=" $j"
  done
  pending=$still
done
[[ -z "$pending" ]] || kh_fail "records never findable:$pending"
findable=$(ms_now)

latencies=$(mktemp)
failures=0
for _ in $(seq 1 $lookups); do
  i=$(( RANDOM % daemons + 1 )); j=$(( RANDOM % daemons + 1 ))
  [[ $i -eq $j ]] && j=$(( j % daemons + 1 ))
  if out=$(kh "d$i" lookup "${ids[$j]}" --json 2>/dev/null); then
    sed -n 's/.*"elapsed_ms": *\([0-9.]*\).*/\1/p' <<<"$out" >>"$latencies"
  else
    failures=$((failures + 1))
  fi
done
sorted=$(sort -n "$latencies")

ticks_before=$(cpu_ticks "${pids[@]}")
sleep "$idle_seconds"
ticks_after=$(cpu_ticks "${pids[@]}")
hz=$(getconf CLK_TCK)
cpu_per_daemon_minute=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$hz" -v n="$daemons" -v s="$idle_seconds" \
  'BEGIN { printf "%.3f", (t / hz) / n / (s / 60) }')
rss=$(for pid in "${pids[@]}"; do awk '/VmRSS/ { print $2 }' "/proc/$pid/status"; done | sort -n)

echo
echo "keyhole DHT benchmark: 1 bootstrap + $daemons daemons on loopback, $(nproc) cores"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| daemons started (control socket answering) | $(( all_running - started )) ms |"
echo "| every record findable, from first daemon start | $(( findable - started )) ms |"
echo "| lookup p50 / p95 / max ($lookups random lookups, $failures failed) | $(percentile 50 <<<"$sorted") / $(percentile 95 <<<"$sorted") / $(tail -1 <<<"$sorted") ms |"
echo "| RSS of an idle daemon, median / max | $(( $(percentile 50 <<<"$rss" | cut -d. -f1) / 1024 )) / $(( $(tail -1 <<<"$rss") / 1024 )) MiB |"
echo "| CPU per daemon-minute idle (over ${idle_seconds} s) | ${cpu_per_daemon_minute} s |"
rm -f "$latencies"
