# shellcheck shell=bash
# keyhole daemons in the NAT lab: the helpers every NAT test and NAT
# benchmark shares (sources tests/lab/lab.sh).
#
# Set before use: BIN (folder with keyholed and keyhole), NETWORK (a DHT
# network id of the run's own), START (=$SECONDS at the start, for `log`).
# `fail` prints, shows the diagnostics of the daemons named in CURRENT and
# exits 1; `log` prints with the time since START. A script may define its
# own of either.
# Daemon NAME keeps state, control socket and log under $LAB_DIR/NAME and
# $LAB_DIR/NAME.log; its config file is $LAB_DIR/keyholed.toml.
# shellcheck disable=SC2317
if [[ -n ${_KEYHOLE_LAB_SH_LOADED:-} ]]; then return 0 2>/dev/null || exit 0; fi
_KEYHOLE_LAB_SH_LOADED=1

# shellcheck source=lab.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab.sh"

declare -gA DPID=()  # daemon name -> pid
CURRENT=()           # daemons whose diagnostics `fail` shows

# Defaults; a script that defined its own (before or after sourcing this) keeps it.
declare -F log >/dev/null ||
  log() { printf '[%s +%3ds] %s\n' "$(date +%H:%M:%S)" $((SECONDS - ${START:-0})) "$*"; }
declare -F fail >/dev/null || fail() {
  printf 'FAIL: %s\n' "$*"
  echo "---------------------------------------------------------- diagnostics"
  daemon_diagnostics "${CURRENT[@]}"
  exit 1
}

# khl_use_bin DIR: exits 77 unless root (lab_require_root), 1 unless DIR holds
# keyholed and keyhole; sets BIN to DIR's absolute path.
khl_use_bin() {
  lab_require_root
  BIN=${1:-}
  if [[ -z $BIN || ! -d $BIN ]]; then
    echo "FAIL: usage: $0 BIN_DIR (got '${BIN}')"
    exit 1
  fi
  BIN=$(cd "$BIN" && pwd)
  local tool
  for tool in keyholed keyhole; do
    [[ -x $BIN/$tool ]] || { echo "FAIL: $BIN/$tool not found"; exit 1; }
  done
}
KHL_LOG_LEVEL=${KHL_LOG_LEVEL:-debug}

