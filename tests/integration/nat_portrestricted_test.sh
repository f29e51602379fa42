#!/usr/bin/env bash
# NAT lab: chat between two hosts behind two different port-restricted NATs.
#
#   boot  203.0.113.10   keyholed --bootstrap-only, port 4222 (public host)
#   ra    203.0.113.21   portrestricted router, LAN 10.1.1.0/24 -- ha 10.1.1.2
#   rb    203.0.113.22   portrestricted router, LAN 10.1.2.0/24 -- hb 10.1.2.2
#   ha, hb: chat keyholed bound to 0.0.0.0:4300, --bootstrap boot
#
# Checks:
#  1. both chat daemons learn their public endpoint (router IP:4300) by
#     address reflection through their NAT;
#  2. send --wait a->b succeeds, both sides show the session up on a direct
#     path whose endpoint is the OTHER router's public address (never a 10.x
#     LAN address: the two LANs cannot reach each other); 20 messages each
#     way arrive exactly once and in order;
#  3. keepalives hold the NAT mappings open: with both routers' conntrack UDP
#     timeouts at 20 s and the keepalive interval at 15 s, after 60 s idle a
#     send --wait a->b is delivered within 5 s, with no new connect request or
#     handshake on either side, the session never went down and the path never
#     moved; nftables counters in the routers show the keepalives crossing
#     both NATs and no keyhole frame turned away as unsolicited;
#  4. every daemon exits cleanly on SIGTERM.
#
# usage: bash tests/integration/nat_portrestricted_test.sh BIN_DIR
# BIN_DIR holds keyholed and keyhole. Needs root (exit 77 otherwise).
# LAB_KEEP_LOGS=1 keeps the daemon logs (see tests/lab/lab.sh).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lab/keyhole_lab.sh
source "$HERE/../lab/keyhole_lab.sh"
khl_use_bin "${1:-}"

START=$SECONDS
KEEPALIVE_S=15     # the daemon's default, written into its config to be explicit
CT_TIMEOUT_S=20    # conntrack UDP timeouts on both routers for the idle phase (3 expiries in IDLE_S)
IDLE_S=60
KEEPALIVE_UDP_LEN=49  # UDP length of a keepalive (and its answer): 8 + 16 (header) + 1 + 8 (stamp) + 16 (tag)
MIN_KEEPALIVES=$(( IDLE_S / KEEPALIVE_S - 2 ))


# ------------------------------------------------------------------ helpers
# kh, kh_send_wait, json_str, peer_json, texts_in, count_log, wait_until,
# start_daemon ...: tests/lab/keyhole_lab.sh
diagnostics() {
  local n r
  echo "---------------------------------------------------------- diagnostics"
  for n in ha hb; do
    [[ -S $LAB_DIR/$n/control.sock ]] || continue
    echo "--- $n status:"; kh "$n" status --json 2>&1 | flat; echo
    echo "--- $n peers:"; kh "$n" peers --json 2>&1 | flat; echo
  done
  for r in ra rb; do
    echo "--- $r conntrack (udp):"; lab_conntrack_list "$r"
    echo "--- $r keyhole frame counters: $(obs_stats "$r" 2>/dev/null)"
    echo "--- $r unsolicited drops: $(lab_exec "$r" nft list chain ip kh_nat input 2>/dev/null | grep -o 'packets [0-9]*' | tr '\n' ' ')"
  done
  for n in boot ha hb; do
    [[ -f $LAB_DIR/$n.log ]] || continue
    echo "--- $n.log: keyhole lines (connect/handshake/session/path/public/failed):"
    grep -E 'connect|handshake|session with|path|public endpoint|failed|warn|error' "$LAB_DIR/$n.log" |
      grep -v 'control: client' | tail -n 40
    echo "--- $n.log: last 15 lines:"
    tail -n 15 "$LAB_DIR/$n.log"
  done
  echo "(set LAB_KEEP_LOGS=1 to keep the whole lab folder)"
}
fail() {
  printf 'FAIL: %s\n' "$*"
  diagnostics
  exit 1
}

