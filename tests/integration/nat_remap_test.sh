#!/usr/bin/env bash
# NAT lab: path recovery when a NAT mapping changes under a live session.
#
#   boot 203.0.113.10, refl 203.0.113.11   public bootstrap-only nodes (reflectors)
#   rp1 198.51.100.41 portrestricted -- hp1 10.41.1.2 (daemon a)
#   rp2 198.51.100.42 portrestricted -- hp2 10.42.1.2 (daemon b)
#   keepalive_interval_s = KEEPALIVE_S (5)
#
# Phase 1 "flush": both routers forget every mapping (conntrack -F) while
# messages flow both ways. Phase 2 "renumber": rp1's NAT rule is replaced by
# one that maps into ports 20000-29999 and its mappings are flushed, so a's
# public port really changes. Phase 3 "idle renumber": the same with no
# messages in flight, so only keepalives can notice. In each phase:
#  - within two keepalive intervals both sides are `up` on a `direct` path
#    again (in phase 2, b's path to a uses a port in 20000-29999);
#  - every message sent before, during and after arrives exactly once, in order.
#
# usage: bash tests/integration/nat_remap_test.sh BIN_DIR
# Needs root (exit 77 otherwise). LAB_KEEP_LOGS=1 keeps the lab folder.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lab/keyhole_lab.sh
source "$HERE/../lab/keyhole_lab.sh"
khl_use_bin "${1:-}"

START=$SECONDS
NETWORK=$(( (RANDOM << 15 | RANDOM) + 1000 ))
BOOT="203.0.113.10:4222"
REFL="203.0.113.11:4222"
KEEPALIVE_S=5
RECOVERY_MS=$(( 2 * KEEPALIVE_S * 1000 ))
fail() {
  printf 'FAIL: %s\n' "$*"
  echo "---------------------------------------------------------- diagnostics"
  daemon_diagnostics a b
  exit 1
}

lab_init || fail "lab_init"
{
  lab_public_host boot 203.0.113.10 && lab_public_host refl 203.0.113.11 &&
  lab_nat_router rp1 portrestricted 198.51.100.41 10.41.1 && lab_host hp1 rp1 10.41.1.2 &&
  lab_nat_router rp2 portrestricted 198.51.100.42 10.42.1 && lab_host hp2 rp2 10.42.1.2
} >"$LAB_DIR/setup.log" 2>&1 || { cat "$LAB_DIR/setup.log"; fail "could not build the lab"; }
printf 'keepalive_interval_s = %s\n' "$KEEPALIVE_S" >"$LAB_DIR/keyholed.toml"

