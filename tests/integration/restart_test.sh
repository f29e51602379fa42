#!/usr/bin/env bash
# A restarted daemon keeps its ID and publishes a record with a higher
# sequence; a second daemon on the same state dir refuses to start.
source "$(dirname "$0")/lib.sh" "$1"

kh_start boot 4310 --bootstrap-only
kh_start a 4311 --bootstrap 127.0.0.1:4310
kh_start b 4312 --bootstrap 127.0.0.1:4310
id_a=$(kh_id a)

sequence_seen_by_b() {
  kh b lookup "$id_a" --json | sed -n 's/.*"sequence": *\([0-9]*\).*/\1/p'
}
kh_wait_for "b to find a" 30 kh b lookup "$id_a"
first=$(sequence_seen_by_b)
[[ -n "$first" ]] || kh_fail "no sequence in a's record"

kh_log "a second daemon on a's state dir must refuse to start"
set +e
"$KH_BIN/keyholed" --state-dir "$KH_TMP/a/state" --control "$KH_TMP/a2.sock" --bind 127.0.0.1 \
  --port 4313 --network "$KH_NETWORK" >"$KH_TMP/second.log" 2>&1 &
second_pid=$!
KH_PIDS+=("$second_pid")
for _ in $(seq 1 50); do kill -0 "$second_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$second_pid" 2>/dev/null; then kh_fail "second daemon on the same state dir is still running"; fi
wait "$second_pid"; rc=$?
set -e
[[ $rc -ne 0 ]] || kh_fail "second daemon exited 0"
grep -q "is using the state directory" "$KH_TMP/second.log" || kh_fail "second daemon gave no clear reason: $(cat "$KH_TMP/second.log")"

kh_log "restart a: same ID, higher sequence"
kh_stop a
[[ ! -e "$KH_TMP/a/control.sock" ]] || kh_fail "control socket left behind after SIGTERM"
kh_start a 4311 --bootstrap 127.0.0.1:4310
[[ $(kh_id a) == "$id_a" ]] || kh_fail "ID changed across restart"
later=0
for _ in $(seq 1 30); do
  later=$(sequence_seen_by_b || echo 0)
  [[ -n "$later" && "$later" -gt "$first" ]] && break
  sleep 1
done
[[ "$later" -gt "$first" ]] || kh_fail "sequence did not go up after restart ($first -> $later)"
echo "PASS: ID kept, sequence $first -> $later, second daemon refused"
