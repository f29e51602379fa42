#!/usr/bin/env bash
# NAT lab: relays (issue #5). Three public relay daemons; clients behind
# symmetric, port-restricted and UDP-blocked NATs.
#
#   boot 203.0.113.10, refl 203.0.113.11   keyholed --bootstrap-only (reflectors)
#   rl1/rl2/rl3 203.0.113.81/.82/.83       keyholed --relay (UDP 4222, TLS/TCP 443)
#   rs1/rs2 symmetric  198.51.100.51/.52   hosts hs1 10.51.1.2, hs2 10.52.1.2
#   rp1     portrestr. 198.51.100.41       host  hp1 10.41.1.2
#   ru      udpblocked 198.51.100.71       host  hu1 10.71.1.2
#
# 1. symmetric <-> symmetric: both sides allocate at relays on their own
#    (NAT endpoint-dependent), the session comes up through a relay
#    (`peers`: path relay + the relay's ID), 500 messages arrive in order,
#    the relays forwarded frames, and tcpdump on the relay hosts never sees
#    a message's text (the capture does contain the relayed packets).
# 2. The relay carrying that session is killed (SIGKILL) in the middle of
#    another 500 messages: all 1000 arrive exactly once, in order, over
#    another relay; the clients notice the death, allocate at the third
#    relay and republish their records.
# 3. symmetric <-> portrestricted with birthday probing off on both: the
#    first message goes through a relay at once. With birthday probing on,
#    the session starts on a relay and moves to the direct path it finds.
# 4. udpblocked <-> portrestricted: the blocked side (told the relays'
#    addresses, it cannot reach the DHT) allocates over TLS/TCP, and both
#    sides chat both ways.
#
# usage: bash tests/integration/nat_relay_test.sh BIN_DIR
# Needs root (exit 77 otherwise). LAB_KEEP_LOGS=1 keeps the lab folder.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lab/keyhole_lab.sh
source "$HERE/../lab/keyhole_lab.sh"
khl_use_bin "${1:-}"
command -v tcpdump >/dev/null || { echo "FAIL: tcpdump missing (tools/install-deps.sh installs it)"; exit 1; }

START=$SECONDS
NETWORK=$(( (RANDOM << 15 | RANDOM) + 1000 ))
BOOT="203.0.113.10:4222"
REFL="203.0.113.11:4222"
CHAT_PORT=4300
MESSAGES=${MESSAGES:-500}
SECRET="kh-plaintext-$RANDOM$RANDOM"  # in every message text; must never cross a relay readable

lab_init || fail "lab_init"
{
  lab_public_host boot 203.0.113.10 &&
  lab_public_host refl 203.0.113.11 &&
  lab_public_host rl1 203.0.113.81 &&
  lab_public_host rl2 203.0.113.82 &&
  lab_public_host rl3 203.0.113.83 &&
  lab_nat_router rs1 symmetric 198.51.100.51 10.51.1 && lab_host hs1 rs1 10.51.1.2 &&
  lab_nat_router rs2 symmetric 198.51.100.52 10.52.1 && lab_host hs2 rs2 10.52.1.2 &&
  lab_nat_router rp1 portrestricted 198.51.100.41 10.41.1 && lab_host hp1 rp1 10.41.1.2 &&
  lab_nat_router ru udpblocked 198.51.100.71 10.71.1 && lab_host hu1 ru 10.71.1.2
} >"$LAB_DIR/setup.log" 2>&1 || { cat "$LAB_DIR/setup.log"; fail "could not build the lab"; }
log "lab $LAB_ID built"

# Short keepalives: a dead relay is noticed within 3 intervals.
echo 'keepalive_interval_s = 2' >"$LAB_DIR/keyholed.toml"

