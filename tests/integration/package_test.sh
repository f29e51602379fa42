#!/usr/bin/env bash
# The Debian package: builds keyhole_<version>_amd64.deb with CPack from the
# build folder, checks what it installs (dpkg -x), verifies the systemd units
# with systemd-analyze, then starts the packaged keyholed the way
# keyholed.service does (same flags, a dedicated user, NOTIFY_SOCKET and
# WATCHDOG_USEC set) and checks READY=1, WATCHDOG=1 and, on SIGTERM,
# STOPPING=1. Everything it creates is named kh* and removed on exit. As
# root it runs the daemon as a temporary user; otherwise as the caller.
set -euo pipefail

BIN=${1:?usage: $0 BIN_DIR}
BIN=$(cd "$BIN" && pwd)
BUILD=$(dirname "$BIN")
for tool in cpack dpkg-deb systemd-analyze; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (tools/install-deps.sh)"; exit 77; }
done
[[ -f "$BUILD/CPackConfig.cmake" ]] || { echo "SKIP: $BUILD has no CPackConfig.cmake"; exit 77; }
python=$(command -v /usr/bin/python3 || command -v python3 || true)
[[ -n "$python" ]] || { echo "SKIP: python3 is not installed"; exit 77; }

scratch=$(mktemp -d /tmp/kh-pkg.XXXXXX)
daemon_pid="" listener_pid="" created_user="" created_group=""
cleanup() {
  local pid
  for pid in "$daemon_pid" "$listener_pid"; do
    [[ -n "$pid" ]] || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [[ -n "$created_user" ]] && userdel "$created_user" >/dev/null 2>&1 || true
  [[ -n "$created_group" ]] && groupdel "$created_group" >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  for file in "$scratch/daemon.log" "$scratch/notify.log" "$scratch/cpack.log"; do
    [[ -f "$file" ]] && { echo "--- $file:"; tail -n 25 "$file"; } >&2
  done
  exit 1
}
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# --- build ---------------------------------------------------------------------
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$BUILD/CPackConfig.cmake")
[[ -n "$version" ]] || fail "no CPACK_PACKAGE_VERSION in $BUILD/CPackConfig.cmake"
log "cpack: keyhole $version"
# The binaries were built by the caller; CPack only installs and packs them.
(cd "$scratch" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$scratch/out" >"$scratch/cpack.log" 2>&1) ||
  fail "cpack failed"
arch=$(dpkg --print-architecture)
deb="$scratch/out/keyhole_${version}_${arch}.deb"
[[ -f "$deb" ]] || fail "no $deb; cpack made: $(ls "$scratch/out")"

# --- contents ------------------------------------------------------------------
dpkg-deb -f "$deb" Depends | grep -q adduser || fail "Depends lacks adduser: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$deb" Depends | grep -q libsystemd0 || fail "Depends lacks libsystemd0 (shlibdeps): $(dpkg-deb -f "$deb" Depends)"
mkdir "$scratch/control"
dpkg-deb -e "$deb" "$scratch/control"
grep -qx /etc/keyhole/keyhole.toml "$scratch/control/conffiles" || fail "keyhole.toml is not a conffile"
for script in postinst prerm postrm; do
  [[ -x "$scratch/control/$script" ]] || fail "no executable $script"
done
grep -q 'adduser --system' "$scratch/control/postinst" || fail "postinst does not create the keyhole user"
grep -q '/run/systemd/system' "$scratch/control/postinst" || fail "postinst starts the service without checking for systemd"

root="$scratch/root"
dpkg -x "$deb" "$root"
for file in usr/bin/keyholed usr/bin/keyhole etc/keyhole/keyhole.toml \
            lib/systemd/system/keyholed.service lib/systemd/system/keyholed-bootstrap.service \
            lib/systemd/system/keyholed-relay.service usr/lib/sysusers.d/keyhole.conf \
            usr/share/doc/keyhole/operations.md; do
  [[ -e "$root/$file" ]] || fail "the package lacks /$file"
done
"$root/usr/bin/keyholed" --version | grep -qx "keyholed $version" || fail "keyholed --version: $("$root/usr/bin/keyholed" --version)"
# Every setting is in the shipped file, commented or set.
for key in state_dir port bind_address bootstrap dht_network control_socket control_group relay \
           bootstrap_only log_level accept_from keepalive_interval_s lookup_timeout_s record_lifetime_s metrics_port; do
  grep -Eq "^#?$key = " "$root/etc/keyhole/keyhole.toml" || fail "keyhole.toml does not list $key"
done

unit="$root/lib/systemd/system/keyholed.service"
for line in Type=notify WatchdogSec= StateDirectory=keyhole RuntimeDirectory=keyhole User=keyhole Group=keyhole \
            NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" "CapabilityBoundingSet=" ExecReload=; do
  grep -q "^$line" "$unit" || fail "keyholed.service lacks $line"
done
grep -qx "CapabilityBoundingSet=" "$unit" || fail "keyholed.service keeps capabilities"
grep -qx "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" "$root/lib/systemd/system/keyholed-relay.service" ||
  fail "the relay unit cannot bind port 443"
grep -q -- "--bootstrap-only" "$root/lib/systemd/system/keyholed-bootstrap.service" || fail "the bootstrap unit is not bootstrap-only"
grep -q -- "--relay" "$root/lib/systemd/system/keyholed-relay.service" || fail "the relay unit does not relay"

# --- systemd-analyze verify ------------------------------------------------------
# verify checks that ExecStart's binary exists; point it at the extracted one.
mkdir "$scratch/units"
for name in keyholed keyholed-bootstrap keyholed-relay; do
  sed -e "s|/usr/bin/keyholed|$root/usr/bin/keyholed|" \
      -e "s|Documentation=file:/usr/share/doc|Documentation=file:$root/usr/share/doc|" \
      "$root/lib/systemd/system/$name.service" >"$scratch/units/$name.service"
done
log "systemd-analyze verify"
if ! (cd "$scratch/units" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
        keyholed.service keyholed-bootstrap.service keyholed-relay.service) >"$scratch/verify.log" 2>&1; then
  cat "$scratch/verify.log" >&2
  fail "systemd-analyze verify found problems"
fi
# Without PID 1 being systemd, verify may warn about the missing manager bus; anything naming our units is a problem.
if grep -E 'keyholed[-a-z]*\.service' "$scratch/verify.log" | grep -v 'Failed to connect' >&2; then
  fail "systemd-analyze verify complained about the units"
fi

# --- start it the way the unit does -------------------------------------------
exec_start=$(sed -n 's/^ExecStart=//p' "$root/lib/systemd/system/keyholed.service")
if [[ $(id -u) -eq 0 ]]; then
  suffix=$(( RANDOM % 90000 + 10000 ))
  created_group="khsg$suffix"; groupadd --system "$created_group"
  created_user="khsu$suffix"; useradd --system --no-create-home --shell /usr/sbin/nologin --gid "$created_group" "$created_user"
  run_user=$created_user run_group=$created_group
else
  run_user=$(id -un) run_group=$(id -gn)
fi
chmod 0755 "$scratch"
# What StateDirectory= and RuntimeDirectory= would make.
install -d -m 0700 -o "$run_user" -g "$run_group" "$scratch/state"
install -d -m 0750 -o "$run_user" -g "$run_group" "$scratch/run"
args=${exec_start//\/usr\/bin\/keyholed/$root/usr/bin/keyholed}
args=${args//\/etc\/keyhole/$root/etc/keyhole}
args=${args//\/var\/lib\/keyhole/$scratch/state}
args=${args//\/run\/keyhole/$scratch/run}
args=${args//--control-group keyhole/--control-group $run_group}
read -r -a command <<<"$args"
# Loopback only: the shipped config's public bootstrap is replaced.
command+=(--bind 127.0.0.1 --port 0 --bootstrap 127.0.0.1:9 --network $(( RANDOM + 1000 )))

# The notification socket systemd would listen on.
notify="$scratch/notify.sock"
"$python" - "$notify" "$scratch/notify.log" <<'PY' &
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
with open(log, "a", buffering=1) as out:
    out.write("listening\n")
    while True:
        data = s.recv(4096).decode(errors="replace")
        for line in data.split("\n"):
            out.write(line + "\n")
PY
listener_pid=$!
for _ in $(seq 1 50); do grep -q listening "$scratch/notify.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$scratch/notify.log" || fail "the notification listener did not start"

log "keyholed as $run_user: ${command[*]}"
run_as=()
[[ $(id -u) -eq 0 ]] && run_as=(setpriv --reuid "$run_user" --regid "$run_group" --init-groups --no-new-privs --)
NOTIFY_SOCKET=$notify WATCHDOG_USEC=2000000 JOURNAL_STREAM=0:0 "${run_as[@]}" "${command[@]}" >"$scratch/daemon.log" 2>&1 &
daemon_pid=$!

wait_for_line() {  # wait_for_line PATTERN SECONDS [exit-ok]
  local deadline=$(( $(date +%s) + $2 ))
  while (( $(date +%s) < deadline )); do
    grep -q "$1" "$scratch/notify.log" && return 0
    [[ -n "${3:-}" ]] || kill -0 "$daemon_pid" 2>/dev/null || fail "keyholed exited before sending $1"
    sleep 0.1
  done
  fail "no $1 from keyholed within $2 s"
}
wait_for_line '^READY=1$' 15
grep -q '^STATUS=ID ' "$scratch/notify.log" || fail "READY=1 came without a STATUS line"
socket="$scratch/run/control.sock"
[[ -S "$socket" ]] || fail "READY=1 came before the control socket existed"
[[ $(stat -c '%a %G' "$socket") == "660 $run_group" ]] || fail "control socket is $(stat -c '%a %G' "$socket")"
"${run_as[@]}" "$root/usr/bin/keyhole" --socket "$socket" status --json | grep -q '"id"' || fail "status over the socket failed"
wait_for_line '^WATCHDOG=1$' 5

log "SIGHUP: RELOADING=1 then READY=1 again"
kill -HUP "$daemon_pid"
wait_for_line '^RELOADING=1$' 5

log "SIGTERM: STOPPING=1"
kill -TERM "$daemon_pid"
wait_for_line '^STOPPING=1$' 10 exit-ok
for _ in $(seq 1 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$daemon_pid" 2>/dev/null && fail "keyholed did not exit on SIGTERM"
wait "$daemon_pid" && rc=0 || rc=$?
daemon_pid=""
[[ $rc -eq 0 ]] || fail "keyholed exited with $rc on SIGTERM"
[[ ! -e "$socket" ]] || fail "the control socket was left behind"
log "PASS"