# kh NAME ARGS...: the real CLI against daemon NAME's control socket (bounded).
kh() {
  local name=$1; shift
  timeout 15 "$BIN/keyhole" --socket "$LAB_DIR/$name/control.sock" "$@"
}
# kh_send_wait NAME ID TEXT SECONDS: send --wait, bounded by SECONDS + 10.
kh_send_wait() {
  timeout $(( $4 + 10 )) "$BIN/keyhole" --socket "$LAB_DIR/$1/control.sock" send "$2" "$3" --wait="$4"
}
# flat: JSON on stdin as one line.
flat() { tr -d '\n' | tr -s ' '; }
# json_str FIELD: a string field of the (flattened, single-object) JSON on stdin.
json_str() { flat | sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p"; }
# json_raw FIELD: a number/bool/null field of the JSON on stdin.
json_raw() { flat | sed -n "s/.*\"$1\": *\\([^,}\" ]*\\).*/\\1/p"; }
# peer_json NAME ID: NAME's "peers --json" entry for ID, on one line.
peer_json() { kh "$1" peers --json 2>/dev/null | flat | sed 's/}, *{/}\n{/g' | grep -F "\"$2\"" | head -1; }
# texts_in NAME: the texts of NAME's inbox, one a line, in presentation order.
texts_in() { kh "$1" inbox --json --limit 100000 | sed -n 's/.*"text": *"\([^"]*\)".*/\1/p'; }
# inbox_count_at_least NAME N
inbox_count_at_least() { [[ $(kh "$1" inbox --json --limit 100000 | grep -c '"text"') -ge $2 ]]; }
# count_log NAME REGEX [FROM_LINE]: matching lines of NAME's daemon log after line FROM_LINE.
count_log() { tail -n +$(( ${3:-0} + 1 )) "$LAB_DIR/$1.log" 2>/dev/null | grep -cE -- "$2" || true; }
log_lines() { wc -l <"$LAB_DIR/$1.log"; }
# status_field NAME FIELD: a field of NAME's status --json (string or raw).
status_field() {
  local st
  st=$(kh "$1" status --json 2>/dev/null) || return 1
  local v
  v=$(json_str "$2" <<<"$st")
  [[ -n $v ]] || v=$(json_raw "$2" <<<"$st")
  echo "$v"
}

# wait_until SECONDS WHAT CMD...: retries CMD every 0.1 s until it succeeds.
wait_until() {
  local seconds=$1 what=$2; shift 2
  local deadline=$(( $(date +%s%N) + seconds * 1000000000 ))
  while (( $(date +%s%N) < deadline )); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "timed out after ${seconds}s waiting for: $what"
}

# start_daemon NODE NAME ARGS...: keyholed inside lab node NODE (fresh state),
# bound to 0.0.0.0; waits until its control socket answers.
# KHL_IDENTITY=FILE: the daemon uses the identity key in FILE (saved there
# after its first start). A daemon restarted with its identity keeps its DHT
# node id, so a run of many short-lived daemons on a few hosts does not fill
# the lab's tiny DHT with dead nodes (each costs searches a timeout).
start_daemon() {
  local node=$1 name=$2; shift 2
  rm -rf "${LAB_DIR:?}/$name"
  mkdir -p "$LAB_DIR/$name"
  if [[ -n ${KHL_IDENTITY:-} && -f $KHL_IDENTITY ]]; then
    mkdir -p "$LAB_DIR/$name/state" && chmod 700 "$LAB_DIR/$name/state"
    cp "$KHL_IDENTITY" "$LAB_DIR/$name/state/identity.key" && chmod 600 "$LAB_DIR/$name/state/identity.key"
  fi
  [[ -f $LAB_DIR/keyholed.toml ]] || : >"$LAB_DIR/keyholed.toml"
  lab_spawn "$node" "$name.log" "$BIN/keyholed" --config "$LAB_DIR/keyholed.toml" \
    --state-dir "$LAB_DIR/$name/state" --control "$LAB_DIR/$name/control.sock" \
    --bind 0.0.0.0 --network "$NETWORK" --log-level "$KHL_LOG_LEVEL" "$@"
  DPID[$name]=$LAB_LAST_PID
  wait_until 10 "$name's control socket" kh "$name" status --json
  kill -0 "${DPID[$name]}" 2>/dev/null || fail "$name's daemon exited at start"
  if [[ -n ${KHL_IDENTITY:-} && ! -f $KHL_IDENTITY ]]; then
    cp "$LAB_DIR/$name/state/identity.key" "$KHL_IDENTITY" && chmod 600 "$KHL_IDENTITY"
  fi
}
# stop_daemon NAME [SIGNAL]: stops it by its PID; non-zero exit status is returned.
stop_daemon() {
  [[ -n ${DPID[$1]:-} ]] || return 0
  local rc=0
  lab_stop "${DPID[$1]}" "${2:-TERM}" || rc=$?
  unset "DPID[$1]"
  return $rc
}

# khl_two_nat_lab: the lab of the port-restricted test and benchmark:
#   boot  BOOT_IP 203.0.113.10   public host (bootstrap node, port BOOT_PORT 4222)
#   ra    RA_PUB  203.0.113.21   portrestricted router, LAN 10.1.1.0/24 -- ha HA_IP 10.1.1.2
#   rb    RB_PUB  203.0.113.22   portrestricted router, LAN 10.1.2.0/24 -- hb HB_IP 10.1.2.2
# Sets those variables, CHAT_PORT (4300) and NETWORK, runs lab_init and
# builds the lab (its log in $LAB_DIR/setup.log); fails the run otherwise.
khl_two_nat_lab() {
  NETWORK=$(( (RANDOM << 15 | RANDOM) + 1000 ))  # a DHT network of our own
  BOOT_IP=203.0.113.10 BOOT_PORT=4222 CHAT_PORT=4300
  RA_PUB=203.0.113.21 RB_PUB=203.0.113.22 HA_IP=10.1.1.2 HB_IP=10.1.2.2
  lab_init || fail "lab_init"
  {
    lab_public_host boot "$BOOT_IP" &&
    lab_nat_router ra portrestricted "$RA_PUB" 10.1.1 &&
    lab_nat_router rb portrestricted "$RB_PUB" 10.1.2 &&
    lab_host ha ra "$HA_IP" &&
    lab_host hb rb "$HB_IP"
  } >"$LAB_DIR/setup.log" 2>&1 || { cat "$LAB_DIR/setup.log"; fail "could not build the lab"; }
}

# daemon_diagnostics NAME...: status, peers and the interesting log lines.
daemon_diagnostics() {
  local n
  for n in "$@"; do
    if [[ -S $LAB_DIR/$n/control.sock ]]; then
      echo "--- $n status:"; kh "$n" status --json 2>&1 | flat; echo
      echo "--- $n peers:"; kh "$n" peers --json 2>&1 | flat; echo
    fi
    [[ -f $LAB_DIR/$n.log ]] || continue
    echo "--- $n.log: keyhole lines (NAT/connect/handshake/session/path/failed):"
    grep -E 'NAT|connect|handshake|session with|path|public endpoint|failed|birthday|warn|error' "$LAB_DIR/$n.log" |
      grep -v 'control: client' | tail -n 30
  done
  echo "(set LAB_KEEP_LOGS=1 to keep the whole lab folder)"
}
