#!/usr/bin/env bash
# Relay abuse (issue #5, docs/relay.md "Limits"): a client that sends far more
# than its allocation's limit through a relay is refused and held to that
# limit, while another client's conversation through the same relay keeps
# its throughput within 20 % of what it had with the relay unloaded.
#
#   relay   203.0.113.5    keyholed --relay alone (no DHT needed to relay),
#                          UDP 4224, default limits, public_address set
#   gown    203.0.113.21   good conversation, allocation holder: echoes every
#                          frame back (relay_load echo)
#   gsend   203.0.113.22   good conversation, sender: GOOD_RATE frames/s of
#                          GOOD_SIZE bytes to gown's allocation, counts the
#                          echoes (relay_load send)
#   abuser  198.51.100.66  its own allocation, flooded from 4 source ports at
#                          FLOOD_RATE frames/s of 1 KiB (relay_load flood)
#
# All public hosts on the lab's internet bridge, at different addresses, so
# no per-source limit is shared between the good clients and the abuser.
# Steps: the good conversation for GOOD_SECONDS unloaded; then the flood
# starts, and after 1 s (the abuser's one-second burst spent) the good
# conversation runs again for GOOD_SECONDS while the flood goes on.
# Asserts:
#  (a) the abuser got relay_error rate_limited answers, the relay counted
#      refusals for most of the flood, and what reached the abuser's holder in
#      steady state is at most what its allocation's limits allow (+10 %);
#  (b) the good conversation was never refused, lost at most 5 % unloaded,
#      and loaded delivered >= 80 % of its unloaded round trips per second.
#
# usage: bash tests/integration/relay_abuse_test.sh BIN_DIR
# Needs root (exit 77 otherwise) and BIN_DIR/relay_load. LAB_KEEP_LOGS=1
# keeps the lab folder.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KHL_LOG_LEVEL=${KHL_LOG_LEVEL:-info}
# shellcheck source=../lab/keyhole_lab.sh
source "$HERE/../lab/keyhole_lab.sh"
khl_use_bin "${1:-}"
LOAD=$BIN/relay_load
[[ -x $LOAD ]] || { echo "FAIL: $LOAD not found (build target relay_load)"; exit 1; }

GOOD_RATE=100      # round trips offered per second: 2 packets, 2 x ~534 bytes each
GOOD_SIZE=512
GOOD_SECONDS=5
FLOOD_RATE=20000   # packets per second, bounded; 4 source ports
FLOOD_SIZE=1024
FLOOD_SECONDS=$(( GOOD_SECONDS + 3 ))
MIN_LOADED_PCT=80

START=$SECONDS
# shellcheck disable=SC2034  # read by start_daemon (keyhole_lab.sh)
NETWORK=$(( (RANDOM << 15 | RANDOM) + 1000 ))
RELAY_IP=203.0.113.5 RELAY_PORT=4224
RELAY="$RELAY_IP:$RELAY_PORT"
fail() {
  printf 'FAIL: %s\n' "$*"
  echo "---------------------------------------------------------- diagnostics"
  [[ -S ${LAB_DIR:-/nonexistent}/relay/control.sock ]] && { echo "--- relay status:"; kh relay status --json 2>&1 | flat; echo; }
  local f
  for f in relay.log gown.log abuser.log; do
    [[ -f ${LAB_DIR:-/nonexistent}/$f ]] || continue
    echo "--- $f (last lines):"; tail -n 15 "$LAB_DIR/$f"
  done
  echo "(set LAB_KEEP_LOGS=1 to keep the whole lab folder)"
  exit 1
}
# field KEY LINE: the value of KEY=VALUE in a relay_load summary line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2" | head -1; }
# check EXPR: awk arithmetic (floats) as a condition.
check() { awk "BEGIN { exit !($1) }"; }
# cpu_ticks PID: user + system CPU time of PID so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# ------------------------------------------------------------------ lab
lab_init || fail "lab_init"
{
  lab_public_host relay "$RELAY_IP" &&
  lab_public_host gown 203.0.113.21 &&
  lab_public_host gsend 203.0.113.22 &&
  lab_public_host abuser 198.51.100.66
} >"$LAB_DIR/setup.log" 2>&1 || { cat "$LAB_DIR/setup.log"; fail "could not build the lab"; }
log "lab $LAB_ID built"