CURRENT=(boot refl rl1 rl2 rl3)
start_daemon boot boot --port 4222 --bootstrap-only
start_daemon refl refl --port 4222 --bootstrap-only --bootstrap "$BOOT"
declare -A RELAY_IP=([rl1]=203.0.113.81 [rl2]=203.0.113.82 [rl3]=203.0.113.83)
start_relay() { # start_relay HOST: bound to its public address, which it announces; keeps its key
  KHL_IDENTITY="$LAB_DIR/$1.identity.key" start_daemon "$1" "$1" --port 4222 --bind "${RELAY_IP[$1]}" --relay --relay-tcp-port 443 \
    --bootstrap "$BOOT" --bootstrap "$REFL"
}
start_relay rl1
start_relay rl2
start_relay rl3
ID_RL1=$(kh rl1 id) || fail "rl1 id"
ID_RL2=$(kh rl2 id) || fail "rl2 id"
ID_RL3=$(kh rl3 id) || fail "rl3 id"
# A relay announces itself once it knows its public address.
announced() { [[ $(count_log "$1" 'relay: announcing UDP') -ge 1 ]]; }
wait_until 30 "rl1 to announce itself" announced rl1
wait_until 30 "rl2 to announce itself" announced rl2
wait_until 30 "rl3 to announce itself" announced rl3
log "relays up: rl1 $ID_RL1, rl2 $ID_RL2, rl3 $ID_RL3"

client() { # client HOST NAME ARGS...
  local host=$1 name=$2; shift 2
  start_daemon "$host" "$name" --port "$CHAT_PORT" --bootstrap "$BOOT" --bootstrap "$REFL" "$@"
}
granted_relays() { kh "$1" status --json 2>/dev/null | flat | grep -o '"state": *"granted"' | wc -l; }
has_relays() { [[ $(granted_relays "$1") -ge ${2:-1} ]]; }
record_published() { [[ $(status_field "$1" record_published) == true ]]; }
peer_field() { peer_json "$1" "$2" | json_str "$3"; }
peer_up() { [[ $(peer_field "$1" "$2" state) == up ]]; }
# expect_relayed NAME PEER_ID: the session is up through a relay; sets RELAY to the relay's ID.
expect_relayed() {
  local entry
  entry=$(peer_json "$1" "$2")
  [[ $(json_str state <<<"$entry") == up && $(json_str path <<<"$entry") == relay ]] ||
    fail "$1's session with $2 is not up through a relay: $entry"
  RELAY=$(json_str relay <<<"$entry")
  [[ $RELAY == "$ID_RL1" || $RELAY == "$ID_RL2" || $RELAY == "$ID_RL3" ]] || fail "$1's session names relay '$RELAY', not one of ours: $entry"
}
# send_bulk NAME PEER_ID FIRST LAST: messages "$SECRET mFIRST".."$SECRET mLAST" through `keyhole chat`.
send_bulk() {
  seq "$3" "$4" | sed "s/^/$SECRET m/" |
    timeout 120 "$BIN/keyhole" --socket "$LAB_DIR/$1/control.sock" chat "$2" >/dev/null 2>&1 ||
    fail "keyhole chat of messages $3..$4 from $1 failed"
}
expect_inbox() { # expect_inbox NAME FIRST LAST: exactly these texts, in order, each once
  local want
  want=$(seq "$2" "$3" | sed "s/^/$SECRET m/")
  [[ $(texts_in "$1") == "$want" ]] || {
    texts_in "$1" | sort | uniq -d | head -3
    fail "$1's inbox is not messages $2..$3 exactly once in order ($(texts_in "$1" | wc -l) texts)"
  }
}
relay_frames() { status_field "$1" relay_forwarded_frames; }
relay_host_of() { # relay_host_of ID: rl1, rl2 or rl3
  case $1 in "$ID_RL1") echo rl1 ;; "$ID_RL2") echo rl2 ;; *) echo rl3 ;; esac
}

