#!/usr/bin/env bash
# accept_from = "contacts": a stranger's connect request is ignored and
# counted; once the stranger is a contact, its queued message goes through.
source "$(dirname "$0")/lib.sh" "$1"

kh_start boot 4350 --bootstrap-only
mkdir -p "$KH_TMP/c"
printf 'accept_from = "contacts"\n' >"$KH_TMP/c/keyhole.toml"
kh_start a 4351 --bootstrap 127.0.0.1:4350
kh_start c 4352 --bootstrap 127.0.0.1:4350 --config "$KH_TMP/c/keyhole.toml"
id_a=$(kh_id a); id_c=$(kh_id c)
kh_wait_for "a to find c" 30 kh a lookup "$id_c"

kh_log "a stranger is ignored"
set +e
kh a send "$id_c" "let me in" --wait=4 >/dev/null 2>&1; rc=$?
set -e
[[ $rc -ne 0 ]] || kh_fail "c accepted a message from a stranger"
ignored=$(kh c status --json | sed -n 's/.*"strangers_ignored": *\([0-9]*\).*/\1/p')
[[ "${ignored:-0}" -ge 1 ]] || kh_fail "c did not count the ignored stranger"
[[ $(kh c inbox --json | wc -l) -eq 0 ]] || kh_fail "c's inbox is not empty"

kh_log "once a contact, the queued message arrives"
kh c contacts add "$id_a" alice >/dev/null
kh c contacts list | grep -q "$id_a" || kh_fail "contact not listed"
kh_wait_for "c to receive a's queued message" 60 bash -c "'$KH_BIN/keyhole' --socket '$KH_TMP/c/control.sock' inbox | grep -q 'let me in'"
echo "PASS: stranger ignored ($ignored counted), contact accepted"
