# Shared helpers for integration tests: start real keyholed processes on
# loopback, talk to them with the real `keyhole` client, and stop exactly the
# processes this test started, also on failure.
#
# Usage in a test:  source "$(dirname "$0")/lib.sh" "$1"
set -euo pipefail

KH_BIN=${1:?usage: $0 BIN_DIR}
KH_BIN=$(cd "$KH_BIN" && pwd)
KH_TMP=$(mktemp -d /tmp/kh-test.XXXXXX)
KH_PIDS=()
# Each test gets its own DHT network id, so nothing crosses between tests.
KH_NETWORK=$(( (RANDOM << 15 | RANDOM) + 1000 ))

kh_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
kh_fail() {
  printf 'FAIL: %s\n' "$*" >&2
  kh_dump_logs >&2
  exit 1
}
kh_dump_logs() {
  local log
  for log in "$KH_TMP"/*/daemon.log; do
    [[ -f "$log" ]] || continue
    printf '\n--- last lines of %s ---\n' "$log"
    tail -n 15 "$log"
  done
}

kh_cleanup() {
  local pid
  for pid in "${KH_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${KH_PIDS[@]}"; do
    # Bounded wait, then force.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$KH_TMP"
}
trap kh_cleanup EXIT
# A killed test still runs its cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT

# kh_start NAME PORT [keyholed flags...]: starts a daemon with state in
# $KH_TMP/NAME, bound to 127.0.0.1:PORT, and waits until its control socket
# answers. Sets KH_LAST_PID.
# All daemons share 127.0.0.1 with a port each: OpenDHT replaces a loopback
# address it hears of with the sender's IP, so distinct 127.x addresses on one
# port would be mistaken for the node that mentioned them.
kh_start() {
  local name=$1 port=$2; shift 2
  local dir="$KH_TMP/$name"
  mkdir -p "$dir"
  "$KH_BIN/keyholed" --state-dir "$dir/state" --control "$dir/control.sock" \
    --bind 127.0.0.1 --port "$port" --network "$KH_NETWORK" "$@" >>"$dir/daemon.log" 2>&1 &
  KH_LAST_PID=$!
  KH_PIDS+=("$KH_LAST_PID")
  echo "$KH_LAST_PID" >"$dir/pid"
  kh_wait_for "$name control socket" 10 kh "$name" status
}

# kh_stop NAME [SIGNAL]: stops the daemon NAME by the pid we started it with.
kh_stop() {
  local name=$1 signal=${2:-TERM}
  local pid
  pid=$(cat "$KH_TMP/$name/pid")
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kh_fail "daemon $name (pid $pid) did not stop"; fi
  wait "$pid" 2>/dev/null || true
}

# kh NAME ARGS...: runs the control client against daemon NAME.
kh() {
  local name=$1; shift
  "$KH_BIN/keyhole" --socket "$KH_TMP/$name/control.sock" "$@"
}

# kh_wait_for WHAT SECONDS COMMAND...: retries COMMAND (quietly) every 0.2 s until
# it succeeds or SECONDS pass.
kh_wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$(( $(date +%s%N) + seconds * 1000000000 ))
  while (( $(date +%s%N) < deadline )); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  kh_fail "timed out after ${seconds}s waiting for: $what"
}

kh_id() { kh "$1" id; }

kh_require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: $1 needs root (network namespaces); CI runs as root"
    exit 77
  fi
}