# ------------------------------------------------------------------ benchmark mode
# RELAY_TRIALS=N (tools/bench/nat_relay_bench.sh): N trials of a fresh
# symmetric<->symmetric pair, nothing else; BENCH_RESULTS=FILE gets lines
#   warm MS   both daemons up with relays and records: first send --wait
#   cold MS   from starting both daemons to the first message acknowledged
if (( ${RELAY_TRIALS:-0} )); then
  RESULTS=${BENCH_RESULTS:-$LAB_DIR/results}
  mkdir -p "$LAB_DIR/ids"
  for k in $(seq 1 "$RELAY_TRIALS"); do
    CURRENT=("w$k-a" "w$k-b")
    KHL_IDENTITY="$LAB_DIR/ids/hs1.key" client hs1 "w$k-a"
    KHL_IDENTITY="$LAB_DIR/ids/hs2.key" client hs2 "w$k-b"
    wait_until 20 "relays" has_relays "w$k-a" 1; wait_until 20 "relays" has_relays "w$k-b" 1
    wait_until 20 "records" record_published "w$k-a"; wait_until 20 "records" record_published "w$k-b"
    sleep 1  # the record with the relays reaches its storing nodes
    t0=$(date +%s%N)
    if kh_send_wait "w$k-a" "$(kh "w$k-b" id)" "warm $k" 20 >/dev/null 2>&1; then
      echo "warm $(( ($(date +%s%N) - t0) / 1000000 ))" >>"$RESULTS"
    else
      echo "warm fail" >>"$RESULTS"
    fi
    stop_daemon "w$k-a"; stop_daemon "w$k-b"
    CURRENT=("c$k-a" "c$k-b")
    t0=$(date +%s%N)
    KHL_IDENTITY="$LAB_DIR/ids/hs1.key" client hs1 "c$k-a"
    KHL_IDENTITY="$LAB_DIR/ids/hs2.key" client hs2 "c$k-b"
    if kh_send_wait "c$k-a" "$(kh "c$k-b" id)" "cold $k" 30 >/dev/null 2>&1; then
      echo "cold $(( ($(date +%s%N) - t0) / 1000000 ))" >>"$RESULTS"
    else
      echo "cold fail" >>"$RESULTS"
    fi
    stop_daemon "c$k-a"; stop_daemon "c$k-b"
  done
  cat "$RESULTS"
  exit 0
fi

# ------------------------------------------------------------------ 1. symmetric <-> symmetric
CURRENT=(s1 s2 rl1 rl2 rl3)
client hs1 s1
client hs2 s2
ID_S1=$(kh s1 id) || fail "s1 id"
ID_S2=$(kh s2 id) || fail "s2 id"
wait_until 20 "s1 to hold two relay allocations" has_relays s1 2
wait_until 20 "s2 to hold two relay allocations" has_relays s2 2
wait_until 20 "s1 to publish its record" record_published s1
wait_until 20 "s2 to publish its record" record_published s2
log "s1 and s2 hold allocations: $(granted_relays s1) and $(granted_relays s2)"

declare -A TCPDUMP=()
for r in rl1 rl2 rl3; do
  lab_spawn "$r" "tcpdump.$r.log" tcpdump -i any -n -U -s 0 -w "$LAB_DIR/$r.pcap" udp or tcp
  TCPDUMP[$r]=$LAB_LAST_PID
done
sleep 1  # tcpdump opens its capture

t0=$(date +%s%N)
out=$(kh_send_wait s1 "$ID_S2" "$SECRET m1" 20 2>&1) || fail "symmetric<->symmetric: first message not delivered: $out"
log "symmetric<->symmetric: first message delivered in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
expect_relayed s1 "$ID_S2"; RELAY_A=$RELAY
wait_until 10 "s2 to show the session up" peer_up s2 "$ID_S1"
expect_relayed s2 "$ID_S1"
# What a person sees: `keyhole peers` names the path and the relay.
kh s1 peers | grep -F "$ID_S2" | grep -qF "relay $RELAY_A" || fail "keyhole peers does not show 'relay $RELAY_A': $(kh s1 peers)"
send_bulk s1 "$ID_S2" 2 "$MESSAGES"
wait_until 90 "s2 to hold $MESSAGES messages" inbox_count_at_least s2 "$MESSAGES"
expect_inbox s2 1 "$MESSAGES"
frames=$(( $(relay_frames rl1) + $(relay_frames rl2) + $(relay_frames rl3) ))
(( frames >= MESSAGES )) || fail "relays forwarded only $frames frames for $MESSAGES messages"
for r in rl1 rl2 rl3; do lab_stop "${TCPDUMP[$r]}" INT; done
relayed_total=0
for r in rl1 rl2 rl3; do
  # The relayed frames are in the capture (UDP on the relay's port)...
  relayed=$(tcpdump -n -r "$LAB_DIR/$r.pcap" 'udp port 4222 and greater 100' 2>/dev/null | wc -l)
  relayed_total=$(( relayed_total + relayed ))
  # ...and the text of the messages is not.
  if grep -q -a -F "$SECRET" "$LAB_DIR/$r.pcap"; then fail "$r's capture contains message plaintext"; fi
  log "$r: $relayed relay packets captured, no plaintext in them"
