#!/usr/bin/env bash
# NAT lab: the traversal matrix. Every unordered pair of {open, fullcone,
# portrestricted, symmetric} (one host behind each of two routers of a type),
# two hosts behind the same NAT (no hairpinning), and a UDP-blocked host.
#
#   boot 203.0.113.10, refl 203.0.113.11   public keyholed --bootstrap-only:
#                                          two reflectors at different addresses
#   o1/o2   open       203.0.113.21/.22    (host on the internet itself)
#   rf1/rf2 fullcone   203.0.113.31/.32    hosts hf1 10.31.1.2, hf2 10.32.1.2
#   rp1/rp2 portrestr. 198.51.100.41/.42   hosts hp1 10.41.1.2, hp2 10.42.1.2
#   rs1/rs2 symmetric  198.51.100.51/.52   hosts hs1 10.51.1.2, hs2 10.52.1.2
#   rn      portrestr. 198.51.100.61       hosts hn1 10.61.1.2, hn2 10.61.1.3
#   ru      udpblocked 198.51.100.71       host  hu1 10.71.1.2
#
# Each trial starts a fresh pair of daemons (fresh state; each host keeps its
# identity, hence its DHT node id; routers' NAT mappings flushed first), waits
# until both published their record, then:
#  - pairs that must connect: `send --wait` A->B succeeds; both sides show
#    the session `up` on a `direct` path to the other's public address (the
#    LAN address for the same-NAT pair); 100 more messages arrive in order.
#  - symmetric<->portrestricted: 10 trials, at least 9 must reach direct.
#  - symmetric<->symmetric: send --wait fails within its bound and `peers`
#    shows `no_path` with a reason naming the relay (issue #5 brings relays).
#  - udpblocked: its daemon reports no DHT nodes; a peer's send --wait fails
#    within its bound and `peers` names the failed lookup.
# Each daemon reports its NAT class, which must match the router type.
#
# IMPAIRED=1 (tests/integration/nat_impaired_test.sh): every router's public
# link (and the open hosts' own link) gets 100 ms delay each way and 3 % loss
# each way; every pair that must connect is tried once and carries 500
# messages; the symmetric<->portrestricted block runs once per direction, the
# no-path cases are left to the plain run.
#
# TRIALS_PER_PAIR=N (tools/bench/nat_matrix_bench.sh): N trials of every pair,
# none of which fails the run; BENCH_RESULTS=FILE receives one line per trial
# "pair ok|fail connect_ms probes path".
#
# PAIRS=REGEX (debugging): only the pairs whose label matches, nothing else.
#
# usage: bash tests/integration/nat_matrix_test.sh BIN_DIR
# Needs root (exit 77 otherwise). LAB_KEEP_LOGS=1 keeps the lab folder.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lab/keyhole_lab.sh
source "$HERE/../lab/keyhole_lab.sh"
khl_use_bin "${1:-}"

IMPAIRED=${IMPAIRED:-0}
if (( IMPAIRED )); then
  SYM_PR_TRIALS=${SYM_PR_TRIALS:-2}; MESSAGES=${MESSAGES:-500}; WAIT_S=40
  DELAY_MS=${DELAY_MS:-100}; LOSS_PCT=${LOSS_PCT:-3}
else
  SYM_PR_TRIALS=${SYM_PR_TRIALS:-10}; MESSAGES=${MESSAGES:-100}; WAIT_S=20
fi

START=$SECONDS
NETWORK=$(( (RANDOM << 15 | RANDOM) + 1000 ))
BOOT="203.0.113.10:4222"
REFL="203.0.113.11:4222"
CHAT_PORT=4300

