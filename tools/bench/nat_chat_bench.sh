#!/usr/bin/env bash
# Chat benchmark in the NAT lab: two hosts behind two port-restricted NATs.
#
#   boot  203.0.113.10   keyholed --bootstrap-only, port 4222 (public host)
#   ra    203.0.113.21   portrestricted router, LAN 10.1.1.0/24 -- ha 10.1.1.2
#   rb    203.0.113.22   portrestricted router, LAN 10.1.2.0/24 -- hb 10.1.2.2
#   ha, hb: chat keyholed bound to 0.0.0.0:4300, --bootstrap boot
#
# Measures (same table as tools/bench/chat_bench.sh):
#  - send --wait on a fresh pair until acked, p50/p95/max over RUNS fresh
#    pairs: each run stops the previous pair (by PID), forgets both routers'
#    NAT mappings, starts new daemons on ha and hb with fresh state dirs,
#    waits until both know their public endpoint and B's record is findable
#    from A, then times `keyhole send ID TEXT --wait=30` around the CLI;
#  - throughput of the last pair's session with 1 KiB messages sent by
#    `keyhole chat ID` from a pipe, until B's inbox holds them all;
#  - CPU seconds of both chat daemons per 10,000 of those messages;
#  - keepalive bytes per hour of the idle session, MEASURED with nftables
#    counters on ra (keyhole frames of the ha <-> hb flow, both directions,
#    IP bytes, over IDLE_S seconds, conntrack untouched), scaled to an hour,
#    next to the computed figure.
# Punch probes per pair are counted from status --json (punch_probes_sent)
# when the build exposes it; otherwise that row is left out.
#
# usage: tools/bench/nat_chat_bench.sh [BIN_DIR] [RUNS] [MESSAGES] [IDLE_S]
# Needs root (exit 77 otherwise). LAB_KEEP_LOGS=1 keeps the lab folder.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../tests/lab/lab.sh
source "$HERE/../../tests/lab/lab.sh"
lab_require_root

BIN=${1:-$HERE/../../build/bin}
RUNS=${2:-20}
MESSAGES=${3:-2000}
IDLE_S=${4:-60}
[[ -d $BIN ]] || { echo "FAIL: BIN_DIR '$BIN' not found"; exit 1; }
BIN=$(cd "$BIN" && pwd)
for tool in keyholed keyhole; do
  [[ -x $BIN/$tool ]] || { echo "FAIL: $BIN/$tool not found"; exit 1; }
done

START=$SECONDS
KEEPALIVE_S=15

