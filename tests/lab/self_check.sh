#!/usr/bin/env bash
# Proves that every NAT lab router behaves as named, before any keyhole test
# trusts it.   usage: tests/lab/self_check.sh [BIN_DIR]
# BIN_DIR holds udp_probe (falls back to $UDP_PROBE). Needs root (exit 77
# otherwise). Prints PASS/FAIL per check, exits 1 on any FAIL.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab.sh
source "$HERE/lab.sh"
lab_require_root

if [[ -n ${1:-} ]]; then UDP_PROBE="$1/udp_probe"; fi
UDP_PROBE=${UDP_PROBE:-}
if [[ -z $UDP_PROBE || ! -x $UDP_PROBE ]]; then
  echo "FAIL: udp_probe not found: pass BIN_DIR (holding udp_probe) or set UDP_PROBE (got '${UDP_PROBE}')"
  exit 1
fi
UDP_PROBE=$(cd "$(dirname "$UDP_PROBE")" && pwd)/$(basename "$UDP_PROBE")
export UDP_PROBE

START=$SECONDS
NPASS=0
NFAIL=0
pass() { echo "PASS: $*"; NPASS=$((NPASS + 1)); }
fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }
info() { echo "INFO: $*"; }
die() { echo "FAIL: setup: $*"; exit 1; }

# ---------------------------------------------------------------- the lab
E1=203.0.113.1      # echo server 1
E2=198.51.100.2     # echo server 2: a different public IP (and subnet)
EP=3478             # echo port
declare -A RPUB=([ropen]=203.0.113.10 [rfc]=203.0.113.11 [rpr]=203.0.113.12
                 [rsym]=203.0.113.13 [rblk]=203.0.113.14 [rto]=203.0.113.15
                 [rloss]=203.0.113.16 [rdly]=203.0.113.17)

setup() {
  set -e
  lab_init
  lab_public_host echo1 $E1
  lab_public_host echo2 $E2
  lab_nat_router ropen open           "${RPUB[ropen]}"  10.0.10
  lab_nat_router rfc   fullcone       "${RPUB[rfc]}"    10.0.11
  lab_nat_router rpr   portrestricted "${RPUB[rpr]}"    10.0.12
  lab_nat_router rsym  symmetric      "${RPUB[rsym]}"   10.0.13
  lab_nat_router rblk  udpblocked     "${RPUB[rblk]}"   10.0.14
  lab_nat_router rto   portrestricted "${RPUB[rto]}"    10.0.15
  lab_nat_router rloss portrestricted "${RPUB[rloss]}"  10.0.16
  lab_nat_router rdly  portrestricted "${RPUB[rdly]}"   10.0.17
  lab_host hopen ropen 10.0.10.2
  lab_host hfc   rfc   10.0.11.2
  lab_host hpr   rpr   10.0.12.2
  lab_host hpr2  rpr   10.0.12.3
  lab_host hsym  rsym  10.0.13.2
  lab_host hblk  rblk  10.0.14.2
  lab_host hto   rto   10.0.15.2
  lab_host hloss rloss 10.0.16.2
  lab_host hdly  rdly  10.0.17.2
  lab_echo_server echo1 $EP 150
  lab_echo_server echo2 $EP 150
  set +e
}
setup || die "could not build the lab"
lab_info
echo "setup took $((SECONDS - START)) s"

# ---------------------------------------------------------------- helpers
# ask NODE ARGS...: runs udp_probe ask, prints the "seen" addresses, one a line.
ask() {
  local node=$1; shift
  lab_probe "$node" ask "$@" | sed -n 's/.* -> seen //p'
}

# Unsolicited-inbound probes: listen_begin starts a listener and waits until
# it is bound (sets L_PID, L_LOG); listen_end waits for it and prints what it
# got ("got from IP:PORT" or nothing).
LISTEN_S=3   # listener lifetime = how long a "blocked" verdict waits
L_SEQ=0
listen_begin() { # NODE PORT
  L_SEQ=$((L_SEQ + 1))
  L_LOG="listen-$1-$2-$L_SEQ.log"
  lab_spawn "$1" "$L_LOG" "$UDP_PROBE" listen "$2" --timeout "$LISTEN_S"
  L_PID=$LAB_LAST_PID
  lab_wait_log "$L_LOG" "^listening on $2" 5 || return 1
}
listen_end() { # PID LOG
  lab_wait_pid "$1" $((LISTEN_S + 5)) || true
  sed -n 's/^got from //p' "$LAB_DIR/$2"
}