# ------------------------------------------------------------------ lab
lab_init || fail "lab_init"
{
  lab_public_host boot 203.0.113.10 &&
  lab_public_host refl 203.0.113.11 &&
  lab_nat_router o1 open 203.0.113.21 10.21.1 && lab_host ho1 o1 10.21.1.2 &&
  lab_nat_router o2 open 203.0.113.22 10.22.1 && lab_host ho2 o2 10.22.1.2 &&
  lab_nat_router rf1 fullcone 203.0.113.31 10.31.1 && lab_host hf1 rf1 10.31.1.2 &&
  lab_nat_router rf2 fullcone 203.0.113.32 10.32.1 && lab_host hf2 rf2 10.32.1.2 &&
  lab_nat_router rp1 portrestricted 198.51.100.41 10.41.1 && lab_host hp1 rp1 10.41.1.2 &&
  lab_nat_router rp2 portrestricted 198.51.100.42 10.42.1 && lab_host hp2 rp2 10.42.1.2 &&
  lab_nat_router rs1 symmetric 198.51.100.51 10.51.1 && lab_host hs1 rs1 10.51.1.2 &&
  lab_nat_router rs2 symmetric 198.51.100.52 10.52.1 && lab_host hs2 rs2 10.52.1.2 &&
  lab_nat_router rn portrestricted 198.51.100.61 10.61.1 && lab_host hn1 rn 10.61.1.2 && lab_host hn2 rn 10.61.1.3 &&
  lab_nat_router ru udpblocked 198.51.100.71 10.71.1 && lab_host hu1 ru 10.71.1.2
} >"$LAB_DIR/setup.log" 2>&1 || { cat "$LAB_DIR/setup.log"; fail "could not build the lab"; }
log "lab $LAB_ID built"
if (( IMPAIRED )); then
  export UDP_PROBE=${UDP_PROBE:-$BIN/udp_probe}
  [[ -x ${NFQ_DELAY:-$BIN/nfq_delay} ]] || fail "nfq_delay not built (libnetfilter-queue-dev missing?): delay impossible"
  export NFQ_DELAY=${NFQ_DELAY:-$BIN/nfq_delay}
  for node in ho1 ho2 rf1 rf2 rp1 rp2 rs1 rs2 rn; do
    lab_impair "$node" --delay "$DELAY_MS" --loss "$LOSS_PCT" >>"$LAB_DIR/setup.log" 2>&1 ||
      { tail -5 "$LAB_DIR/setup.log"; fail "could not impair $node"; }
  done
  log "impairment: ${DELAY_MS} ms delay and ${LOSS_PCT}% loss each way on every NAT link"
fi

CURRENT=(boot refl)
start_daemon boot boot --port 4222 --bootstrap-only
start_daemon refl refl --port 4222 --bootstrap-only --bootstrap "$BOOT"

declare -A NAT_OF=([ho1]=open [ho2]=open [hf1]=endpoint-independent [hf2]=endpoint-independent
                   [hp1]=endpoint-independent [hp2]=endpoint-independent
                   [hs1]=endpoint-dependent [hs2]=endpoint-dependent
                   [hn1]=endpoint-independent [hn2]=endpoint-independent)
router_of() { echo "${LAB_ROUTER_OF[$1]}"; }
flush_routers() {
  local h r
  for h in "$@"; do
    r=$(router_of "$h")
    [[ ${LAB_TYPE[$r]} == open ]] || lab_flush_conntrack "$r"
  done
}
record_published() { [[ $(status_field "$1" record_published) == true ]]; }
nat_is() { [[ $(status_field "$1" nat) == "$2" ]]; }
peer_field() { peer_json "$1" "$2" | json_str "$3"; }

