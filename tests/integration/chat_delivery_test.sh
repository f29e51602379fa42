#!/usr/bin/env bash
# End-to-end chat on loopback with real daemons: send --wait by ID, 1,000
# messages each way interleaved arrive exactly once and in order, messages to
# an offline peer wait for it, and kill -9 of either side loses nothing.
source "$(dirname "$0")/lib.sh" "$1"

kh_start boot 4340 --bootstrap-only
kh_start a 4341 --bootstrap 127.0.0.1:4340
kh_start b 4342 --bootstrap 127.0.0.1:4340
id_a=$(kh_id a); id_b=$(kh_id b)
kh_wait_for "a to find b" 30 kh a lookup "$id_b"

# texts_in NAME: the texts of NAME's inbox, one per line, in presentation order.
# (The 64 KiB message is left out: it is checked on its own.)
texts_in() { kh "$1" inbox --json | sed -n 's/.*"text": *"\([^"]*\)".*/\1/p' | awk 'length($0) < 1000'; }
# wait_for_count NAME N SECONDS: until NAME's inbox holds at least N messages.
wait_for_count() {
  kh_wait_for "$1 to hold $2 messages" "$3" bash -c "[[ \$('$KH_BIN/keyhole' --socket '$KH_TMP/$1/control.sock' inbox --json | wc -l) -ge $2 ]]"
}

kh_log "send --wait from a to b by ID"
kh a send "$id_b" "hello b" --wait=20 >/dev/null || kh_fail "send --wait a->b failed"
[[ "$(texts_in b)" == "hello b" ]] || kh_fail "b's inbox: $(texts_in b)"
kh a peers --json | grep -q '"path": *"direct"' || kh_fail "a's peer list shows no direct path: $(kh a peers --json)"

kh_log "a 64 KiB message (the largest allowed) arrives whole; one byte more is refused"
big=$(head -c 65536 /dev/zero | tr '\0' 'k')
kh a send "$id_b" "$big" --wait=20 >/dev/null || kh_fail "64 KiB message not delivered"
[[ $(kh b inbox --json | awk -v n=65536 'index($0, "\"text\":") && length($0) > n' | wc -l) -eq 1 ]] ||
  kh_fail "the 64 KiB message is not in b's inbox"
if kh a send "$id_b" "${big}k" >/dev/null 2>&1; then kh_fail "a 65537-byte message was accepted"; fi
kh a send "$id_b" "after big" --wait=20 >/dev/null || kh_fail "message after the big one not delivered"
[[ "$(texts_in b | tail -1)" == "after big" ]] || kh_fail "message after the big one missing"

kh_log "1,000 messages each way, interleaved"
for i in $(seq 1 1000); do
  kh a send "$id_b" "a-$i" >/dev/null
  kh b send "$id_a" "b-$i" >/dev/null
done
wait_for_count b 1003 120
wait_for_count a 1000 120
expected_b=$( { echo "hello b"; echo "after big"; for i in $(seq 1 1000); do echo "a-$i"; done; } )
expected_a=$(for i in $(seq 1 1000); do echo "b-$i"; done)
[[ "$(texts_in b)" == "$expected_b" ]] || kh_fail "b did not get a's 1,000 messages exactly once in order"
[[ "$(texts_in a)" == "$expected_a" ]] || kh_fail "a did not get b's 1,000 messages exactly once in order"

kh_log "messages to a stopped peer wait for it"
kh_stop b
for i in 1 2 3; do kh a send "$id_b" "offline-$i" >/dev/null; done
kh_start b 4342 --bootstrap 127.0.0.1:4340
wait_for_count b 1006 90
[[ "$(texts_in b | tail -3)" == $'offline-1\noffline-2\noffline-3' ]] || kh_fail "offline messages: $(texts_in b | tail -3)"

kh_log "kill -9 of the sender right after send returned"
kh a send "$id_b" "before-crash" >/dev/null
kh_stop a KILL
kh_start a 4341 --bootstrap 127.0.0.1:4340
wait_for_count b 1007 90
[[ "$(texts_in b | tail -1)" == "before-crash" ]] || kh_fail "message queued before the crash was lost"

kh_log "kill -9 of the receiver in the middle of 500 messages"
for i in $(seq 1 500); do
  kh a send "$id_b" "stream-$i" >/dev/null
  if [[ $i -eq 150 ]]; then kh_stop b KILL; fi
done
kh_start b 4342 --bootstrap 127.0.0.1:4340
wait_for_count b 1507 120
expected_stream=$(for i in $(seq 1 500); do echo "stream-$i"; done)
[[ "$(texts_in b | tail -500)" == "$expected_stream" ]] || kh_fail "the stream of 500 did not arrive exactly once in order"
[[ $(texts_in b | sort | uniq -d | wc -l) -eq 0 ]] || kh_fail "duplicates in b's inbox"

echo "PASS: send --wait, 2x1000 interleaved, offline peer, kill -9 of sender and receiver: nothing lost or doubled"
