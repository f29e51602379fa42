#!/usr/bin/env bash
# SIGHUP re-reads the config file: the new log level and keepalive interval
# take effect, a live session stays up (no new handshake, messages still
# flow), and a broken file is reported with file and line while the running
# settings stay.
source "$(dirname "$0")/lib.sh" "$1"

config="$KH_TMP/a.toml"
printf 'log_level = "info"\nkeepalive_interval_s = 15\n' >"$config"

kh_start boot 4370 --bootstrap-only
kh_start a 4371 --config "$config" --bootstrap 127.0.0.1:4370
kh_start b 4372 --bootstrap 127.0.0.1:4370
id_b=$(kh_id b)
kh_wait_for "a to find b" 30 kh a lookup "$id_b"
kh a send "$id_b" "before reload" --wait=20 >/dev/null || kh_fail "send --wait a->b failed"

json_raw() { sed -n "s/.*\"$1\": *\([^,}]*\).*/\1/p" | head -1; }
a_status() { kh a status --json | json_raw "$1"; }
handshakes_before=$(a_status handshakes_completed)
[[ $(a_status log_level) == '"info"' ]] || kh_fail "a does not start at log level info"
pid_a=$(cat "$KH_TMP/a/pid")

kh_log "SIGHUP with log_level = debug and keepalive_interval_s = 5"
printf 'log_level = "debug"\nkeepalive_interval_s = 5\n' >"$config"
kill -HUP "$pid_a"
kh_wait_for "a to apply the new log level" 5 bash -c "'$KH_BIN/keyhole' --socket '$KH_TMP/a/control.sock' status --json | grep -q '\"log_level\": *\"debug\"'"
[[ $(a_status keepalive_interval_s) == 5 ]] || kh_fail "keepalive interval not applied: $(a_status keepalive_interval_s)"
grep -q "reload of $config: log_level: \"info\" -> \"debug\"" "$KH_TMP/a/daemon.log" || kh_fail "the reload did not log what changed"
grep -q "reload of $config: keepalive_interval_s: 15 -> 5" "$KH_TMP/a/daemon.log" || kh_fail "the keepalive change was not logged"
# Debug lines appear now (keepalives go out every 5 s; any debug line will do).
kh_wait_for "a debug line in a's log" 15 grep -q ' debug ' "$KH_TMP/a/daemon.log"

kh_log "the session survived the reload"
kh a peers --json | grep -q '"state": *"up"' || kh_fail "a's session with b is not up after SIGHUP: $(kh a peers --json)"
kh a send "$id_b" "after reload" --wait=20 >/dev/null || kh_fail "send --wait after SIGHUP failed"
[[ $(a_status handshakes_completed) == "$handshakes_before" ]] ||
  kh_fail "the session was rebuilt (handshakes $handshakes_before -> $(a_status handshakes_completed))"

kh_log "a broken config is reported with file and line; the running settings stay"
printf 'log_level = "warn"\nkeepalive_interval_s = 0\n' >"$config"
kill -HUP "$pid_a"
kh_wait_for "the reload error in a's log" 5 grep -q "reload failed, keeping the running configuration: $config:2: key 'keepalive_interval_s'" "$KH_TMP/a/daemon.log"
[[ $(a_status log_level) == '"debug"' ]] || kh_fail "a bad file changed the log level to $(a_status log_level)"
[[ $(a_status keepalive_interval_s) == 5 ]] || kh_fail "a bad file changed the keepalive interval"
kill -0 "$pid_a" || kh_fail "a died on a bad config"
kh a send "$id_b" "after bad reload" --wait=20 >/dev/null || kh_fail "send --wait after a bad reload failed"

kh_log "a setting that needs a restart is named and kept"
printf 'log_level = "debug"\nkeepalive_interval_s = 5\nrecord_lifetime_s = 600\n' >"$config"
kill -HUP "$pid_a"
kh_wait_for "the restart warning" 5 grep -q "record_lifetime_s: 3600 -> 600 needs a restart" "$KH_TMP/a/daemon.log"
kh_log "PASS"
