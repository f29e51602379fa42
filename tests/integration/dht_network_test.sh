#!/usr/bin/env bash
# One --bootstrap-only node and 20 daemons on loopback: every daemon finds
# every other daemon's verified identity record by ID alone.
source "$(dirname "$0")/lib.sh" "$1"

daemons=20
kh_start boot 4300 --bootstrap-only
for i in $(seq 1 $daemons); do
  kh_start "d$i" $((4300 + i)) --bootstrap 127.0.0.1:4300
done

declare -A ids
for i in $(seq 1 $daemons); do ids[$i]=$(kh_id "d$i"); done
[[ $(printf '%s\n' "${ids[@]}" | sort -u | wc -l) -eq $daemons ]] || kh_fail "daemons do not have distinct IDs"

kh_log "waiting until every daemon has DHT nodes"
for i in $(seq 1 $daemons); do
  kh_wait_for "d$i to know DHT nodes" 30 bash -c "'$KH_BIN/keyhole' --socket '$KH_TMP/d$i/control.sock' status --json | grep -q '\"dht_nodes\": *[1-9]'"
done

kh_log "every daemon looks up every other one ($((daemons * (daemons - 1))) lookups)"
missing=0
for i in $(seq 1 $daemons); do
  for j in $(seq 1 $daemons); do
    [[ $i -eq $j ]] && continue
    found=""
    # A record put a moment ago may not have reached every storing node yet:
    # bounded retries, 5 at most.
    for attempt in 1 2 3 4 5; do
      if found=$(kh "d$i" lookup "${ids[$j]}" --json 2>/dev/null); then break; fi
      found=""
      sleep 1
    done
    if [[ -z "$found" ]]; then
      echo "d$i could not find d$j (${ids[$j]})"
      missing=$((missing + 1))
    elif [[ "$found" != *"\"${ids[$j]}\""* ]]; then
      kh_fail "d$i looked up ${ids[$j]} and got another record: $found"
    fi
  done
done
[[ $missing -eq 0 ]] || kh_fail "$missing lookups failed"

kh_log "the bootstrap node has no chat identity"
if kh boot id >/dev/null 2>&1; then kh_fail "bootstrap-only node answered 'id'"; fi

kh_log "a well-formed ID that nobody published is reported as not found"
kh_start ghost 4399   # no bootstrap: never reaches the network
ghost_id=$(kh_id ghost)
kh_stop ghost
set +e
output=$(kh d1 lookup "$ghost_id" 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$output" == *"not found"* ]] || kh_fail "lookup of an unpublished ID: rc=$rc, output: $output"

kh_log "a mistyped ID is rejected before any lookup"
typo="${ghost_id:0:10}$([[ ${ghost_id:10:1} == a ]] && echo b || echo a)${ghost_id:11}"
set +e
output=$(kh d1 lookup "$typo" 2>&1); rc=$?
set -e
[[ $rc -eq 2 && "$output" == *"checksum"* ]] || kh_fail "mistyped ID: rc=$rc, output: $output"
echo "PASS: $daemons daemons found each other ($((daemons * (daemons - 1))) lookups)"