# Observation of keyhole frames crossing a router (nftables counters, before
# the NAT's own filter so they also count what it drops): out = LAN -> WAN,
# in = WAN -> LAN (reply direction, admitted by conntrack), unsolicited = a
# frame from the WAN that matched no conntrack entry (it ends in the router's
# input chain, where the lab drops it). "other" = non-keyhole UDP (OpenDHT)
# between the host and PEER_PUB on the same ports.
obs_install() { # ROUTER PEER_PUB
  local r=$1 peer=$2 wan="${LAB_PFX}wan" lan="${LAB_PFX}lan"
  local frame='meta l4proto udp @th,64,32 0x6b680120'
  lab_exec "$r" nft -f - <<EOF || fail "could not install the frame counters on $r"
table ip kh_obs {
  counter out_frames {}
  counter out_keepalives {}
  counter out_other {}
  counter in_frames {}
  counter in_keepalives {}
  counter in_other {}
  counter unsolicited_frames {}
  chain count_forward {
    type filter hook forward priority -10; policy accept;
    iifname "$lan" oifname "$wan" $frame counter name out_frames
    iifname "$lan" oifname "$wan" $frame udp length $KEEPALIVE_UDP_LEN counter name out_keepalives
    iifname "$lan" oifname "$wan" ip daddr $peer udp dport $CHAT_PORT @th,64,24 != 0x6b6801 counter name out_other
    iifname "$wan" oifname "$lan" $frame counter name in_frames
    iifname "$wan" oifname "$lan" $frame udp length $KEEPALIVE_UDP_LEN counter name in_keepalives
    iifname "$wan" oifname "$lan" ip saddr $peer udp sport $CHAT_PORT @th,64,24 != 0x6b6801 counter name in_other
  }
  chain count_input {
    type filter hook input priority -10; policy accept;
    iifname "$wan" $frame counter name unsolicited_frames
  }
}
EOF
}
# isolate_flow HOST PEER_PUB: from now on HOST sends nothing to PEER_PUB but
# keyhole session frames. OpenDHT and keyhole's address reflection also use
# the host's port 4300, so their packets between the two hosts would refresh
# the very NAT mappings the keepalives are meant to hold open. Dropped in the
# host's own output hook, so the routers' conntrack never sees them.
isolate_flow() {
  lab_exec "$1" nft -f - <<EOF || fail "could not isolate $1's flow to $2"
table ip kh_isolate {
  counter dropped {}
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr $2 meta l4proto udp @th,64,32 != 0x6b680120 counter name dropped drop
  }
}
EOF
}
isolated_dropped() { # HOST: packets isolate_flow dropped
  lab_exec "$1" nft list counter ip kh_isolate dropped 2>/dev/null |
    awk '/packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'
}
obs_get() { # ROUTER COUNTER: its packet count
  lab_exec "$1" nft list counter ip kh_obs "$2" 2>/dev/null |
    awk '/packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'
}
obs_stats() { # ROUTER: all counters on one line
  local c counts=()
  for c in out_frames out_keepalives out_other in_frames in_keepalives in_other unsolicited_frames; do
    counts+=("$c=$(obs_get "$1" "$c")")
  done
  echo "${counts[*]}"
}

# ------------------------------------------------------------------ 1. lab
khl_two_nat_lab  # boot, ra/ha, rb/hb and their addresses (keyhole_lab.sh)
obs_install ra "$RB_PUB"
obs_install rb "$RA_PUB"
lab_info

cat >"$LAB_DIR/keyholed.toml" <<EOF
# nat_portrestricted_test: every daemon of this lab
keepalive_interval_s = $KEEPALIVE_S
EOF

start_daemon boot boot --port "$BOOT_PORT" --bootstrap-only
start_daemon ha ha --port "$CHAT_PORT" --bootstrap "$BOOT_IP:$BOOT_PORT"
start_daemon hb hb --port "$CHAT_PORT" --bootstrap "$BOOT_IP:$BOOT_PORT"
ID_A=$(kh ha id) || fail "ha id"
ID_B=$(kh hb id) || fail "hb id"
declare -A PEER_OF=([ha]=$ID_B [hb]=$ID_A)
log "daemons up: a=$ID_A b=$ID_B (network $NETWORK)"

# public_endpoint_is NAME ENDPOINT: reflection through NAME's NAT gave ENDPOINT.
public_endpoint_is() { [[ $(kh "$1" status --json | json_str public_endpoint) == "$2" ]]; }
record_published() { [[ $(kh "$1" status --json | json_raw record_published) == true ]]; }
declare -A PUB_OF=([ha]=$RA_PUB [hb]=$RB_PUB)
for n in ha hb; do
  wait_until 30 "$n to learn its public endpoint ${PUB_OF[$n]}:$CHAT_PORT by reflection" \
    public_endpoint_is "$n" "${PUB_OF[$n]}:$CHAT_PORT"
  wait_until 30 "$n to publish its record" record_published "$n"
done
log "reflection: ha sees itself as $RA_PUB:$CHAT_PORT, hb as $RB_PUB:$CHAT_PORT; records published"