RESULTS=${BENCH_RESULTS:-$LAB_DIR/results}
TRIALS_PER_PAIR=${TRIALS_PER_PAIR:-0}  # 0: the test (one trial each, failures fail)
: >"$RESULTS"
TRIAL=0
# start_pair HOST_A HOST_B: fresh daemons a$TRIAL on HOST_A and b$TRIAL on
# HOST_B; sets A, B (daemon names), ID_A, ID_B.
start_pair() {
  TRIAL=$((TRIAL + 1))
  A="a$TRIAL"; B="b$TRIAL"
  CURRENT=("$A" "$B")
  flush_routers "$1" "$2"
  # Each host keeps its identity across trials (see KHL_IDENTITY); state is fresh.
  mkdir -p "$LAB_DIR/ids"
  KHL_IDENTITY="$LAB_DIR/ids/$1.key" start_daemon "$1" "$A" --port "$CHAT_PORT" --bootstrap "$BOOT" --bootstrap "$REFL"
  KHL_IDENTITY="$LAB_DIR/ids/$2.key" start_daemon "$2" "$B" --port "$CHAT_PORT" --bootstrap "$BOOT" --bootstrap "$REFL"
  ID_A=$(kh "$A" id) || fail "$A id"
  ID_B=$(kh "$B" id) || fail "$B id"
}
stop_pair() {
  stop_daemon "$A" || log "note: $A exited with status $? on SIGTERM"
  stop_daemon "$B" || log "note: $B exited with status $? on SIGTERM"
}
# expect_nat NAME HOST: NAME's daemon classifies its NAT as the router type says.
expect_nat() {
  local want=${NAT_OF[$2]}
  wait_until 15 "$1 (on $2) to classify its NAT as $want (status nat: $(status_field "$1" nat))" nat_is "$1" "$want"
}
# expect_direct NAME PEER_ID WANT_IP: NAME's session with PEER_ID is up on a
# direct path to WANT_IP (any port).
expect_direct() {
  local entry state path endpoint
  entry=$(peer_json "$1" "$2")
  state=$(json_str state <<<"$entry"); path=$(json_str path <<<"$entry"); endpoint=$(json_str endpoint <<<"$entry")
  [[ $state == up && $path == direct && $endpoint == "$3":* ]] ||
    fail "$1's session with $2: state '$state', path '$path', endpoint '$endpoint' (want up, direct, $3:*): $entry"
}
peer_up() { [[ $(peer_field "$1" "$2" state) == up ]]; }

# try_direct HOST_A HOST_B LABEL [--no-fail]: one trial of a pair that must
# connect directly. Appends "LABEL ok|fail MS PROBES" to $RESULTS.
try_direct() {
  local ha=$1 hb=$2 label=$3 soft=${4:-} t0 ms out pa pb want_a want_b
  [[ -z ${PAIRS:-} || $label =~ $PAIRS ]] || return 0
  start_pair "$ha" "$hb"
  expect_nat "$A" "$ha"; expect_nat "$B" "$hb"
  wait_until 20 "$A and $B to publish their records" record_published "$A"
  wait_until 20 "$B to publish its record" record_published "$B"
  t0=$(date +%s%N)
  if ! out=$(kh_send_wait "$A" "$ID_B" "hello $label" "$WAIT_S" 2>&1); then
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    echo "$label fail $ms 0 none" >>"$RESULTS"
    if [[ $soft == --no-fail ]]; then
      log "$label: send --wait failed after $ms ms: $out"
      daemon_diagnostics "$A" "$B" | grep -E 'NAT|birthday|no direct|punch' | head -8
      stop_pair
      return 1
    fi
    fail "$label: send --wait A->B failed after $ms ms: $out"
  fi
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  wait_until 10 "$B to show its session with $A up" peer_up "$B" "$ID_A"
  if [[ $(router_of "$ha") == "$(router_of "$hb")" ]]; then
    want_a=${LAB_IP[$hb]}; want_b=${LAB_IP[$ha]}  # same NAT: the LAN path
  else
    want_a=${LAB_PUBIP[$(router_of "$hb")]}; want_b=${LAB_PUBIP[$(router_of "$ha")]}
  fi
  expect_direct "$A" "$ID_B" "$want_a"
  expect_direct "$B" "$ID_A" "$want_b"
  pa=$(status_field "$A" punch_probes_sent); pb=$(status_field "$B" punch_probes_sent)
  local bd
  bd="$(peer_json "$A" "$ID_B" | json_raw birthday_socket)/$(peer_json "$B" "$ID_A" | json_raw birthday_socket)"
  # MESSAGES more, through `keyhole chat` from a pipe, in order.
  local expected i
  expected=$( { echo "hello $label"; for i in $(seq 1 "$MESSAGES"); do echo "m$i"; done; } )
  for i in $(seq 1 "$MESSAGES"); do echo "m$i"; done |
    timeout 120 "$BIN/keyhole" --socket "$LAB_DIR/$A/control.sock" chat "$ID_B" >/dev/null 2>&1 ||
    fail "$label: keyhole chat of $MESSAGES messages failed"
  wait_until 90 "$B to hold $((MESSAGES + 1)) messages" inbox_count_at_least "$B" $((MESSAGES + 1))
  [[ $(texts_in "$B") == "$expected" ]] || fail "$label: $B's inbox is not the $((MESSAGES + 1)) messages in order"
  expect_direct "$A" "$ID_B" "$want_a"
  local kind=public
  [[ $want_a == 10.* ]] && kind=lan
  [[ $bd == *true* ]] && kind=birthday
  echo "$label ok $ms $((pa + pb)) direct-$kind" >>"$RESULTS"
  log "$label: direct in $ms ms (path $(peer_field "$A" "$ID_B" endpoint) / $(peer_field "$B" "$ID_A" endpoint);" \
    "punch probes $pa+$pb; birthday socket a/b: $bd); $MESSAGES messages in order"
  stop_pair
}