# ------------------------------------------------- conntrack timeout, phase 1
# rto gets a 5 s UDP timeout, rpr 60 s (the control). Both hosts open a
# mapping towards echo1:6000/6001 and see a reply admitted; phase 2 (at the
# end, after >= 8 s idle) checks whether replies still get in.
lab_conntrack_udp_timeout rto 5 || die "timeout knob"
lab_conntrack_udp_timeout rpr 60 || die "timeout knob"
declare -A TO_MAP TO_T0
to_phase1() { # HOST ROUTER ECHOPORT HOSTPORT
  local host=$1 router=$2 eport=$3 hport=$4 pid log got
  listen_begin echo1 "$eport" || return 1
  pid=$L_PID log=$L_LOG
  lab_probe "$host" send "$E1:$eport" --bind-port "$hport"
  got=$(listen_end "$pid" "$log")
  [[ -n $got ]] || { fail "timeout($router): echo1 never heard $host"; return 1; }
  TO_MAP[$router]=$got
  listen_begin "$host" "$hport" || return 1
  pid=$L_PID log=$L_LOG
  lab_probe echo1 send "$got" --bind-port "$eport"
  got=$(listen_end "$pid" "$log")
  TO_T0[$router]=$SECONDS
  if [[ $got == "$E1:$eport" ]]; then
    info "timeout($router): fresh mapping ${TO_MAP[$router]} admits echo1's reply"
  else
    fail "timeout($router): fresh mapping ${TO_MAP[$router]} did not admit echo1's reply (got '${got}')"
    return 1
  fi
}
to_phase1 hto rto 6000 43000 && TO_OK_rto=1 || TO_OK_rto=
to_phase1 hpr rpr 6001 43001 && TO_OK_rpr=1 || TO_OK_rpr=

# ---------------------------------------------------------------- mapping
# One socket (port 40000) asks both echo servers for the address they saw.
for h in hopen hfc hpr hsym; do
  mapfile -t SEEN < <(ask "$h" --bind-port 40000 "$E1:$EP" "$E2:$EP")
  r=${LAB_ROUTER_OF[$h]}
  pub=${RPUB[$r]}
  what="mapping(${LAB_TYPE[$r]}): echo1 saw ${SEEN[0]:-nothing}, echo2 saw ${SEEN[1]:-nothing}"
  if [[ ${#SEEN[@]} -ne 2 ]]; then fail "$what"; continue; fi
  case ${LAB_TYPE[$r]} in
    open)
      [[ ${SEEN[0]} == "$pub:40000" && ${SEEN[1]} == "$pub:40000" ]] && pass "$what (its own address)" || fail "$what (want $pub:40000 twice)" ;;
    fullcone | portrestricted)
      if [[ ${SEEN[0]} == "${SEEN[1]}" && ${SEEN[0]%:*} == "$pub" ]]; then
        pass "$what (endpoint-independent$([[ ${SEEN[0]} == "$pub:40000" ]] && echo ', source port kept'))"
      else
        fail "$what (want the same $pub:PORT from both)"
      fi ;;
    symmetric)
      if [[ ${SEEN[0]%:*} == "$pub" && ${SEEN[1]%:*} == "$pub" && ${SEEN[0]} != "${SEEN[1]}" ]]; then
        pass "$what (endpoint-dependent)"
      else
        fail "$what (want two different ports on $pub)"
      fi ;;
  esac
done

# ---------------------------------------------------------------- filtering
# Each NAT host sends to echo1 from port 41000, then strangers send to the
# mapped address: (a) echo2 = another IP, (b) echo1's IP from another port.
declare -A FMAP
for h in hfc hpr hsym; do
  FMAP[$h]=$(ask "$h" --bind-port 41000 "$E1:$EP")
  [[ -n ${FMAP[$h]} ]] || fail "filtering($h): no mapping, echo1 did not answer"
done
filter_round() { # LABEL STRANGER_NODE STRANGER_IP STRANGER_PORT
  local label=$1 snode=$2 sip=$3 sport=$4 h got want
  declare -A pids logs
  for h in hfc hpr hsym; do
    [[ -n ${FMAP[$h]} ]] || continue
    listen_begin "$h" 41000 || { fail "filtering($h): listener"; continue; }
    pids[$h]=$L_PID logs[$h]=$L_LOG
  done
  for h in "${!pids[@]}"; do
    lab_probe "$snode" send "${FMAP[$h]}" --bind-port "$sport" --count 2
  done
  for h in hfc hpr hsym; do
    [[ -n ${pids[$h]:-} ]] || continue
    got=$(listen_end "${pids[$h]}" "${logs[$h]}")
    r=${LAB_ROUTER_OF[$h]}
    if [[ ${LAB_TYPE[$r]} == fullcone ]]; then
      want="$sip:$sport"
      [[ $got == "$want" ]] && pass "filtering(fullcone): $label -> ${FMAP[$h]} arrived from $got" ||
        fail "filtering(fullcone): $label -> ${FMAP[$h]} should arrive, got '${got}'"
    else
      [[ -z $got ]] && pass "filtering(${LAB_TYPE[$r]}): $label -> ${FMAP[$h]} blocked" ||
        fail "filtering(${LAB_TYPE[$r]}): $label -> ${FMAP[$h]} should be blocked, arrived from $got"
    fi
  done
}
filter_round "echo2 ($E2:5000, other IP)" echo2 $E2 5000
filter_round "echo1 from another port ($E1:5001)" echo1 $E1 5001