start_daemon boot boot --port 4222 --bootstrap-only
start_daemon refl refl --port 4222 --bootstrap-only --bootstrap "$BOOT"
start_daemon hp1 a --port 4300 --bootstrap "$BOOT" --bootstrap "$REFL"
start_daemon hp2 b --port 4300 --bootstrap "$BOOT" --bootstrap "$REFL"
ID_A=$(kh a id) || fail "a id"
ID_B=$(kh b id) || fail "b id"
record_published() { [[ $(status_field "$1" record_published) == true ]]; }
wait_until 20 "b's record" record_published b
wait_until 20 "a's record" record_published a
out=$(kh_send_wait a "$ID_B" "a0" 20 2>&1) || fail "first send --wait a->b failed: $out"
peer_field() { peer_json "$1" "$2" | json_str "$3"; }
direct_to() { # NAME PEER_ID IP [PORT_REGEX]
  local entry
  entry=$(peer_json "$1" "$2")
  [[ $(json_str state <<<"$entry") == up && $(json_str path <<<"$entry") == direct ]] || return 1
  [[ $(json_str endpoint <<<"$entry") =~ ^${3//./\\.}:${4:-[0-9]+}$ ]]
}
wait_until 10 "b's session with a" direct_to b "$ID_A" 198.51.100.41
log "session up: a -> $(peer_field a "$ID_B" endpoint), b -> $(peer_field b "$ID_A" endpoint)"

SENT_A=("a0") SENT_B=()
# burst N TAG: N messages each way, queued at once.
burst() {
  local i
  for i in $(seq 1 "$1"); do
    kh a send "$ID_B" "a-$2-$i" >/dev/null || fail "queueing a-$2-$i"
    kh b send "$ID_A" "b-$2-$i" >/dev/null || fail "queueing b-$2-$i"
    SENT_A+=("a-$2-$i"); SENT_B+=("b-$2-$i")
  done
}
# recovered_within PHASE PORT_REGEX: both sides direct again, b reaching a on
# a port matching PORT_REGEX, within RECOVERY_MS of now.
recovered_within() {
  local t0 ms
  t0=$(date +%s%N)
  # A first check too early would see the old, still listed path: give the
  # change a moment to be noticed when the port must change.
  while :; do
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    if direct_to a "$ID_B" 198.51.100.42 && direct_to b "$ID_A" 198.51.100.41 "$2"; then break; fi
    (( ms <= RECOVERY_MS )) || fail "$1: not direct again within $RECOVERY_MS ms" \
      "(a: $(peer_json a "$ID_B"); b: $(peer_json b "$ID_A"))"
    sleep 0.2
  done
  log "$1: direct again after $ms ms (a -> $(peer_field a "$ID_B" endpoint), b -> $(peer_field b "$ID_A" endpoint))"
}
all_arrived() {
  local want_b=$(( ${#SENT_A[@]} )) want_a=$(( ${#SENT_B[@]} ))
  wait_until 30 "b to hold $want_b messages" inbox_count_at_least b "$want_b"
  wait_until 30 "a to hold $want_a messages" inbox_count_at_least a "$want_a"
  [[ $(texts_in b) == "$(printf '%s\n' "${SENT_A[@]}")" ]] || fail "$1: b's inbox is not a's messages exactly once in order"
  [[ $(texts_in a) == "$(printf '%s\n' "${SENT_B[@]}")" ]] || fail "$1: a's inbox is not b's messages exactly once in order"
  log "$1: all ${#SENT_A[@]} + ${#SENT_B[@]} messages arrived exactly once, in order"
}

# renumber_rp1 LOW-HIGH: rp1's NAT now maps UDP into ports LOW-HIGH, and
# forgets every mapping it had: a's public port changes.
renumber_rp1() {
  local out
  out=$(lab_exec rp1 nft -f - 2>&1 <<EOF
flush chain ip kh_nat postrouting
add rule ip kh_nat postrouting oifname "${LAB_PFX}wan" meta l4proto udp masquerade to :$1
add rule ip kh_nat postrouting oifname "${LAB_PFX}wan" masquerade
EOF
) || fail "could not renumber rp1's NAT to $1: $out"
  lab_flush_conntrack rp1
}

# ------------------------------------------------------------------ phase 1: flush
burst 20 before1
lab_flush_conntrack rp1; lab_flush_conntrack rp2
burst 20 during1
recovered_within "flush" '[0-9]+'
burst 20 after1
all_arrived "flush"

# ------------------------------------------------------------------ phase 2: renumber
burst 20 before2
renumber_rp1 20000-29999
log "rp1 now maps into ports 20000-29999; mappings flushed"
burst 20 during2
recovered_within "renumber" '2[0-9]{4}'
burst 20 after2
all_arrived "renumber"

# ------------------------------------------------------------------ phase 3: renumber an idle session
# No messages flow: only the keepalives can notice (the delivery layer has
# nothing unacknowledged to complain about).
sleep 1
renumber_rp1 30000-39999
log "idle session; rp1 now maps into ports 30000-39999; mappings flushed"
recovered_within "idle renumber" '3[0-9]{4}'
burst 5 after3
all_arrived "idle renumber"
lost=$(status_field a paths_lost); lost_b=$(status_field b paths_lost)
(( lost + lost_b >= 1 )) || fail "idle renumber: no side counted a lost path (paths_lost a=$lost b=$lost_b)"
log "paths lost (detected by unanswered keepalives): a $lost, b $lost_b"

for n in b a refl boot; do stop_daemon "$n" || fail "$n exited with status $? on SIGTERM"; done
echo "PASS: NAT mapping changes under a live session: direct again within $RECOVERY_MS ms (2 keepalive intervals)" \
  "after a conntrack flush and after a renumbered NAT (busy and idle), no message lost ($((SECONDS - START)) s)"