done
(( relayed_total >= MESSAGES )) ||
  fail "the relay captures hold only $relayed_total relay packets: the plaintext check proves nothing"
log "symmetric<->symmetric: through relay $RELAY_A, $MESSAGES messages in order, relays forwarded $frames frames"

# ------------------------------------------------------------------ 2. relay killed mid-conversation
VICTIM=$(relay_host_of "$RELAY_A")
# Which clients hold an allocation at the victim (the session's relay is
# one of them), and their record's sequence before the kill.
declare -A HELD=() SEQ=()
for c in s1 s2; do
  kh "$c" status --json | grep -qF "$RELAY_A" && HELD[$c]=1
  SEQ[$c]=$(status_field "$c" record_sequence)
done
(( ${#HELD[@]} >= 1 )) || fail "no client lists the relay the session goes through ($RELAY_A)"
send_bulk s1 "$ID_S2" $((MESSAGES + 1)) $((2 * MESSAGES)) &
SENDER=$!
wait_until 60 "s2 to hold $((MESSAGES + 100)) messages" inbox_count_at_least s2 $((MESSAGES + 100))
stop_daemon "$VICTIM" KILL || true
log "killed relay $VICTIM (SIGKILL) with $(kh s2 inbox --json --limit 100000 | grep -c '"text"') messages in s2's inbox"
wait "$SENDER" || fail "the sender of messages $((MESSAGES + 1))..$((2 * MESSAGES)) failed"
wait_until 120 "s2 to hold all $((2 * MESSAGES)) messages" inbox_count_at_least s2 $((2 * MESSAGES))
expect_inbox s2 1 $((2 * MESSAGES))
wait_until 20 "s1's session up again" peer_up s1 "$ID_S2"
expect_relayed s1 "$ID_S2"; RELAY_B=$RELAY
[[ $RELAY_B != "$RELAY_A" ]] || fail "the session still names the killed relay"
relay_loss_noticed() { (( $(status_field s1 relays_lost) + $(status_field s2 relays_lost) >= 1 )); }
# Three keepalive intervals (2 s) without an answer, and some slack.
wait_until 10 "a client to notice the relay's death" relay_loss_noticed
lost=$(( $(status_field s1 relays_lost) + $(status_field s2 relays_lost) ))
# Allocated elsewhere (the third relay) and republished.
relay_replaced() { # relay_replaced NAME SEQUENCE_BEFORE
  ! kh "$1" status --json | grep -qF "$RELAY_A" && has_relays "$1" 2 && (( $(status_field "$1" record_sequence) > $2 ))
}
for c in "${!HELD[@]}"; do
  wait_until 20 "$c to drop the dead relay, allocate at another and republish" relay_replaced "$c" "${SEQ[$c]}"
done
log "relay death: all $((2 * MESSAGES)) messages exactly once in order, now through $RELAY_B; relays lost: $lost"
stop_daemon s1; stop_daemon s2
start_relay "$VICTIM"
wait_until 30 "$VICTIM to announce itself again" announced "$VICTIM"

# ------------------------------------------------------------------ 3. symmetric <-> portrestricted, no birthday probing
CURRENT=(s3 p3 rl1 rl2 rl3)
client hs2 s3 --no-birthday-probing
client hp1 p3 --no-birthday-probing
ID_S3=$(kh s3 id) || fail "s3 id"
wait_until 20 "s3 (symmetric) to hold a relay allocation" has_relays s3 1
wait_until 20 "s3 to publish its record" record_published s3
wait_until 20 "p3 to publish its record" record_published p3
t0=$(date +%s%N)
out=$(kh_send_wait p3 "$ID_S3" "$SECRET m1" 10 2>&1) || fail "portrestricted->symmetric without birthday probing: $out"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_relayed p3 "$ID_S3"
(( ms < 5000 )) || fail "the relay path took $ms ms: not 'at once'"
send_bulk p3 "$ID_S3" 2 50
wait_until 30 "s3 to hold 50 messages" inbox_count_at_least s3 50
expect_inbox s3 1 50
log "symmetric<->portrestricted without birthday probing: relay path, first message in $ms ms, 50 in order"
stop_daemon s3; stop_daemon p3

# With birthday probing: a relay at once, then the direct path takes over.
CURRENT=(s5 p5 rl1 rl2 rl3)
client hs2 s5
client hp1 p5
ID_S5=$(kh s5 id) || fail "s5 id"
ID_P5=$(kh p5 id) || fail "p5 id"
wait_until 20 "s5 (symmetric) to hold a relay allocation" has_relays s5 1
wait_until 20 "s5 to publish its record" record_published s5
wait_until 20 "p5 to publish its record" record_published p5
out=$(kh_send_wait p5 "$ID_S5" "$SECRET m1" 10 2>&1) || fail "portrestricted->symmetric with birthday probing: $out"
first_path=$(peer_field p5 "$ID_S5" path)
path_direct() { [[ $(peer_field p5 "$ID_S5" path) == direct && $(peer_field s5 "$ID_P5" path) == direct ]]; }
wait_until 15 "the session to move to a direct path" path_direct
(( $(status_field p5 relay_to_direct) + $(status_field s5 relay_to_direct) >= 1 )) || [[ $first_path == direct ]] ||
  fail "the session went direct but no side counted a move from the relay"
send_bulk p5 "$ID_S5" 2 50
wait_until 30 "s5 to hold 50 messages" inbox_count_at_least s5 50
expect_inbox s5 1 50
log "symmetric<->portrestricted with birthday probing: first on '$first_path', then direct ($(peer_field p5 "$ID_S5" endpoint)), 50 in order"
stop_daemon s5; stop_daemon p5

# ------------------------------------------------------------------ 4. udpblocked <-> portrestricted (TLS)
CURRENT=(u4 p4 rl1 rl2 rl3)
client hu1 u4 --use-relay "$ID_RL1@203.0.113.81:4222/443" --use-relay "$ID_RL2@203.0.113.82:4222/443" \
  --use-relay "$ID_RL3@203.0.113.83:4222/443"
client hp1 p4
ID_U4=$(kh u4 id) || fail "u4 id"
ID_P4=$(kh p4 id) || fail "p4 id"
tls_relays() { kh "$1" status --json 2>/dev/null | flat | grep -o '"transport": *"tls"' | wc -l; }
wait_until 40 "u4 to hold a relay allocation over TLS" has_relays u4 1
(( $(tls_relays u4) >= 1 )) || fail "u4's allocations are not over TLS"
wait_until 30 "u4's record to be published through its relay" record_published u4
wait_until 20 "p4 to publish its record" record_published p4
out=$(kh_send_wait p4 "$ID_U4" "$SECRET m1" 20 2>&1) || fail "portrestricted->udpblocked: $out"
expect_relayed p4 "$ID_U4"
out=$(kh_send_wait u4 "$ID_P4" "$SECRET m1" 20 2>&1) || fail "udpblocked->portrestricted: $out"
send_bulk u4 "$ID_P4" 2 50
wait_until 30 "p4 to hold 50 messages" inbox_count_at_least p4 50
expect_inbox p4 1 50
log "udpblocked<->portrestricted: over TLS to the relay, both directions, 50 messages in order"
stop_daemon u4; stop_daemon p4

CURRENT=(boot refl rl1 rl2 rl3)
for d in rl1 rl2 rl3 refl boot; do stop_daemon "$d" || fail "$d exited with status $? on SIGTERM"; done
echo "PASS: relays: symmetric<->symmetric, relay killed mid-conversation, symmetric<->portrestricted without" \
  "birthday probing, udpblocked<->portrestricted over TLS ($((SECONDS - START)) s)"