# ---------------------------------------------------------------- udpblocked
out=$(lab_probe hblk ask --tries 2 --timeout-ms 400 "$E1:$EP")
rc=$?
[[ $rc -ne 0 && $out == *"no answer"* ]] && pass "udpblocked: UDP ask got no answer ($out)" ||
  fail "udpblocked: UDP ask should fail, got rc=$rc '$out'"
out=$(lab_probe hblk tcp-ask "$E1:$EP")
rc=$?
[[ $rc -eq 0 && $out == *"seen ${RPUB[rblk]}:"* ]] && pass "udpblocked: TCP still works, masqueraded ($out)" ||
  fail "udpblocked: TCP to echo1 should work via ${RPUB[rblk]}, got rc=$rc '$out'"

# ---------------------------------------------------------------- hairpin
HMAP=$(ask hpr --bind-port 42000 "$E1:$EP")
if [[ -z $HMAP ]]; then
  fail "hairpin: hpr got no mapping from echo1"
else
  listen_begin hpr 42000
  pid=$L_PID log=$L_LOG
  lab_probe hpr2 send "$HMAP" --bind-port 42001 --count 2
  got=$(listen_end "$pid" "$log")
  [[ -z $got ]] && pass "no hairpin: hpr2 -> hpr's public mapping $HMAP did not arrive" ||
    fail "no hairpin: hpr2 -> $HMAP arrived from $got (router hairpins)"
  # Control: the listener works and the LAN is a plain bridge.
  listen_begin hpr 42000
  pid=$L_PID log=$L_LOG
  lab_probe hpr2 send "$(lab_ip hpr):42000" --bind-port 42001
  got=$(listen_end "$pid" "$log")
  [[ $got == "$(lab_ip hpr2):42001" ]] && pass "LAN control: hpr2 -> hpr's LAN address arrived from $got" ||
    fail "LAN control: hpr2 -> $(lab_ip hpr):42000 should arrive, got '${got}'"
fi

# ---------------------------------------------------------------- loss knob
lab_impair rloss --loss 50 --direction out >/dev/null 2>&1 || fail "loss: lab_impair failed"
out=$(lab_probe hloss burst "$E1:$EP" --count 40 --interval-ms 10 --wait-ms 800)
k=$(sed -n 's/^answered \([0-9]*\)\/40$/\1/p' <<<"$out")
st=$(lab_impair_stats rloss)
if [[ -n $k ]] && (( k >= 5 && k <= 35 )); then
  pass "loss 50% outbound: $k/40 answered [5..35] ($st)"
else
  fail "loss 50% outbound: '${out}' (want 5..35 of 40) ($st)"