log() { printf '[+%3ds] %s\n' $((SECONDS - START)) "$*" >&2; }
fail() {
  printf 'FAIL: %s\n' "$*"
  local f
  for f in "$LAB_DIR"/*.log; do
    [[ -f $f ]] || continue
    echo "--- $(basename "$f"), last 10 lines:"; tail -n 10 "$f"
  done
  exit 1
}

# kh, json_str, wait_until, start_daemon, stop_daemon: tests/lab/keyhole_lab.sh
KHL_LOG_LEVEL=warn
# shellcheck source=../../tests/lab/keyhole_lab.sh
source "$HERE/../../tests/lab/keyhole_lab.sh"
public_endpoint_is() { [[ $(kh "$1" status --json | json_str public_endpoint) == "$2" ]]; }
public_endpoint_set() { [[ -n $(kh "$1" status --json | json_str public_endpoint) ]]; }


# shellcheck source=bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

# ------------------------------------------------------------------ lab
khl_two_nat_lab  # boot, ra/ha, rb/hb and their addresses (keyhole_lab.sh)
printf 'keepalive_interval_s = %s\n' "$KEEPALIVE_S" >"$LAB_DIR/keyholed.toml"

# Keyhole frames (magic 0x6b680120 after the UDP header) of the ha <-> hb flow,
# counted on ra where they cross its public interface (forward hook, so the
# bytes are whole IP packets). Installed now, read as deltas later.
wan="${LAB_PFX}wan"; lan="${LAB_PFX}lan"
lab_exec ra nft -f - <<EOF || fail "could not install the counters on ra"
table ip kh_bench {
  counter flow_out {}
  counter flow_in {}
  chain count_forward {
    type filter hook forward priority -10; policy accept;
    iifname "$lan" oifname "$wan" ip daddr $RB_PUB meta l4proto udp @th,64,32 0x6b680120 counter name flow_out
    iifname "$wan" oifname "$lan" ip saddr $RB_PUB meta l4proto udp @th,64,32 0x6b680120 counter name flow_in
  }
}
EOF
ctr() { # COUNTER FIELD(packets|bytes)
  lab_exec ra nft list counter ip kh_bench "$1" 2>/dev/null |
    awk -v f="$2" '{ for (i = 1; i < NF; i++) if ($i == f) print $(i + 1) }'
}

start_daemon boot boot --port "$BOOT_PORT" --bootstrap-only
log "lab $LAB_ID up, bootstrap running; $RUNS fresh pairs"

# ------------------------------------------------------------------ 1. fresh pairs
times_file="$LAB_DIR/connect_times"
: >"$times_file"
probes_file="$LAB_DIR/punch_probes"
: >"$probes_file"
for run in $(seq 1 "$RUNS"); do
  if (( run > 1 )); then
    stop_daemon "ha$((run - 1))"; stop_daemon "hb$((run - 1))"
  fi
  # A fresh pair gets fresh NAT mappings too: the previous pair's conntrack
  # entries (ha:4300 <-> rb:4300) would otherwise pre-open the punch.
  lab_flush_conntrack ra; lab_flush_conntrack rb
  start_daemon ha "ha$run" --port "$CHAT_PORT" --bootstrap "$BOOT_IP:$BOOT_PORT"
  start_daemon hb "hb$run" --port "$CHAT_PORT" --bootstrap "$BOOT_IP:$BOOT_PORT"
  target=$(kh "hb$run" id) || fail "run $run: hb id"
  wait_until 30 "run $run: ha's public endpoint" public_endpoint_is "ha$run" "$RA_PUB:$CHAT_PORT"
  wait_until 30 "run $run: hb's public endpoint" public_endpoint_is "hb$run" "$RB_PUB:$CHAT_PORT"
  wait_until 30 "run $run: hb's record from ha" kh "ha$run" lookup "$target"
  t0=$(date +%s%N)
  out=$(timeout 40 "$BIN/keyhole" --socket "$LAB_DIR/ha$run/control.sock" send "$target" "first message" --wait=30 2>&1) ||
    fail "run $run: send --wait=30 failed: $out"
  ms=$(awk -v us="$(( ($(date +%s%N) - t0) / 1000 ))" 'BEGIN { printf "%.1f", us / 1000 }')
  echo "$ms" >>"$times_file"
  # Punch probes both fresh daemons sent (cumulative per daemon, so this
  # run's), if this build's status --json exposes them.
  pa=$(kh "ha$run" status --json | json_raw punch_probes_sent)
  pb=$(kh "hb$run" status --json | json_raw punch_probes_sent)
  if [[ $pa =~ ^[0-9]+$ && $pb =~ ^[0-9]+$ ]]; then echo "$((pa + pb))" >>"$probes_file"; fi
  log "run $run: acked after $ms ms (punch probes a/b: ${pa:-n/a}/${pb:-n/a})"
done
sorted=$(sort -n "$times_file")
probes_sorted=$(sort -n "$probes_file")

# ------------------------------------------------------------------ 2+3. throughput and CPU
sender="ha$RUNS"; receiver="hb$RUNS"
target=$(kh "$receiver" id) || fail "receiver id"
pids=("${DPID[$sender]}" "${DPID[$receiver]}")
for p in "${pids[@]}"; do
  [[ $(cat "/proc/$p/comm" 2>/dev/null) == keyholed ]] || fail "pid $p is not a keyholed ($(cat "/proc/$p/comm" 2>/dev/null))"
done
payload=$(head -c 1024 /dev/zero | tr '\0' 'x')
expected=$(( MESSAGES + 1 ))  # + the "first message" of the connect run
log "throughput: $MESSAGES messages of 1 KiB via keyhole chat"
cpu_before=$(cpu_ticks "${pids[@]}")
start=$(ms_now)
for _ in $(seq 1 "$MESSAGES"); do echo "$payload"; done |
  timeout 200 "$BIN/keyhole" --socket "$LAB_DIR/$sender/control.sock" chat "$target" >/dev/null 2>&1 &
chat_pid=$!
LAB_PIDS+=("$chat_pid")
count=$(inbox_count_after "$receiver" "$expected" 180)
elapsed=$(( $(ms_now) - start ))
cpu_after=$(cpu_ticks "${pids[@]}")
(( count >= expected )) || fail "only $count of $expected messages arrived in B's inbox"
lab_wait_pid "$chat_pid" 10 >/dev/null 2>&1 || true
hz=$(getconf CLK_TCK)
rate=$(awk -v n="$MESSAGES" -v ms="$elapsed" 'BEGIN { printf "%.0f", n / (ms / 1000) }')
mbps=$(awk -v n="$MESSAGES" -v ms="$elapsed" 'BEGIN { printf "%.2f", n * 1024 / 1048576 / (ms / 1000) }')
cpu_per_10k=$(awk -v a="$cpu_before" -v b="$cpu_after" -v n="$MESSAGES" -v hz="$hz" \
  'BEGIN { printf "%.2f", (b - a) / hz * 10000 / n }')
log "throughput: $count messages in B's inbox after $elapsed ms"

# ------------------------------------------------------------------ 4. idle keepalives
sleep 2  # let the last acks drain before the idle window
b0=$(ctr flow_out bytes); b1=$(ctr flow_in bytes)
p0=$(ctr flow_out packets); p1=$(ctr flow_in packets)
log "idle for ${IDLE_S}s (counting keyhole frames of the ha <-> hb flow on ra)"
sleep "$IDLE_S"
out_b=$(( $(ctr flow_out bytes) - b0 )); in_b=$(( $(ctr flow_in bytes) - b1 ))
out_p=$(( $(ctr flow_out packets) - p0 )); in_p=$(( $(ctr flow_in packets) - p1 ))
idle_bytes=$(( out_b + in_b ))
per_hour=$(( idle_bytes * 3600 / IDLE_S ))
log "idle: ra saw $out_p frames / $out_b bytes out, $in_p frames / $in_b bytes in"
st=$(kh "$sender" peers --json 2>/dev/null | flat)
[[ $st == *'"up"'* ]] || log "note: $sender's session is not up after the idle window: $st"
# A keepalive: 16-byte header + 1 kind byte + 16-byte tag + 28 bytes IPv4/UDP,
# each side every 15 s.
computed=$(( (16 + 1 + 16 + 28) * 3600 / KEEPALIVE_S * 2 ))
fmt() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

stop_daemon "$sender"; stop_daemon "$receiver"; stop_daemon boot

echo
echo "keyhole chat benchmark in the NAT lab (two port-restricted NATs), $(nproc) cores"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| send --wait on a fresh pair until acked, p50 / p95 / max ($RUNS runs) | $(percentile 50 <<<"$sorted") / $(percentile 95 <<<"$sorted") / $(tail -1 <<<"$sorted") ms |"
if [[ $(wc -l <"$probes_file") -eq $RUNS ]]; then
  echo "| punch probes per fresh pair (both sides, after the ack), p50 / p95 / max | $(percentile 50 <<<"$probes_sorted" | cut -d. -f1) / $(percentile 95 <<<"$probes_sorted" | cut -d. -f1) / $(tail -1 <<<"$probes_sorted") |"
fi
echo "| throughput, one session, 1 KiB messages ($MESSAGES) | $rate msg/s, $mbps MiB/s |"
echo "| CPU, both daemons, per 10,000 messages | $cpu_per_10k s |"
echo "| keepalive traffic of an idle session, both directions | $(fmt "$per_hour") bytes/hour (measured: $idle_bytes bytes, $((out_p + in_p)) frames in ${IDLE_S} s on ra); computed $(fmt "$computed") bytes/hour |"
echo
[[ $(wc -l <"$probes_file") -eq $RUNS ]] ||
  echo "(punch probes: not exposed by this build's status --json, not counted)"
echo "(total $((SECONDS - START)) s)"