# ------------------------------------------------------------------ 2. session and messages
t0=$(date +%s%N)
out=$(kh_send_wait ha "$ID_B" "hello b" 30 2>&1) || fail "send --wait=30 a->b failed: $out"
log "send --wait a->b delivered after $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# check_direct NAME PEER_ID PEER_ROUTER_PUB: NAME's session with PEER_ID is up on
# a direct path to PEER_ROUTER_PUB (any port); sets ENDPOINT.
check_direct() {
  local entry state path endpoint
  entry=$(peer_json "$1" "$2")
  [[ -n $entry ]] || fail "$1's peers --json has no entry for $2: $(kh "$1" peers --json 2>&1 | flat)"
  state=$(json_str state <<<"$entry")
  path=$(json_str path <<<"$entry")
  endpoint=$(json_str endpoint <<<"$entry")
  [[ $state == up && $path == direct ]] || fail "$1's session with $2: state '$state', path '$path' (want up, direct): $entry"
  [[ $endpoint == "$3":* ]] ||
    fail "$1's direct path to $2 is '$endpoint', want the other router's public address $3:PORT: $entry"
  ENDPOINT=$endpoint
}
peer_up() { [[ $(peer_json "$1" "$2" | json_str state) == up ]]; }
# The responder's side may still be finishing its punch when the initiator's
# send --wait returns: give it a moment.
wait_until 10 "hb to show its session with a as up" peer_up hb "$ID_A"
check_direct ha "$ID_B" "$RB_PUB"; EP_AB=$ENDPOINT
check_direct hb "$ID_A" "$RA_PUB"; EP_BA=$ENDPOINT
log "direct paths: a -> $EP_AB, b -> $EP_BA"
[[ $EP_AB == "$RB_PUB:$CHAT_PORT" && $EP_BA == "$RA_PUB:$CHAT_PORT" ]] ||
  log "note: a NAT did not keep port $CHAT_PORT (masquerade picked another port)"

N=20
for i in $(seq 1 $N); do
  kh ha send "$ID_B" "a2b-$i" >/dev/null || fail "queueing a2b-$i failed"
  kh hb send "$ID_A" "b2a-$i" >/dev/null || fail "queueing b2a-$i failed"
done
wait_until 30 "hb to hold $((N + 1)) messages" inbox_count_at_least hb $((N + 1))
wait_until 30 "ha to hold $N messages" inbox_count_at_least ha $N
expected_b=$( { echo "hello b"; for i in $(seq 1 $N); do echo "a2b-$i"; done; } )
expected_a=$(for i in $(seq 1 $N); do echo "b2a-$i"; done)
got_b=$(texts_in hb); got_a=$(texts_in ha)
[[ $got_b == "$expected_b" ]] || fail "hb's inbox is not 'hello b' + a2b-1..$N in order: $(tr '\n' ' ' <<<"$got_b")"
[[ $got_a == "$expected_a" ]] || fail "ha's inbox is not b2a-1..$N in order: $(tr '\n' ' ' <<<"$got_a")"
log "$N messages each way arrived exactly once, in order"
check_direct ha "$ID_B" "$RB_PUB"
check_direct hb "$ID_A" "$RA_PUB"
log "setup: ra/rb dropped $(obs_get ra unsolicited_frames)/$(obs_get rb unsolicited_frames) early punch frame(s) as unsolicited"
log "setup handshakes: ha sent $(count_log ha 'connect request sent') connect request(s)," \
  "ha/hb completed $(count_log ha 'handshake with .* done')/$(count_log hb 'handshake with .* done') handshake(s)"

# ------------------------------------------------------------------ 3. keepalive through NAT
lab_conntrack_udp_timeout ra "$CT_TIMEOUT_S" "$CT_TIMEOUT_S" || fail "conntrack timeout on ra"
lab_conntrack_udp_timeout rb "$CT_TIMEOUT_S" "$CT_TIMEOUT_S" || fail "conntrack timeout on rb"
isolate_flow ha "$RB_PUB"
isolate_flow hb "$RA_PUB"
# Lines of each log so far: everything after them is the idle window.
LA=$(log_lines ha); LB=$(log_lines hb)
declare -A OBS0=()
for r in ra rb; do
  for c in out_frames out_keepalives out_other in_frames in_keepalives in_other unsolicited_frames; do
    OBS0[$r.$c]=$(obs_get "$r" "$c")
  done
done
log "idle for ${IDLE_S}s (conntrack udp timeouts ${CT_TIMEOUT_S}s, keepalive ${KEEPALIVE_S}s;" \
  "between ha and hb only keyhole session frames may pass)"