fi
lab_impair rloss --loss 50 >/dev/null 2>&1 || fail "loss: lab_impair failed"
out=$(lab_probe hloss burst "$E1:$EP" --count 40 --interval-ms 10 --wait-ms 800)
k=$(sed -n 's/^answered \([0-9]*\)\/40$/\1/p' <<<"$out")
st=$(lab_impair_stats rloss)
declare -A S
for kv in $st; do S[${kv%=*}]=${kv#*=}; done
# Both ways: a round trip survives with 0.25; K in 1..25 fails ~1e-5 of runs.
if [[ -n $k ]] && (( k >= 1 && k <= 25 && S[in_drop] >= 1 && S[out_drop] >= 5 && S[out_drop] <= 35 )); then
  pass "loss 50% both ways: $k/40 answered [1..25], drops both ways ($st)"
else
  fail "loss 50% both ways: '${out}' (want 1..25 of 40, drops in and out) ($st)"
fi
lab_impair rloss --clear >/dev/null 2>&1
out=$(lab_probe hloss burst "$E1:$EP" --count 20 --interval-ms 5 --wait-ms 500)
[[ $out == "answered 20/20" ]] && pass "loss cleared: $out" || fail "loss cleared: want 20/20, got '$out'"

# ---------------------------------------------------------------- delay knob
# RTT = wall time of one "ask" of RTT_N probes in a row (one try each) / N:
# the process start is spread over N probes, and the growth is measured
# against a baseline taken the same way. Prints "MS ANSWERED" (MS integer).
RTT_N=10
rtt() { # NODE
  local t0 t1 out i targets=()
  for (( i = 0; i < RTT_N; i++ )); do targets+=("$E1:$EP"); done
  t0=$(date +%s%N)
  out=$(lab_probe "$1" ask --tries 1 --timeout-ms 1000 "${targets[@]}")
  t1=$(date +%s%N)
  echo "$(( (t1 - t0) / 1000000 / RTT_N )) $(grep -c -- '-> seen ' <<<"$out")"
}
read -r base_ms base_k < <(rtt hdly)
# Not inside $(...): lab_impair starts nfq_delay and records its PID here.
lab_impair rdly --delay 100 2>"$LAB_DIR/impair-delay.err"
rc=$?
how=$(grep -m1 -o 'via [A-Za-z ]*\|UNAVAILABLE.*' "$LAB_DIR/impair-delay.err")
if [[ $rc -ne 0 ]]; then
  fail "delay: lab_impair rdly --delay 100 failed: ${how:-$(tr '\n' ' ' <"$LAB_DIR/impair-delay.err")}"
else
  read -r d_ms d_k < <(rtt hdly)
  grow=$((d_ms - base_ms))
  what="delay 100 ms both ways ($how): RTT ${base_ms} -> ${d_ms} ms (+${grow}, want +180..300), answered $base_k/$RTT_N -> $d_k/$RTT_N"
  if (( base_k == RTT_N && d_k == RTT_N && grow >= 180 && grow <= 300 )); then
    pass "$what"
  else
    fail "$what (want every probe answered)"
  fi
  # A burst (40 probes 5 ms apart: ~40 packets held at once each way).
  out=$(lab_probe hdly burst "$E1:$EP" --count 40 --interval-ms 5 --wait-ms 800)
  [[ $out == "answered 40/40" ]] && pass "delay burst: $out" || fail "delay burst: want 40/40, got '$out'"
  lab_impair rdly --clear >/dev/null 2>&1
  read -r c_ms c_k < <(rtt hdly)
  rules=$(lab_exec rdly iptables -t raw -S 2>/dev/null | grep -c KH_DELAY)
  if (( c_k == RTT_N && c_ms < 20 && rules == 0 )) && [[ -z $(ip netns pids "$(lab_ns rdly)") ]]; then
    pass "delay cleared: RTT ${c_ms} ms (< 20), no KH_DELAY rules, no nfq_delay left"
  else
    fail "delay cleared: RTT ${c_ms} ms (want < 20), $c_k/$RTT_N answered, $rules KH_DELAY rules, pids in rdly: '$(ip netns pids "$(lab_ns rdly)" | tr '\n' ' ')'"
  fi
fi

# ------------------------------------------------- conntrack timeout, phase 2
to_phase2() { # HOST ROUTER ECHOPORT HOSTPORT EXPECT(arrive|blocked) LABEL
  local host=$1 router=$2 eport=$3 hport=$4 expect=$5 label=$6 idle pid log got
  idle=$((SECONDS - TO_T0[$router]))
  if (( idle < 8 )); then sleep $((8 - idle)); idle=8; fi
  listen_begin "$host" "$hport" || return 1
  pid=$L_PID log=$L_LOG
  lab_probe echo1 send "${TO_MAP[$router]}" --bind-port "$eport" --count 2
  got=$(listen_end "$pid" "$log")
  if [[ $expect == blocked ]]; then
    [[ -z $got ]] && pass "timeout $label: after ${idle}s idle, echo1's reply to ${TO_MAP[$router]} was dropped (mapping expired)" ||
      fail "timeout $label: after ${idle}s idle, echo1's reply to ${TO_MAP[$router]} still arrived"
  else
    [[ $got == "$E1:$eport" ]] && pass "timeout $label: after ${idle}s idle, echo1's reply to ${TO_MAP[$router]} still arrived" ||
      fail "timeout $label: after ${idle}s idle, echo1's reply to ${TO_MAP[$router]} should arrive, got '${got}'"
  fi
}
[[ -n $TO_OK_rto ]] && to_phase2 hto rto 6000 43000 blocked "5s (rto)"
[[ -n $TO_OK_rpr ]] && to_phase2 hpr rpr 6001 43001 arrive "60s control (rpr)"

echo "----"
echo "self_check: $NPASS passed, $NFAIL failed, $((SECONDS - START)) s"
(( NFAIL == 0 ))