# ------------------------------------------------------------------ matrix
declare -A HOST1 HOST2
HOST1=([open]=ho1 [fullcone]=hf1 [portrestricted]=hp1 [symmetric]=hs1)
HOST2=([open]=ho2 [fullcone]=hf2 [portrestricted]=hp2 [symmetric]=hs2)
TYPES=(open fullcone portrestricted symmetric)
for i in 0 1 2 3; do
  for j in $(seq "$i" 3); do
    t1=${TYPES[$i]} t2=${TYPES[$j]}
    [[ $t1 == symmetric && $t2 == symmetric ]] && continue
    [[ $t1 == portrestricted && $t2 == symmetric ]] && continue  # the 10-trial block below
    if (( TRIALS_PER_PAIR )); then
      for _ in $(seq 1 "$TRIALS_PER_PAIR"); do try_direct "${HOST1[$t1]}" "${HOST2[$t2]}" "$t1-$t2" --no-fail; done
    else
      try_direct "${HOST1[$t1]}" "${HOST2[$t2]}" "$t1-$t2"
    fi
  done
done
if (( TRIALS_PER_PAIR )); then
  for _ in $(seq 1 "$TRIALS_PER_PAIR"); do try_direct hn1 hn2 "same-nat" --no-fail; done
  SYM_PR_TRIALS=$(( 2 * TRIALS_PER_PAIR ))
else
  try_direct hn1 hn2 "same-nat"
fi

# ------------------------------------------------------------------ symmetric <-> portrestricted
ok=0
[[ -z ${PAIRS:-} ]] || SYM_PR_TRIALS=0
for k in $(seq 1 "$SYM_PR_TRIALS"); do
  # Alternate who initiates: both roles must work.
  if (( k % 2 )); then try_direct hs1 hp2 "symmetric-portrestricted" --no-fail && ok=$((ok + 1))
  else try_direct hp1 hs2 "portrestricted-symmetric" --no-fail && ok=$((ok + 1)); fi
done
log "symmetric<->portrestricted: $ok of $SYM_PR_TRIALS trials direct"
(( ok * 10 >= SYM_PR_TRIALS * 9 || (IMPAIRED && ok == SYM_PR_TRIALS) || TRIALS_PER_PAIR )) || fail "symmetric<->portrestricted reached direct in only $ok of $SYM_PR_TRIALS trials (want >= 90%)"