idle_end=$(( SECONDS + IDLE_S ))
ct_max=0
while (( SECONDS < idle_end )); do
  sleep 5
  # Only the control sockets are asked: no network traffic is made here.
  for n in ha hb; do
    st=$(peer_json "$n" "${PEER_OF[$n]}" | json_str state)
    [[ $st == up ]] || fail "$n's session went '$st' during the idle phase (after $(( IDLE_S - (idle_end - SECONDS) ))s)"
  done
  # The direct flow's conntrack entry on each router must live throughout. An
  # entry keeps the lifetime it got at its last packet, so only once both
  # sides have sent a keepalive under the new knob must it be within it.
  for r in ra rb; do
    if [[ $r == ra ]]; then flow="src=$HA_IP dst=$RB_PUB sport=$CHAT_PORT"; else flow="src=$HB_IP dst=$RA_PUB sport=$CHAT_PORT"; fi
    ct=$(lab_conntrack_list "$r" | grep -F "$flow" | awk '{print $3}' | head -1)
    [[ -n $ct ]] || fail "$r has no conntrack entry '$flow' during the idle phase: the mapping expired"
    if (( IDLE_S - (idle_end - SECONDS) >= KEEPALIVE_S + 3 && ct > ct_max )); then ct_max=$ct; fi
  done
done
(( ct_max <= CT_TIMEOUT_S )) || fail "a router's direct-flow conntrack entry had ${ct_max}s left: the ${CT_TIMEOUT_S}s timeout is not in force"
log "idle over: the session stayed up; both routers' direct-flow conntrack entries lived throughout" \
  "(at most ${ct_max}s left after the first keepalives)"

t0=$(date +%s%N)
out=$(kh_send_wait ha "$ID_B" "after idle" 5 2>&1) || fail "send --wait=5 a->b after ${IDLE_S}s idle failed: $out"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
log "send --wait a->b after ${IDLE_S}s idle delivered in $ms ms"
[[ $(texts_in hb | tail -1) == "after idle" ]] || fail "hb's last message is not 'after idle': $(texts_in hb | tail -1)"

# Nothing was re-established: no connect request, no handshake, no session
# down, no dead or moved path, on either side.
for n in ha hb; do
  from=$([[ $n == ha ]] && echo "$LA" || echo "$LB")
  for re in 'connect request' 'handshake with .* done' 'session with .* down' 'path dead' \
            'path to .* moved' 'connecting to .* failed'; do
    c=$(count_log "$n" "$re" "$from")
    [[ $c -eq 0 ]] || fail "$n's log shows $c new '$re' line(s) in the idle window: $(tail -n +$((from + 1)) "$LAB_DIR/$n.log" | grep -E -- "$re" | head -3)"
  done
done
check_direct ha "$ID_B" "$RB_PUB"; [[ $ENDPOINT == "$EP_AB" ]] || fail "a's direct path changed during the idle phase: $EP_AB -> $ENDPOINT"
check_direct hb "$ID_A" "$RA_PUB"; [[ $ENDPOINT == "$EP_BA" ]] || fail "b's direct path changed during the idle phase: $EP_BA -> $ENDPOINT"

# The keepalives themselves crossed both NATs, and no frame was turned away.
delta() { echo $(( $(obs_get "$1" "$2") - OBS0[$1.$2] )); }
for r in ra rb; do
  ko=$(delta "$r" out_keepalives); ki=$(delta "$r" in_keepalives); un=$(delta "$r" unsolicited_frames)
  log "$r during idle+send: keepalives out=$ko in=$ki, frames out=$(delta "$r" out_frames) in=$(delta "$r" in_frames)," \
    "OpenDHT packets on the same flow out=$(delta "$r" out_other) in=$(delta "$r" in_other), unsolicited frames dropped=$un"
  (( ko >= MIN_KEEPALIVES && ki >= MIN_KEEPALIVES )) ||
    fail "$r saw $ko keepalives out and $ki in during ${IDLE_S}s (want >= $MIN_KEEPALIVES each way at ${KEEPALIVE_S}s)"
  (( un == 0 )) || fail "$r dropped $un keyhole frame(s) from the internet as unsolicited: a mapping expired"
  (( $(delta "$r" out_other) == 0 && $(delta "$r" in_other) == 0 )) ||
    fail "$r saw non-frame traffic between ha and hb during the idle phase: the flow was not isolated"
done
log "isolation dropped $(isolated_dropped ha) packet(s) of ha and $(isolated_dropped hb) of hb towards the other host"

# ------------------------------------------------------------------ 4. clean exit
for n in ha hb boot; do
  rc=0
  lab_stop "${DPID[$n]}" TERM || rc=$?
  [[ $rc -eq 0 ]] || fail "$n's daemon exited with status $rc on SIGTERM"
done
log "all daemons exited cleanly"
echo "PASS: port-restricted NAT on both sides: reflection, direct path via the public endpoints," \
  "$N messages each way in order, keepalives held the mappings through ${IDLE_S}s idle (${CT_TIMEOUT_S}s conntrack timeouts)" \
  "($((SECONDS - START)) s)"