# Default limits; only the address the relay would announce is set.
cat >"$LAB_DIR/keyholed.toml" <<EOF
[relay]
enabled = true
public_address = "$RELAY_IP"
EOF
start_daemon relay relay --port "$RELAY_PORT"
RELAY_ID=$(kh relay id) || fail "relay id"
[[ $(status_field relay relay_allocations) == 0 ]] || fail "relay status shows no relay counters (not in relay mode?)"
log "relay $RELAY_ID at $RELAY"

# ------------------------------------------------------------------ good conversation's holder
lab_spawn gown gown.log "$LOAD" echo --relay "$RELAY" --relay-id "$RELAY_ID" --seconds $(( 4 * GOOD_SECONDS + 20 ))
GOWN_PID=$LAB_LAST_PID
lab_wait_log gown.log '^owner=' 10 || fail "the good holder got no allocation"
GRANT=$(grep -m1 '^owner=' "$LAB_DIR/gown.log")
OWNER=$(field owner "$GRANT")
LIMIT_PPS=$(field limit_packets_per_s "$GRANT")
LIMIT_BPS=$(field limit_bytes_per_s "$GRANT")
log "good holder allocated: $GRANT"
# The good conversation must be well inside one allocation's limits (a round
# trip is a relay_send of 36 + size bytes and a relay_reply of 8 + size).
check "2 * $GOOD_RATE <= 0.6 * $LIMIT_PPS && $GOOD_RATE * (44 + 2 * $GOOD_SIZE) <= 0.6 * $LIMIT_BPS" ||
  fail "test set-up: $GOOD_RATE round trips/s of $GOOD_SIZE bytes is not well below the limits ($LIMIT_PPS packets/s, $LIMIT_BPS bytes/s)"

# good_run LABEL: the good conversation once; prints its summary line.
good_run() {
  timeout $(( GOOD_SECONDS + 20 )) ip netns exec "$(lab_ns gsend)" "$LOAD" send --relay "$RELAY" --target "$OWNER" \
    --rate "$GOOD_RATE" --size "$GOOD_SIZE" --seconds "$GOOD_SECONDS" 2>>"$LAB_DIR/gsend.log"
}

# ------------------------------------------------------------------ unloaded
UNLOADED=$(good_run) || fail "good conversation (unloaded) did not run: $UNLOADED"
log "unloaded: $UNLOADED"
U_RATE=$(field delivered_per_s "$UNLOADED")
[[ -n $U_RATE ]] || fail "no delivered_per_s in '$UNLOADED'"
check "$(field loss_pct "$UNLOADED") <= 5" || fail "good conversation lost more than 5 % with the relay unloaded: $UNLOADED"
[[ $(field errors_total "$UNLOADED") == 0 ]] || fail "good conversation refused with the relay unloaded: $UNLOADED"

# ------------------------------------------------------------------ flood, and the good conversation beside it
REFUSED_BEFORE=$(status_field relay relay_refusals)
CPU_BEFORE=$(cpu_ticks "${DPID[relay]}") FLOOD_T0=$(date +%s%N)
FORWARDED_BEFORE=$(status_field relay relay_forwarded_frames)
lab_spawn abuser abuser.log "$LOAD" flood --relay "$RELAY" --relay-id "$RELAY_ID" \
  --rate "$FLOOD_RATE" --size "$FLOOD_SIZE" --sockets 4 --seconds "$FLOOD_SECONDS"
FLOOD_PID=$LAB_LAST_PID
lab_wait_log abuser.log '^relay_load: flood: sending' 10 || fail "the abuser got no allocation"
sleep 1
LOADED=$(good_run) || fail "good conversation (loaded) did not run: $LOADED"
log "loaded:   $LOADED"
lab_wait_pid "$FLOOD_PID" $(( FLOOD_SECONDS + 15 )) || fail "the flood did not end by itself"
# The relay's CPU share while the flood ran (its own process: UDP, DHT, relay).
RELAY_CPU_PCT=$(awk -v t="$(( $(cpu_ticks "${DPID[relay]}") - CPU_BEFORE ))" -v hz="$(getconf CLK_TCK)" \
  -v ns="$(( $(date +%s%N) - FLOOD_T0 ))" 'BEGIN { printf "%.0f", 100 * t / hz / (ns / 1e9) }')
