#!/usr/bin/env bash
# The control socket is for the daemon's user and its control group only:
# the socket is mode 0660 and group-owned, a member of the group is
# accepted, another (non-root, non-member) user is refused. Needs root to
# create the temporary users; they are named kh*, and removed on exit.
set -euo pipefail

BIN=${1:?usage: $0 BIN_DIR}
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: socket_permissions_test needs root (it creates temporary users); CI runs as root"
  exit 77
fi
for tool in useradd userdel groupadd groupdel setpriv; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

suffix=$(( RANDOM % 90000 + 10000 ))
group="khg$suffix" owner="kho$suffix" member="khm$suffix" outsider="khx$suffix"
scratch=$(mktemp -d /tmp/kh-perm.XXXXXX)
daemon_pid=""
created_users=()
created_group=""

cleanup() {
  if [[ -n "$daemon_pid" ]]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  local user
  for user in "${created_users[@]}"; do
    userdel "$user" >/dev/null 2>&1 || echo "warning: could not delete user $user" >&2
  done
  [[ -n "$created_group" ]] && groupdel "$created_group" >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  [[ -f "$scratch/daemon.log" ]] && { echo "--- daemon log:"; tail -n 20 "$scratch/daemon.log"; } >&2
  exit 1
}
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

groupadd --system "$group"; created_group=$group
useradd --system --no-create-home --shell /usr/sbin/nologin --gid "$group" "$owner"; created_users+=("$owner")
useradd --system --no-create-home --shell /usr/sbin/nologin --groups "$group" "$member"; created_users+=("$member")
useradd --system --no-create-home --shell /usr/sbin/nologin "$outsider"; created_users+=("$outsider")

# The build folder may sit where other users cannot reach; run copies.
chmod 0755 "$scratch"
install -m 0755 "$BIN/keyholed" "$BIN/keyhole" "$scratch/"
install -d -m 0700 -o "$owner" -g "$group" "$scratch/state"
install -d -m 0755 -o "$owner" -g "$group" "$scratch/owned"
socket="$scratch/owned/run/control.sock"   # the daemon creates run/ (0750, group-owned)

as_user() { local user=$1; shift; setpriv --reuid "$user" --regid "$(id -g "$user")" --init-groups -- "$@"; }

log "keyholed as $owner, control group $group"
# setpriv execs keyholed, so $! is the daemon itself (a shell function in the
# background would leave a subshell in between).
setpriv --reuid "$owner" --regid "$group" --init-groups -- "$scratch/keyholed" --state-dir "$scratch/state" --control "$socket" --control-group "$group" \
  --bind 127.0.0.1 --port 0 --network $(( RANDOM + 1000 )) --bootstrap-only >"$scratch/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do [[ -S "$socket" ]] && break; kill -0 "$daemon_pid" 2>/dev/null || fail "keyholed exited"; sleep 0.1; done
[[ -S "$socket" ]] || fail "no control socket after 10 s"

[[ $(stat -c '%a %U %G' "$socket") == "660 $owner $group" ]] || fail "socket is $(stat -c '%a %U %G' "$socket"), want 660 $owner $group"
[[ $(stat -c '%a %G' "$scratch/owned/run") == "750 $group" ]] || fail "socket directory is $(stat -c '%a %G' "$scratch/owned/run"), want 750 $group"

log "the owner and a group member are accepted"
as_user "$owner" "$scratch/keyhole" --socket "$socket" status --json >/dev/null || fail "the daemon's own user was refused"
as_user "$member" "$scratch/keyhole" --socket "$socket" status --json >/dev/null || fail "group member $member was refused"

log "a user outside the group is refused"
if out=$(as_user "$outsider" "$scratch/keyhole" --socket "$socket" status --json 2>&1); then
  fail "$outsider (not in $group) could use the control socket: $out"
fi
[[ "$out" == *"ermission denied"* ]] || fail "unexpected refusal message for $outsider: $out"
kill -0 "$daemon_pid" || fail "the daemon died"
log "PASS"