if (( IMPAIRED )) || [[ -n ${PAIRS:-} ]]; then
  CURRENT=(boot refl)
  stop_daemon refl || fail "refl exited with status $? on SIGTERM"
  stop_daemon boot || fail "boot exited with status $? on SIGTERM"
  echo "--- results (label outcome connect_ms punch_probes path):"
  cat "$RESULTS"
  if (( IMPAIRED )); then
    for node in ho1 rf1 rp1 rs1; do log "$node link: $(lab_impair_stats "$node")"; done
    echo "PASS: NAT matrix with ${DELAY_MS} ms delay and ${LOSS_PCT}% loss each way on every NAT link: every pair" \
      "that connects directly did, $MESSAGES messages in order each ($((SECONDS - START)) s)"
  else
    echo "PASS: NAT matrix pairs matching '$PAIRS' ($((SECONDS - START)) s)"
  fi
  exit 0
fi

# ------------------------------------------------------------------ no direct path: clear state, no hang
start_pair hs1 hs2
expect_nat "$A" hs1; expect_nat "$B" hs2
wait_until 20 "$B to publish its record" record_published "$B"
t0=$SECONDS
out=$(kh_send_wait "$A" "$ID_B" "sym-sym" 15 2>&1) && fail "symmetric-symmetric: send --wait succeeded without a relay?: $out"
(( SECONDS - t0 <= 20 )) || fail "symmetric-symmetric: send --wait=15 took $((SECONDS - t0)) s"
no_path() { [[ $(peer_field "$A" "$ID_B" state) == no_path ]]; }
wait_until 10 "$A to show no_path for $B" no_path
detail=$(peer_field "$A" "$ID_B" detail)
[[ $detail == *endpoint-dependent*relay* ]] || fail "symmetric-symmetric: no_path detail does not say why: '$detail'"
echo "symmetric-symmetric fail $(( (SECONDS - t0) * 1000 )) $(( $(status_field "$A" punch_probes_sent) + $(status_field "$B" punch_probes_sent) )) no_path" >>"$RESULTS"
log "symmetric-symmetric: send --wait failed after $((SECONDS - t0)) s ('${out//$'\n'/ }'); peers: no_path, '$detail'"
stop_pair

start_pair hu1 hp2
wait_until 20 "$B to publish its record" record_published "$B"
[[ $(status_field "$A" dht_nodes) == 0 ]] || fail "udpblocked: $A reports DHT nodes behind a UDP-blocking router"
[[ $(status_field "$A" record_published) != true ]] || fail "udpblocked: $A claims its record is published"
t0=$SECONDS
out=$(kh_send_wait "$B" "$ID_A" "to blocked" 10 2>&1) && fail "udpblocked: send --wait to the blocked host succeeded?: $out"
(( SECONDS - t0 <= 15 )) || fail "udpblocked: send --wait=10 took $((SECONDS - t0)) s"
lookup_failed() { [[ $(peer_field "$B" "$ID_A" detail) == *lookup* ]]; }
wait_until 20 "$B's peers to say the lookup of $A failed" lookup_failed
log "udpblocked: $A has no DHT; $B's send --wait failed after $((SECONDS - t0)) s;" \
  "peers: $(peer_field "$B" "$ID_A" state), '$(peer_field "$B" "$ID_A" detail)'"
stop_pair

CURRENT=(boot refl)
stop_daemon refl || fail "refl exited with status $? on SIGTERM"
stop_daemon boot || fail "boot exited with status $? on SIGTERM"
echo "--- results (label outcome connect_ms punch_probes):"
cat "$RESULTS"
echo "PASS: NAT matrix: every pair of open/fullcone/portrestricted/symmetric except symmetric-symmetric direct," \
  "same NAT on the LAN, symmetric<->portrestricted $ok/$SYM_PR_TRIALS, symmetric-symmetric and udpblocked" \
  "in a clear state ($((SECONDS - START)) s)"
