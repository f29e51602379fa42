#!/usr/bin/env bash
# Interoperability with Debian's stock dhtnode: it bootstraps keyholed daemons
# that then find each other, and a keyholed --bootstrap-only node serves
# stock dhtnodes that exchange a value through it.
source "$(dirname "$0")/lib.sh" "$1"

dhtnode_bin=$(command -v dhtnode || true)
[[ -n "$dhtnode_bin" ]] || kh_fail "dhtnode is not installed (tools/install-deps.sh installs it)"

kh_log "stock dhtnode as bootstrap for two keyholed daemons"
"$dhtnode_bin" -s -p 4320 -n "$KH_NETWORK" >"$KH_TMP/dhtnode-boot.log" 2>&1 &
KH_PIDS+=("$!")
kh_start a 4324 --bootstrap 127.0.0.1:4320
kh_start b 4325 --bootstrap 127.0.0.1:4320
kh_wait_for "a to find b via dhtnode" 30 kh a lookup "$(kh_id b)"
kh_wait_for "b to find a via dhtnode" 30 kh b lookup "$(kh_id a)"

kh_log "keyholed --bootstrap-only serving two stock dhtnodes"
kh_start boot 4321 --bootstrap-only
token="interop-$RANDOM$RANDOM"
# Interactive dhtnodes read commands from stdin; each runs a bounded script.
( sleep 3; echo "p keyhole-interop $token"; sleep 8; echo "x" ) |
  timeout 20 "$dhtnode_bin" -p 4322 -n "$KH_NETWORK" -b 127.0.0.1:4321 >"$KH_TMP/dhtnode-put.log" 2>&1 &
putter=$!
KH_PIDS+=("$putter")
( sleep 6; echo "g keyhole-interop"; sleep 4; echo "x" ) |
  timeout 20 "$dhtnode_bin" -p 4323 -n "$KH_NETWORK" -b 127.0.0.1:4321 >"$KH_TMP/dhtnode-get.log" 2>&1 &
getter=$!
KH_PIDS+=("$getter")
wait "$getter" || true
wait "$putter" || true
grep -q "$token" "$KH_TMP/dhtnode-get.log" ||
  kh_fail "the second dhtnode did not get the first one's value through keyholed: $(tail -5 "$KH_TMP/dhtnode-get.log")"
nodes=$(kh boot status --json | sed -n 's/.*"dht_nodes": *\([0-9]*\).*/\1/p')
[[ "${nodes:-0}" -ge 1 ]] || kh_fail "bootstrap node reports no DHT nodes"
echo "PASS: dhtnode bootstraps keyholed, keyholed bootstraps dhtnode"
