#!/usr/bin/env bash
# Hostile input never takes a daemon down: random datagrams, msgpack-looking
# garbage and magic-prefixed keyhole packets on its UDP port, and bad lines on
# its control socket. Afterwards it still answers and is still found in the DHT.
source "$(dirname "$0")/lib.sh" "$1"

kh_start boot 4330 --bootstrap-only
kh_start a 4331 --bootstrap 127.0.0.1:4330
kh_start b 4332 --bootstrap 127.0.0.1:4330
id_a=$(kh_id a)
kh_wait_for "b to find a" 30 kh b lookup "$id_a"

# Each datagram is assembled in a file first: cat then sends it in one write,
# so one file is one datagram.
datagram="$KH_TMP/datagram"
send() { cat "$datagram" >/dev/udp/127.0.0.1/4331; }
kh_log "sending 1500 hostile datagrams to a"
for i in $(seq 1 500); do
  head -c $(( RANDOM % 1400 + 1 )) /dev/urandom >"$datagram"; send
  # Looks like an OpenDHT message (msgpack map) but is garbage.
  { printf '\x8%x' $(( RANDOM % 16 )); head -c $(( RANDOM % 300 )) /dev/urandom; } >"$datagram"; send
  # Carries keyhole's magic prefix: goes to the transport layer.
  { printf 'kh\x01'; head -c $(( RANDOM % 200 + 1 )) /dev/urandom; } >"$datagram"; send
done

kh_log "a still answers and still counts what it dropped"
kh_wait_for "a to answer" 5 kh a status
dropped=$(kh a status --json | sed -n 's/.*"keyhole_packets_dropped": *\([0-9]*\).*/\1/p')
# UDP on loopback can drop under load, but nearly all 500 must have arrived.
[[ "${dropped:-0}" -ge 400 ]] || kh_fail "a counted only ${dropped:-0} of 500 keyhole packets"
kh_wait_for "b to still find a" 30 kh b lookup "$id_a"

kh_log "forged relay deliveries (from no relay a uses) carrying connect requests are refused"
for i in $(seq 1 100); do
  # relay_deliver (0x36), channel 7, inner: a handshake packet (0x10) with a random "Noise message".
  { printf 'kh\x01\x36\x00\x00\x00\x07kh\x01\x10\x01'; head -c $(( RANDOM % 200 + 48 )) /dev/urandom; } >"$datagram"; send
done
refused_deliveries() { kh a status --json | sed -n 's/.*"relay_deliveries_refused": *\([0-9]*\).*/\1/p'; }
enough_refused() { [[ $(refused_deliveries) -ge 80 ]]; }
kh_wait_for "a to count at least 80 of 100 forged relay deliveries as refused" 5 enough_refused

kh_log "bad control requests get JSON errors"
set +e
out=$(kh a request '{"cmd":"no-such-command"}' 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$out" == *"unknown command"* ]] || kh_fail "unknown command: rc=$rc out=$out"
set +e
out=$(kh a request '{"cmd":"lookup","peer":"not-an-id"}' 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$out" == *"invalid ID"* ]] || kh_fail "bad lookup argument: rc=$rc out=$out"
set +e
out=$(kh a request '{"cmd":"lookup"}' 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$out" == *"peer"* ]] || kh_fail "missing argument: rc=$rc out=$out"
kh a status >/dev/null || kh_fail "a stopped answering after bad requests"
kill -0 "$(cat "$KH_TMP/a/pid")" || kh_fail "a died"
echo "PASS: a survived 1500 hostile datagrams (dropped $dropped keyhole packets), refused $(refused_deliveries) forged relay deliveries, and bad requests"