FLOOD=$(grep -m1 '^mode=flood' "$LAB_DIR/abuser.log")
[[ -n $FLOOD ]] || fail "no flood summary in abuser.log"
log "flood:    $FLOOD"
REFUSED=$(( $(status_field relay relay_refusals) - REFUSED_BEFORE ))
FORWARDED=$(( $(status_field relay relay_forwarded_frames) - FORWARDED_BEFORE ))
log "relay during the flood: $REFUSED refusals, $FORWARDED frames forwarded, ${RELAY_CPU_PCT} % of a CPU"

lab_stop "$GOWN_PID" TERM || true
ECHO_SUMMARY=$(grep -m1 '^mode=echo' "$LAB_DIR/gown.log")
log "good holder: $ECHO_SUMMARY"

# ------------------------------------------------------------------ (a) the abuser was limited
F_SENT=$(field sent "$FLOOD")
F_RL=$(field errors_rate_limited "$FLOOD")
F_STEADY=$(field owner_delivered_steady_per_s "$FLOOD")
F_DELIVERED=$(field owner_delivered "$FLOOD")
F_ALLOWED=$(field allowed_per_s "$FLOOD")
[[ -n $F_SENT && -n $F_RL && -n $F_STEADY && -n $F_ALLOWED ]] || fail "flood summary incomplete: $FLOOD"
check "$F_SENT >= 0.8 * $FLOOD_RATE * $FLOOD_SECONDS" || fail "the flood sent only $F_SENT frames (offered $FLOOD_RATE/s for $FLOOD_SECONDS s)"
check "$F_RL > 0" || fail "the abuser got no relay_error rate_limited: $FLOOD"
check "$REFUSED >= 0.5 * ($F_SENT - $F_DELIVERED)" ||
  fail "the relay counted $REFUSED refusals for $F_SENT flood frames of which $F_DELIVERED were delivered"
check "$F_STEADY <= 1.1 * $F_ALLOWED" ||
  fail "the abuser's holder received $F_STEADY frames/s in steady state, over its limit $F_ALLOWED/s"
# Whole run: at most the limit plus the one-second burst.
check "$F_DELIVERED <= 1.1 * $F_ALLOWED * ($FLOOD_SECONDS + 1)" ||
  fail "the abuser's holder received $F_DELIVERED frames in $FLOOD_SECONDS s, over limit + burst ($F_ALLOWED/s)"

# ------------------------------------------------------------------ (b) the good conversation kept its throughput
L_RATE=$(field delivered_per_s "$LOADED")
[[ -n $L_RATE ]] || fail "no delivered_per_s in '$LOADED'"
[[ $(field errors_total "$LOADED") == 0 ]] || fail "good conversation refused while the abuser flooded: $LOADED"
check "$L_RATE * 100 >= $MIN_LOADED_PCT * $U_RATE" ||
  fail "good conversation: $L_RATE round trips/s loaded against $U_RATE unloaded (want >= $MIN_LOADED_PCT %)"

PCT=$(awk "BEGIN { printf \"%.1f\", 100 * $L_RATE / $U_RATE }")
stop_daemon relay || fail "relay exited with status $? on SIGTERM"
echo "PASS: relay abuse: abuser offered $(field sent_per_s "$FLOOD") frames/s, got $F_RL rate_limited answers" \
  "($REFUSED refusals at the relay), its holder received $F_STEADY/s in steady state (limit $F_ALLOWED/s);" \
  "good conversation $U_RATE round trips/s unloaded, $L_RATE loaded ($PCT %)," \
  "rtt p99 $(field rtt_p99_ms "$UNLOADED") ms -> $(field rtt_p99_ms "$LOADED") ms; relay at ${RELAY_CPU_PCT} % CPU" \
  "($((SECONDS - START)) s)"
