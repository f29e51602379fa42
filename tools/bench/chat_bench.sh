#!/usr/bin/env bash
# Chat benchmark on loopback (real daemons, one bootstrap node; every pair
# stays up, so later pairs join a network of live nodes):
#  - time from `send --wait` on a fresh pair with no session to the delivery
#    ack (lookup, Noise handshake through the DHT inbox, punch, delivery, ack),
#    p50/p95 over RUNS fresh pairs, measured around the CLI call;
#  - throughput of one session with 1 KiB messages (sent through one control
#    connection by `keyhole chat`), until the receiver has stored all of them;
#  - CPU seconds both daemons spent per 10,000 of those messages;
#  - keepalive bytes per hour of an idle session, counted from the frame size.
# Usage: tools/bench/chat_bench.sh [BIN_DIR] [RUNS] [MESSAGES]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../../build/bin}
runs=${2:-20}
messages=${3:-5000}
source "$here/../../tests/integration/lib.sh" "$bin"

source "$here/bench_lib.sh"
cpu_seconds() { awk -v t="$(cpu_ticks "$@")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'; }

kh_start boot 4900 --bootstrap-only --log-level warn

connect_times=$(mktemp)
for run in $(seq 1 "$runs"); do
  kh_start "a$run" $((4900 + 2 * run - 1)) --bootstrap 127.0.0.1:4900 --log-level warn
  kh_start "b$run" $((4900 + 2 * run)) --bootstrap 127.0.0.1:4900 --log-level warn
  target=$(kh_id "b$run")
  kh_wait_for "b$run's record" 30 kh "a$run" lookup "$target"
  start=$(date +%s%N)
  kh "a$run" send "$target" "first message" --wait=30 >/dev/null || kh_fail "run $run: not delivered"
  echo "$(( ($(date +%s%N) - start) / 1000 ))" | awk '{ printf "%.1f\n", $1 / 1000 }' >>"$connect_times"
done
sorted=$(sort -n "$connect_times")

# Throughput on the last pair's live session.
sender="a$runs"; receiver="b$runs"
target=$(kh_id "$receiver")
pids=("$(cat "$KH_TMP/$sender/pid")" "$(cat "$KH_TMP/$receiver/pid")")
payload=$(head -c 1024 /dev/zero | tr '\0' 'x')
cpu_before=$(cpu_seconds "${pids[@]}")
start=$(ms_now)
for i in $(seq 1 "$messages"); do echo "$payload"; done | kh "$sender" chat "$target" >/dev/null 2>&1 &
chat_pid=$!
KH_PIDS+=("$chat_pid")
expected=$((messages + 1))
count=$(inbox_count_after "$receiver" "$expected" 300)
elapsed=$(( $(ms_now) - start ))
cpu_after=$(cpu_seconds "${pids[@]}")
(( count >= expected )) || kh_fail "only $count of $expected messages arrived"
wait "$chat_pid" 2>/dev/null || true

rate=$(awk -v n="$messages" -v ms="$elapsed" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
mbps=$(awk -v n="$messages" -v ms="$elapsed" 'BEGIN { printf "%.2f", n * 1024 / 1048576 / (ms / 1000) }')
cpu_per_10k=$(awk -v a="$cpu_before" -v b="$cpu_after" -v n="$messages" 'BEGIN { printf "%.2f", (b - a) * 10000 / n }')
# A keepalive is a frame: 16-byte header + 1 kind byte + 16-byte tag, plus 28
# bytes of IPv4/UDP header, sent by each side every 15 s when idle.
keepalive_bytes=$(( (16 + 1 + 16 + 28) * 3600 / 15 * 2 ))

echo
echo "keyhole chat benchmark on loopback, $(nproc) cores"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| send --wait on a fresh pair until acked, p50 / p95 / max ($runs runs) | $(percentile 50 <<<"$sorted") / $(percentile 95 <<<"$sorted") / $(tail -1 <<<"$sorted") ms |"
echo "| throughput, one session, 1 KiB messages ($messages) | $rate msg/s, $mbps MiB/s |"
echo "| CPU, both daemons, per 10,000 messages | $cpu_per_10k s |"
echo "| keepalive traffic of an idle session, both directions | $keepalive_bytes bytes/hour (computed) |"
rm -f "$connect_times"
