# shellcheck shell=bash
# NAT test lab for keyhole: network namespaces joined by a fake "internet"
# bridge, with NAT routers of several kinds in between.
#
# Use as a library:        source tests/lab/lab.sh; lab_init; ...
# Or run for housekeeping:  bash tests/lab/lab.sh list | cleanup ID | cleanup-stale
#
# Layout (ID = 4 hex chars picked per run; everything carries "kh<ID>"):
#
#   namespace kh<ID>-inet     bridge kh<ID>br: the lab's public internet,
#                             203.0.113.0/24 and 198.51.100.0/24 share it
#   namespace kh<ID>-<NAME>   one per public host, router or LAN host
#   veth kh<ID>i<N>  <->  kh<ID>wan   (router's public leg, N = node number)
#   veth kh<ID>i<N>  <->  kh<ID>eth0  (public host on the internet bridge)
#   bridge kh<ID>lan                  (inside a router: its LAN, LAN.1/24)
#   veth kh<ID>l<N>  <->  kh<ID>eth0  (LAN host on its router's LAN bridge)
#
# Every link is created directly inside a lab namespace (never in the root
# namespace), so deleting the namespaces removes every link and bridge. State
# and logs live in $LAB_DIR (/tmp/khlab.<ID>, its "owner" file holds the PID
# of the shell that made the lab, so a crashed run can be found and removed).
#
# Traffic never leaves the lab: the public nodes' only route is the internet
# bridge, which has no uplink.
#
# Conventions: functions print errors to stderr and return non-zero; use
# `set -e` (or check) in the calling script. lab_init keeps an EXIT trap the
# caller set before it (that one runs first, then lab_cleanup); if you set an
# EXIT trap after lab_init, call lab_cleanup from it. LAB_KEEP_LOGS=1 keeps
# $LAB_DIR as /tmp/khlab-logs.<ID> after cleanup. Needs env UDP_PROBE (path
# of udp_probe) only for lab_probe and lab_echo_server.
#
# Impairment (lab_impair): loss is an nftables rule (table kh_impair). Delay
# tries tc netem; kernels without sch_netem (like our CI's) get it from
# NFQUEUE instead: iptables (iptables-nft) rules in the node's namespace,
# raw table, chain KH_DELAY, queue the uplink's packets to nfq_delay (built
# next to udp_probe; env NFQ_DELAY overrides the path), which holds each one
# for the delay. nfq_delay runs in that namespace via lab_spawn, so cleanup
# stops it by PID; its rules go away with the namespace.
#
# Router types (lab_nat_router), all without hairpinning:
#   open            no NAT at all: the "host behind it" is placed directly on
#                   the internet bridge with the router's PUBLIC_IP as its own
#                   address (no router namespace is made).
#   fullcone        endpoint-independent mapping AND filtering: snat to
#                   PUBLIC_IP (port preserving), and once the host has sent
#                   from a public port, anyone may send to that port (dynamic
#                   nft map public port -> host ip.port, refreshed by outbound
#                   packets, lifetime = conntrack udp stream timeout).
#                   One host per router.
#   portrestricted  masquerade: endpoint-independent mapping (source port kept),
#                   address+port dependent filtering (conntrack).
#   symmetric       masquerade fully-random: a new random public port per
#                   destination, address+port dependent filtering.
#   udpblocked      all UDP from the LAN dropped; TCP masqueraded.
# Unsolicited packets from the internet to a router are dropped silently.

# shellcheck disable=SC2317
if [[ -n ${_LAB_SH_LOADED:-} ]]; then return 0 2>/dev/null || exit 0; fi
_LAB_SH_LOADED=1

LAB_TMP_ROOT=${LAB_TMP_ROOT:-/tmp}
LAB_ID=${LAB_ID:-}
LAB_PFX=
LAB_DIR=
LAB_INET=
LAB_BRIDGE=
LAB_LAST_PID=
LAB_PIDS=()
LAB_NAMESPACES=()
LAB_NODES=()
LAB_NEXT_IDX=1
_LAB_OWNER_BASHPID=
_LAB_CLEANED=
declare -gA LAB_KIND=()      # name -> public | router | host | open
declare -gA LAB_TYPE=()      # router -> NAT type
declare -gA LAB_PUBIP=()     # router/public host -> public IP
declare -gA LAB_LANPFX=()    # router -> "10.a.b"
declare -gA LAB_IP=()        # node -> its own address
declare -gA LAB_ROUTER_OF=() # LAN host -> router
declare -gA LAB_UPLINK=()    # node -> name of its uplink interface
declare -gA LAB_NHOSTS=()    # router -> hosts behind it
declare -gA LAB_PEER=()      # node -> "NAMESPACE IFNAME" of its uplink's far veth end

_lab_log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
_lab_err() { printf 'lab: error: %s\n' "$*" >&2; return 1; }

# _lab_do CMD...: runs CMD, reports it and fails if it fails.
_lab_do() {
  local out
  if ! out=$("$@" 2>&1); then
    printf 'lab: command failed: %s\n%s\n' "$*" "$out" >&2
    return 1
  fi
}

# lab_require_root: prints a SKIP line and exits 77 unless running as root
# with the tools the lab needs.
lab_require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: the NAT lab needs root (network namespaces, nftables)"
    exit 77
  fi
  local tool
  for tool in ip nft conntrack sysctl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "SKIP: the NAT lab needs '$tool' (iproute2, nftables, conntrack)"
      exit 77
    fi
  done
}

_lab_check_name() {
  [[ $1 =~ ^[a-z][a-z0-9]{0,11}$ ]] || _lab_err "bad node name '$1' (want [a-z][a-z0-9]{0,11})" || return 1
  [[ $1 != inet ]] || _lab_err "node name 'inet' is reserved" || return 1
  [[ -z ${LAB_KIND[$1]:-} ]] || _lab_err "node '$1' already exists" || return 1
}
_lab_check_public_ip() {
  local n
  for n in "${!LAB_IP[@]}"; do
    [[ ${LAB_IP[$n]} != "$1" ]] || _lab_err "public address $1 is already used by '$n'" || return 1
  done
  [[ $1 =~ ^(203\.0\.113|198\.51\.100)\.([0-9]{1,3})$ ]] && (( BASH_REMATCH[2] >= 1 && BASH_REMATCH[2] <= 254 )) ||
    _lab_err "public address '$1' must be in 203.0.113.0/24 or 198.51.100.0/24"
}
_lab_check_initialised() {
  [[ -n $LAB_ID && -z $_LAB_CLEANED ]] || _lab_err "call lab_init first"
}
_lab_node() { # _lab_node NAME: fails unless NAME is a lab node
  [[ -n ${LAB_KIND[$1]:-} ]] || _lab_err "no lab node '$1'"
}

# lab_ns NAME: prints the namespace name of node NAME ("inet" for the internet).
lab_ns() {
  if [[ $1 == inet ]]; then echo "$LAB_INET"; return; fi
  _lab_node "$1" || return 1
  echo "${LAB_PFX}-$1"
}

# lab_exec NAME CMD...: runs CMD inside node NAME's namespace.
lab_exec() {
  local ns
  ns=$(lab_ns "$1") || return 1
  shift
  ip netns exec "$ns" "$@"
}

_lab_new_ns() { # _lab_new_ns NSNAME
  _lab_do ip netns add "$1" || return 1
  LAB_NAMESPACES+=("$1")
  _lab_do ip -n "$1" link set lo up || return 1
  # No IPv6 anywhere: keeps the lab quiet (no RS/MLD/DAD) and IPv4-only.
  _lab_do ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# lab_init [ID]: creates the internet namespace and bridge, picks the run id
# (or uses ID, 4 hex chars), and registers the cleanup on EXIT/INT/TERM
# (chained in front of an EXIT trap the caller already had). Exits 77 when
# not root. Removes leftovers of earlier labs whose owner process is dead.
lab_init() {
  lab_require_root
  [[ -z $LAB_ID || -n $_LAB_CLEANED ]] || _lab_err "lab already initialised (id $LAB_ID)" || return 1
  ip netns list >/dev/null 2>&1 || { echo "SKIP: cannot use network namespaces here"; exit 77; }
  lab_cleanup_stale
  local id=${1:-}
  if [[ -n $id ]]; then
    [[ $id =~ ^[0-9a-f]{4}$ ]] || _lab_err "lab id must be 4 hex chars" || return 1
    mkdir "$LAB_TMP_ROOT/khlab.$id" 2>/dev/null || _lab_err "lab id $id is in use" || return 1
  else
    for _ in $(seq 1 20); do
      id=$(od -An -N2 -tx2 /dev/urandom | tr -d ' \n')
      if ! ip netns list | grep -q "^kh${id}-" && mkdir "$LAB_TMP_ROOT/khlab.$id" 2>/dev/null; then
        break
      fi
      id=
    done
    [[ -n $id ]] || _lab_err "could not pick a free lab id" || return 1
  fi
  LAB_ID=$id
  LAB_PFX="kh$id"
  LAB_DIR="$LAB_TMP_ROOT/khlab.$id"
  LAB_INET="${LAB_PFX}-inet"
  LAB_BRIDGE="${LAB_PFX}br"
  LAB_PIDS=() LAB_NAMESPACES=() LAB_NODES=() LAB_NEXT_IDX=1 _LAB_CLEANED=
  LAB_KIND=() LAB_TYPE=() LAB_PUBIP=() LAB_LANPFX=() LAB_IP=() LAB_ROUTER_OF=() LAB_UPLINK=() LAB_NHOSTS=() LAB_PEER=()
  echo $$ >"$LAB_DIR/owner"
  _LAB_OWNER_BASHPID=$BASHPID
  _lab_install_traps

  _lab_new_ns "$LAB_INET" || return 1
  _lab_do ip -n "$LAB_INET" link add "$LAB_BRIDGE" type bridge || return 1
  _lab_do ip -n "$LAB_INET" link set "$LAB_BRIDGE" up || return 1
  # Bridged frames must not go through this namespace's IP hooks.
  ip netns exec "$LAB_INET" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
  _lab_log "lab $LAB_ID: internet bridge up (namespaces ${LAB_PFX}-*, state $LAB_DIR)"
}

_lab_install_traps() {
  local prev prevcmd=
  prev=$(trap -p EXIT)
  if [[ -n $prev ]]; then
    eval "set -- $prev"
    prevcmd=$3
  fi
  if [[ $prevcmd != *lab_cleanup* ]]; then
    # shellcheck disable=SC2064
    trap "${prevcmd:+$prevcmd; }lab_cleanup" EXIT
  fi
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

_lab_next_idx() { LAB_IDX=$LAB_NEXT_IDX; LAB_NEXT_IDX=$((LAB_NEXT_IDX + 1)); }

# _lab_attach_public NAME NS IFNAME IP: veth from the internet bridge into NS.
_lab_attach_public() {
  local name=$1 ns=$2 ifname=$3 ip=$4 outer
  _lab_next_idx
  outer="${LAB_PFX}i${LAB_IDX}"
  _lab_do ip -n "$LAB_INET" link add "$outer" type veth peer name "$ifname" netns "$ns" || return 1
  _lab_do ip -n "$LAB_INET" link set "$outer" master "$LAB_BRIDGE" up || return 1
  _lab_do ip -n "$ns" addr add "$ip/24" dev "$ifname" || return 1
  _lab_do ip -n "$ns" link set "$ifname" up || return 1
  # Both public /24s are on the same wire: everything public is on-link.
  _lab_do ip -n "$ns" route add default dev "$ifname" scope link || return 1
  LAB_UPLINK[$name]=$ifname
  LAB_PEER[$name]="$LAB_INET $outer"
}

# lab_public_host NAME IP: a host namespace directly on the internet bridge
# (bootstrap node, relay, echo server), IP in 203.0.113.0/24 or 198.51.100.0/24.
lab_public_host() {
  [[ $# -eq 2 ]] || _lab_err "usage: lab_public_host NAME IP" || return 1
  local name=$1 ip=$2 ns
  _lab_check_initialised && _lab_check_name "$name" && _lab_check_public_ip "$ip" || return 1
  ns="${LAB_PFX}-$name"
  _lab_new_ns "$ns" || return 1
  LAB_KIND[$name]=public
  LAB_NODES+=("$name")
  _lab_attach_public "$name" "$ns" "${LAB_PFX}eth0" "$ip" || return 1
  LAB_IP[$name]=$ip
  LAB_PUBIP[$name]=$ip
  _lab_log "public host $name: $ip"
}

_lab_lan_prefix() { # normalises 10.a.b / 10.a.b.0 / 10.a.b.0/24 to 10.a.b
  local p=${1%/24}
  [[ $p =~ ^[0-9]+\.[0-9]+\.[0-9]+\.0$ ]] && p=${p%.0}
  [[ $p =~ ^10\.([0-9]{1,3})\.([0-9]{1,3})$ ]] && (( BASH_REMATCH[1] <= 255 && BASH_REMATCH[2] <= 255 )) ||
    _lab_err "LAN prefix '$1' must look like 10.A.B (a /24 inside 10.0.0.0/8)" || return 1
  echo "$p"
}

# lab_nat_router NAME TYPE PUBLIC_IP LAN_PREFIX: a router namespace with its
# public leg (PUBLIC_IP) on the internet bridge and a LAN bridge LAN_PREFIX.1/24.
# TYPE: open | fullcone | portrestricted | symmetric | udpblocked (see top).
lab_nat_router() {
  [[ $# -eq 4 ]] || _lab_err "usage: lab_nat_router NAME TYPE PUBLIC_IP LAN_PREFIX" || return 1
  local name=$1 type=$2 pub=$3 lan ns wan lanbr stream
  _lab_check_initialised && _lab_check_name "$name" && _lab_check_public_ip "$pub" || return 1
  lan=$(_lab_lan_prefix "$4") || return 1
  case $type in
    open | fullcone | portrestricted | symmetric | udpblocked) ;;
    *) _lab_err "unknown router type '$type' (open fullcone portrestricted symmetric udpblocked)"; return 1 ;;
  esac
  LAB_TYPE[$name]=$type
  LAB_PUBIP[$name]=$pub
  LAB_LANPFX[$name]=$lan
  LAB_NHOSTS[$name]=0
  if [[ $type == open ]]; then
    # No NAT, no namespace: lab_host puts the host on the internet with $pub.
    LAB_KIND[$name]=open
    LAB_NODES+=("$name")
    _lab_log "router $name: open (host behind it gets $pub directly on the internet)"
    return 0
  fi
  LAB_KIND[$name]=router
  LAB_NODES+=("$name")
  ns="${LAB_PFX}-$name"
  wan="${LAB_PFX}wan"
  lanbr="${LAB_PFX}lan"
  _lab_new_ns "$ns" || return 1
  _lab_attach_public "$name" "$ns" "$wan" "$pub" || return 1
  LAB_IP[$name]=$pub
  _lab_do ip -n "$ns" link add "$lanbr" type bridge || return 1
  _lab_do ip -n "$ns" addr add "$lan.1/24" dev "$lanbr" || return 1
  _lab_do ip -n "$ns" link set "$lanbr" up || return 1
  _lab_do ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 || return 1
  # LAN hosts talk to each other over the bridge without the router's rules.
  ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
  stream=$(ip netns exec "$ns" sysctl -n net.netfilter.nf_conntrack_udp_timeout_stream 2>/dev/null || echo 120)
  _lab_router_ruleset "$type" "$wan" "$lanbr" "$pub" "$stream" | _lab_do ip netns exec "$ns" nft -f - || return 1
  _lab_log "router $name: $type, public $pub, LAN $lan.0/24"
}

# Prints the nftables ruleset of one router.
_lab_router_ruleset() {
  local type=$1 wan=$2 lan=$3 pub=$4 stream=$5
  cat <<EOF
table ip kh_nat {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "$wan" ct state established,related accept
    iifname "$wan" icmp type echo-request accept
    iifname "$wan" counter drop comment "unsolicited from the internet"
  }
}
EOF
  case $type in
    portrestricted)
      echo "add rule ip kh_nat postrouting oifname \"$wan\" masquerade"
      ;;
    symmetric)
      echo "add rule ip kh_nat postrouting oifname \"$wan\" masquerade fully-random"
      ;;
    udpblocked)
      echo "add rule ip kh_nat forward iifname \"$lan\" meta l4proto udp counter drop comment \"udp blocked\""
      echo "add rule ip kh_nat postrouting oifname \"$wan\" masquerade"
      ;;
    fullcone)
      # Mapping: snat keeps the source port. Filtering: a public UDP port
      # the host has sent from (in the last STREAM seconds) admits anyone.
      echo "add rule ip kh_nat postrouting oifname \"$wan\" snat to $pub"
      cat <<EOF
table ip kh_nat {
  map fc_map {
    type inet_service : ipv4_addr . inet_service
    flags dynamic,timeout
    timeout ${stream}s
  }
  chain fc_track {
    type filter hook postrouting priority 200; policy accept;
  }
}
add rule ip kh_nat prerouting iifname "$wan" meta l4proto udp dnat ip to udp dport map @fc_map
add rule ip kh_nat forward iifname "$wan" oifname "$lan" ct status dnat accept
EOF
      _lab_fc_track_rules "$wan" "$lan" "$stream"
      ;;
  esac
  echo "add rule ip kh_nat forward iifname \"$lan\" oifname \"$wan\" accept"
}

# The fullcone mapping refresh, keyed by the public (post-NAT) source port.
# Host-initiated flows: the host is the original source; flows the internet
# started (dnat'ed in): the host is the reply source.
_lab_fc_track_rules() {
  local wan=$1 lan=$2 t=$3
  echo "add rule ip kh_nat fc_track iifname \"$lan\" oifname \"$wan\" meta l4proto udp ct direction original update @fc_map { udp sport timeout ${t}s : ct original ip saddr . ct original proto-src }"
  echo "add rule ip kh_nat fc_track iifname \"$lan\" oifname \"$wan\" meta l4proto udp ct direction reply update @fc_map { udp sport timeout ${t}s : ct reply ip saddr . ct reply proto-src }"
}

# lab_host NAME ROUTER IP: a host namespace on ROUTER's LAN (IP inside the
# router's LAN_PREFIX, not .1), default route via the router. Behind an `open`
# router the host goes on the internet with the router's public IP instead
# (IP is then ignored). fullcone and open take one host each.
lab_host() {
  [[ $# -eq 3 ]] || _lab_err "usage: lab_host NAME ROUTER IP" || return 1
  local name=$1 router=$2 ip=$3 ns rns lan
  _lab_check_initialised && _lab_check_name "$name" && _lab_node "$router" || return 1
  [[ ${LAB_KIND[$router]} == router || ${LAB_KIND[$router]} == open ]] || _lab_err "'$router' is not a router" || return 1
  if [[ ${LAB_TYPE[$router]} == open || ${LAB_TYPE[$router]} == fullcone ]] && (( LAB_NHOSTS[$router] > 0 )); then
    _lab_err "a ${LAB_TYPE[$router]} router takes one host only ('$router' has one)"
    return 1
  fi
  if [[ ${LAB_TYPE[$router]} == open ]]; then
    lab_public_host "$name" "${LAB_PUBIP[$router]}" || return 1
    LAB_KIND[$name]=host
    LAB_ROUTER_OF[$name]=$router
    LAB_NHOSTS[$router]=1
    return 0
  fi
  lan=${LAB_LANPFX[$router]}
  [[ $ip =~ ^${lan//./\\.}\.([0-9]{1,3})$ ]] && (( BASH_REMATCH[1] >= 2 && BASH_REMATCH[1] <= 254 )) ||
    _lab_err "host address '$ip' must be in $lan.2-254 (router $router's LAN)" || return 1
  ns="${LAB_PFX}-$name"
  rns="${LAB_PFX}-$router"
  _lab_new_ns "$ns" || return 1
  LAB_KIND[$name]=host
  LAB_NODES+=("$name")
  LAB_ROUTER_OF[$name]=$router
  _lab_next_idx
  local outer="${LAB_PFX}l${LAB_IDX}" inner="${LAB_PFX}eth0"
  _lab_do ip -n "$rns" link add "$outer" type veth peer name "$inner" netns "$ns" || return 1
  _lab_do ip -n "$rns" link set "$outer" master "${LAB_PFX}lan" up || return 1
  _lab_do ip -n "$ns" addr add "$ip/24" dev "$inner" || return 1
  _lab_do ip -n "$ns" link set "$inner" up || return 1
  _lab_do ip -n "$ns" route add default via "$lan.1" || return 1
  LAB_IP[$name]=$ip
  LAB_UPLINK[$name]=$inner
  LAB_PEER[$name]="$rns $outer"
  LAB_NHOSTS[$router]=$(( LAB_NHOSTS[$router] + 1 ))
  _lab_log "host $name: $ip behind $router (${LAB_TYPE[$router]})"
}

# lab_ip NAME: the node's own address (LAN address for hosts behind NAT).
lab_ip() { _lab_node "$1" && echo "${LAB_IP[$1]}"; }

# lab_public_ip NAME: the public address of a router, public host, or of the
# router a host sits behind.
lab_public_ip() {
  _lab_node "$1" || return 1
  if [[ -n ${LAB_ROUTER_OF[$1]:-} ]]; then echo "${LAB_PUBIP[${LAB_ROUTER_OF[$1]}]}"
  else echo "${LAB_PUBIP[$1]}"; fi
}

# lab_uplink NAME: the node's interface towards the internet (router: its
# public leg; host: its only interface).
lab_uplink() { _lab_node "$1" && echo "${LAB_UPLINK[$1]}"; }

# Namespace of a router for router-only knobs ("open" has none).
_lab_router_ns() {
  _lab_node "$1" || return 1
  case ${LAB_KIND[$1]} in
    router) echo "${LAB_PFX}-$1" ;;
    open) _lab_err "'$1' is an open router: it has no NAT state"; return 1 ;;
    *) _lab_err "'$1' is not a router"; return 1 ;;
  esac
}

# lab_impair NODE [--loss PERCENT] [--delay MS] [--direction both|in|out] | --clear
# Impairs NODE's uplink (a router's public leg; any other node's interface).
# "in" = towards NODE, "out" = from NODE (for a router: what its LAN sends to
# the internet); "both" applies the setting in each direction.
#   --loss PERCENT  drops PERCENT % (0-100, up to 2 decimals) of IPv4 packets,
#                   independently in each chosen direction (nftables netdev
#                   ingress/egress + numgen), so with "both" a round trip
#                   survives with (1-p)^2. Replaces the previous loss setting.
#   --delay MS      holds each packet MS ms in each chosen direction (so with
#                   "both" a round trip grows by 2*MS). Replaces the previous
#                   delay setting and leaves loss alone (they combine). Tries
#                   tc netem (egress of the uplink for "out", egress of the
#                   far veth end for "in"); kernels without sch_netem fall
#                   back to NFQUEUE: iptables rules in NODE's namespace (raw
#                   table, chain KH_DELAY, see _lab_delay_nfq) queue the
#                   packets to an nfq_delay process (env NFQ_DELAY, default:
#                   next to UDP_PROBE) started with lab_spawn. If neither
#                   works it says "delay UNAVAILABLE" and returns 1 (loss is
#                   still applied). Call it in the lab's own shell, not
#                   inside $(...), so that process is recorded in LAB_PIDS.
#   --clear         removes loss and delay (rules first, then stops nfq_delay,
#                   which lets the packets it still holds go).
lab_impair() {
  local node=${1:-} loss='' delay='' dir=both clear='' ns ifname n rc=0
  shift || true
  _lab_node "$node" || return 1
  while [[ $# -gt 0 ]]; do
    case $1 in
      --loss) loss=${2:-}; shift 2 ;;
      --delay) delay=${2:-}; shift 2 ;;
      --direction) dir=${2:-}; shift 2 ;;
      --clear) clear=1; shift ;;
      *) _lab_err "lab_impair: unknown argument '$1'"; return 1 ;;
    esac
  done
  [[ ${LAB_KIND[$node]} != open ]] || _lab_err "lab_impair: impair the host behind open router '$node' instead" || return 1
  ns="${LAB_PFX}-$node"
  ifname=${LAB_UPLINK[$node]}
  if [[ -n $clear ]]; then
    ip netns exec "$ns" nft delete table netdev kh_impair 2>/dev/null || true
    ip netns exec "$ns" nft delete table inet kh_impair 2>/dev/null || true
    _lab_delay_clear "$node"
    _lab_log "impair $node: cleared"
    return 0
  fi
  [[ -n $loss || -n $delay ]] || _lab_err "lab_impair: give --loss and/or --delay (or --clear)" || return 1
  [[ $dir == both || $dir == in || $dir == out ]] || _lab_err "lab_impair: --direction both|in|out" || return 1
  if [[ -n $loss ]]; then
    [[ $loss =~ ^[0-9]{1,3}(\.[0-9]{1,2})?$ ]] || _lab_err "lab_impair: --loss PERCENT (0-100)" || return 1
    n=$(awk -v p="$loss" 'BEGIN { printf "%d", p * 100 + 0.5 }')
    (( n <= 10000 )) || _lab_err "lab_impair: --loss is at most 100" || return 1
    ip netns exec "$ns" nft delete table netdev kh_impair 2>/dev/null || true
    ip netns exec "$ns" nft delete table inet kh_impair 2>/dev/null || true
    if ! _lab_impair_ruleset netdev "$ifname" "$n" "$dir" | ip netns exec "$ns" nft -f - 2>/dev/null; then
      # Kernels without netdev egress: IP hooks around routing instead.
      _lab_impair_ruleset inet "$ifname" "$n" "$dir" | _lab_do ip netns exec "$ns" nft -f - || return 1
    fi
    _lab_log "impair $node: ${loss}% loss ($dir) on $ifname"
  fi
  if [[ -n $delay ]]; then
    [[ $delay =~ ^[0-9]+$ ]] && (( delay <= 60000 )) || _lab_err "lab_impair: --delay MS (0-60000)" || return 1
    _lab_delay_clear "$node"
    local why_netem why_nfq
    if why_netem=$(_lab_delay_netem "$node" "$delay" "$dir"); then
      _lab_log "impair $node: $delay ms delay ($dir) via tc netem"
    elif _lab_delay_nfq "$node" "$delay" "$dir" 2>"$LAB_DIR/nfq-setup.err"; then
      _lab_log "impair $node: $delay ms delay ($dir) via NFQUEUE"
    else
      why_nfq=$(tr '\n' ' ' <"$LAB_DIR/nfq-setup.err")
      _lab_delay_clear "$node"
      printf 'lab_impair: delay UNAVAILABLE on %s: tc netem failed (%s); NFQUEUE fallback failed (%s). No delay applied.\n' \
        "$node" "$why_netem" "$why_nfq" >&2
      rc=1
    fi
  fi
  return $rc
}

# _lab_delay_netem NODE MS DIR: netem on the uplink's egress ("out") and on
# the far veth end's egress ("in"). Prints why on failure, leaving nothing.
_lab_delay_netem() {
  local node=$1 ms=$2 dir=$3 ns="${LAB_PFX}-$1" out pns pif
  read -r pns pif <<<"${LAB_PEER[$node]:-}"
  if [[ $dir != in ]] && ! out=$(tc -n "$ns" qdisc replace dev "${LAB_UPLINK[$node]}" root netem delay "${ms}ms" 2>&1); then
    echo "$out"; return 1
  fi
  if [[ $dir != out ]]; then
    if [[ -z $pif ]]; then
      out="no far end recorded for ${LAB_UPLINK[$node]}"
    elif out=$(tc -n "$pns" qdisc replace dev "$pif" root netem delay "${ms}ms" 2>&1); then
      return 0
    fi
    _lab_delay_clear "$node"
    echo "$out"; return 1
  fi
}

_LAB_NFQ_NUM=4711   # NFQUEUE instances are per network namespace

# _lab_delay_nfq NODE MS DIR: starts nfq_delay in NODE's namespace, waits
# until it has bound the queue, then queues NODE's uplink traffic to it.
# The rules live in the raw table (before conntrack), not mangle: a packet
# held after conntrack has an unconfirmed entry, so the next packets of a
# new flow would each get their own entry (and NAT port) until it is let go.
_lab_delay_nfq() {
  local node=$1 ms=$2 dir=$3 ns="${LAB_PFX}-$1" ifname=${LAB_UPLINK[$1]} bin log pid i
  bin=${NFQ_DELAY:-}
  [[ -n $bin || -z ${UDP_PROBE:-} ]] || bin="$(dirname "$UDP_PROBE")/nfq_delay"
  [[ -n $bin && -x $bin ]] || { echo "no nfq_delay binary (set NFQ_DELAY; got '${bin}')" >&2; return 1; }
  command -v iptables >/dev/null 2>&1 || { echo "no iptables (Debian package iptables)" >&2; return 1; }
  log="nfq_delay-$node.log"
  : >"$LAB_DIR/$log"
  lab_spawn "$node" "$log" "$bin" --queue "$_LAB_NFQ_NUM" --delay-ms "$ms" || return 1
  pid=$LAB_LAST_PID
  echo "$pid" >"$LAB_DIR/nfq_delay-$node.pid"
  for (( i = 0; i < 100; i++ )); do
    grep -q "^nfq_delay: queue $_LAB_NFQ_NUM, delay $ms ms" "$LAB_DIR/$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -q "^nfq_delay: queue" "$LAB_DIR/$log"; then
    echo "nfq_delay did not bind queue $_LAB_NFQ_NUM: $(tr '\n' ' ' <"$LAB_DIR/$log")" >&2
    return 1
  fi
  # --queue-bypass: with no program on the queue, packets pass undelayed
  # instead of being dropped (e.g. between --clear's two steps).
  {
    echo "*raw"
    echo ":KH_DELAY - [0:0]"
    echo "-A KH_DELAY -j NFQUEUE --queue-num $_LAB_NFQ_NUM --queue-bypass"
    [[ $dir == out ]] || echo "-A PREROUTING -i $ifname -j KH_DELAY"
    if [[ $dir != in ]]; then
      echo "-A OUTPUT -o $ifname -j KH_DELAY"
      # A router's forwarded packets: raw PREROUTING is before routing, so
      # take what its LAN sends anywhere but the router itself.
      if [[ ${LAB_KIND[$node]} == router ]]; then
        echo "-A PREROUTING -i ${LAB_PFX}lan ! -d ${LAB_LANPFX[$node]}.0/24 -j KH_DELAY"
      fi
    fi
    echo "COMMIT"
  } | ip netns exec "$ns" iptables-restore --noflush || return 1
}

# _lab_delay_clear NODE: removes any delay from NODE (netem qdiscs, the
# KH_DELAY rules, then its nfq_delay process, stopped by PID).
_lab_delay_clear() {
  local node=$1 ns="${LAB_PFX}-$1" ifname=${LAB_UPLINK[$1]} pns pif spec pidfile pid
  if tc -n "$ns" qdisc show dev "$ifname" 2>/dev/null | grep -q netem; then
    tc -n "$ns" qdisc del dev "$ifname" root 2>/dev/null || true
  fi
  read -r pns pif <<<"${LAB_PEER[$node]:-}"
  if [[ -n $pif ]] && tc -n "$pns" qdisc show dev "$pif" 2>/dev/null | grep -q netem; then
    tc -n "$pns" qdisc del dev "$pif" root 2>/dev/null || true
  fi
  if command -v iptables >/dev/null 2>&1 && ip netns exec "$ns" iptables -t raw -n -L KH_DELAY >/dev/null 2>&1; then
    # Delete exactly our jumps (the specs hold no quoted words), then the chain.
    while read -r spec; do
      # shellcheck disable=SC2086
      ip netns exec "$ns" iptables -t raw -D $spec 2>/dev/null || true
    done < <(ip netns exec "$ns" iptables -t raw -S 2>/dev/null | sed -n 's/^-A \(.* -j KH_DELAY\)$/\1/p')
    ip netns exec "$ns" iptables -t raw -F KH_DELAY 2>/dev/null || true
    ip netns exec "$ns" iptables -t raw -X KH_DELAY 2>/dev/null || true
  fi
  pidfile="$LAB_DIR/nfq_delay-$node.pid"
  if [[ -f $pidfile ]]; then
    pid=$(cat "$pidfile")
    rm -f "$pidfile"
    # Only if that PID still runs in NODE's namespace (never a reused PID).
    if [[ $pid =~ ^[0-9]+$ ]] && ip netns pids "$ns" 2>/dev/null | grep -qx "$pid"; then
      lab_stop "$pid" TERM >/dev/null 2>&1 || true
    fi
  fi
}

_lab_drop_rule() { # MATCH N COUNTER: drops N/10000 of the matched packets
  if (( $2 >= 10000 )); then echo "    $1 counter name $3 drop"
  elif (( $2 > 0 )); then echo "    $1 numgen random mod 10000 < $2 counter name $3 drop"
  fi
}

_lab_impair_ruleset() { # FAMILY IFNAME N DIR
  local fam=$1 ifname=$2 n=$3 dir=$4 hook_in hook_out match_in match_out
  if [[ $fam == netdev ]]; then
    hook_in="type filter hook ingress device \"$ifname\" priority -500;"
    hook_out="type filter hook egress device \"$ifname\" priority 500;"
    match_in="meta protocol ip"
    match_out="meta protocol ip"
  else
    hook_in="type filter hook prerouting priority -400;"
    hook_out="type filter hook postrouting priority 400;"
    match_in="iifname \"$ifname\" meta nfproto ipv4"
    match_out="oifname \"$ifname\" meta nfproto ipv4"
  fi
  echo "table $fam kh_impair {"
  echo "  counter in_all {}"
  echo "  counter in_drop {}"
  echo "  counter out_all {}"
  echo "  counter out_drop {}"
  if [[ $dir != out ]]; then
    echo "  chain in { $hook_in"
    echo "    $match_in counter name in_all"
    _lab_drop_rule "$match_in" "$n" in_drop
    echo "  }"
  fi
  if [[ $dir != in ]]; then
    echo "  chain out { $hook_out"
    echo "    $match_out counter name out_all"
    _lab_drop_rule "$match_out" "$n" out_drop
    echo "  }"
  fi
  echo "}"
}

# lab_impair_stats NODE: prints "in_all=N in_drop=N out_all=N out_drop=N"
# (IPv4 packets seen / dropped by the loss knob on NODE's uplink).
lab_impair_stats() {
  local ns c fam vals=() v
  _lab_node "$1" || return 1
  ns="${LAB_PFX}-$1"
  fam=netdev
  ip netns exec "$ns" nft list table netdev kh_impair >/dev/null 2>&1 || fam=inet
  for c in in_all in_drop out_all out_drop; do
    v=$(ip netns exec "$ns" nft list counter "$fam" kh_impair "$c" 2>/dev/null |
      awk '/packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    vals+=("$c=${v:-0}")
  done
  echo "${vals[*]}"
}

# lab_conntrack_udp_timeout ROUTER SECONDS [STREAM_SECONDS]: sets
# nf_conntrack_udp_timeout (flows seen one way) and _stream (flows with
# replies; defaults to SECONDS) in ROUTER's namespace. On a fullcone router
# the endpoint-independent port mapping gets the STREAM lifetime too.
# (Kernel defaults: 30 and 120.)
lab_conntrack_udp_timeout() {
  [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || _lab_err "usage: lab_conntrack_udp_timeout ROUTER SECONDS [STREAM_SECONDS]" || return 1
  local ns stream=${3:-$2}
  [[ $stream =~ ^[0-9]+$ ]] || _lab_err "STREAM_SECONDS must be a number" || return 1
  ns=$(_lab_router_ns "$1") || return 1
  _lab_do ip netns exec "$ns" sysctl -qw "net.netfilter.nf_conntrack_udp_timeout=$2" \
    "net.netfilter.nf_conntrack_udp_timeout_stream=$stream" || return 1
  if [[ ${LAB_TYPE[$1]} == fullcone ]]; then
    { echo "flush chain ip kh_nat fc_track"
      _lab_fc_track_rules "${LAB_PFX}wan" "${LAB_PFX}lan" "$stream"
    } | _lab_do ip netns exec "$ns" nft -f - || return 1
  fi
  _lab_log "router $1: conntrack udp timeout ${2}s, stream ${stream}s"
}

# lab_flush_conntrack ROUTER: forgets every NAT mapping of ROUTER (conntrack -F,
# and the fullcone port map).
lab_flush_conntrack() {
  local ns
  ns=$(_lab_router_ns "$1") || return 1
  ip netns exec "$ns" conntrack -F >/dev/null 2>&1 || true
  if [[ ${LAB_TYPE[$1]} == fullcone ]]; then
    ip netns exec "$ns" nft flush map ip kh_nat fc_map 2>/dev/null || true
  fi
}

# lab_conntrack_list ROUTER: prints ROUTER's UDP conntrack entries (debug aid).
lab_conntrack_list() {
  local ns
  ns=$(_lab_router_ns "$1") || return 1
  ip netns exec "$ns" conntrack -L -p udp 2>/dev/null || true
}

# lab_spawn NAME LOGFILE CMD...: starts CMD in the background inside NAME,
# stdout+stderr to LOGFILE (relative names go to $LAB_DIR). Sets LAB_LAST_PID;
# the process is stopped by lab_cleanup (or lab_stop). Do not call it inside
# $(...): the PID would not be recorded.
lab_spawn() {
  local ns log=$2
  ns=$(lab_ns "$1") || return 1
  shift 2
  [[ $log == /* ]] || log="$LAB_DIR/$log"
  ip netns exec "$ns" "$@" >>"$log" 2>&1 &
  LAB_LAST_PID=$!
  LAB_PIDS+=("$LAB_LAST_PID")
}

# lab_stop PID [SIGNAL]: stops a process started with lab_spawn (bounded wait,
# then SIGKILL). Returns its exit status (or 137 if it had to be killed).
lab_stop() {
  local pid=$1 sig=${2:-TERM} i rc=0
  kill "-$sig" "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || rc=$?
  local keep=() p
  for p in "${LAB_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  LAB_PIDS=("${keep[@]}")
  return $rc
}

# lab_wait_pid PID TIMEOUT_S: waits (bounded) for a lab_spawn'ed process to
# exit by itself; returns its exit status, or 124 (and kills it) on timeout.
lab_wait_pid() {
  local pid=$1 limit=$(( ${2:-10} * 10 )) i rc=0
  for (( i = 0; i < limit; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then lab_stop "$pid" KILL; return 124; fi
  wait "$pid" 2>/dev/null || rc=$?
  local keep=() p
  for p in "${LAB_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  LAB_PIDS=("${keep[@]}")
  return $rc
}

# lab_wait_log FILE REGEX [TIMEOUT_S]: waits (bounded, default 5 s) until a
# line of FILE matches REGEX (grep -E).
lab_wait_log() {
  local file=$1 re=$2 limit=$(( ${3:-5} * 20 )) i
  [[ $file == /* ]] || file="$LAB_DIR/$file"
  for (( i = 0; i < limit; i++ )); do
    grep -qE -- "$re" "$file" 2>/dev/null && return 0
    sleep 0.05
  done
  _lab_err "timed out waiting for /$re/ in $file"
}

# lab_probe NAME ARGS...: runs "$UDP_PROBE ARGS..." inside NAME.
lab_probe() {
  [[ -n ${UDP_PROBE:-} && -x ${UDP_PROBE:-} ]] || _lab_err "set UDP_PROBE to the udp_probe binary" || return 1
  local name=$1; shift
  lab_exec "$name" "$UDP_PROBE" "$@"
}

# lab_echo_server NAME PORT [MAX_SECONDS]: starts "udp_probe echo" (UDP+TCP)
# inside NAME and waits until it listens. Sets LAB_LAST_PID.
lab_echo_server() {
  [[ -n ${UDP_PROBE:-} && -x ${UDP_PROBE:-} ]] || _lab_err "set UDP_PROBE to the udp_probe binary" || return 1
  local name=$1 port=$2 max=${3:-60} log
  log="echo-$name-$port.log"
  lab_spawn "$name" "$log" "$UDP_PROBE" echo "$port" --max-seconds "$max" || return 1
  lab_wait_log "$log" "^listening on $port" 5
}

# lab_info: prints the lab's nodes (name, kind, namespace, addresses).
lab_info() {
  local n
  printf '%-12s %-8s %-15s %-18s %-16s %s\n' NAME KIND TYPE/ROUTER NAMESPACE ADDRESS PUBLIC
  for n in "${LAB_NODES[@]}"; do
    printf '%-12s %-8s %-15s %-18s %-16s %s\n' "$n" "${LAB_KIND[$n]}" \
      "${LAB_TYPE[$n]:-${LAB_ROUTER_OF[$n]:--}}" \
      "$([[ ${LAB_KIND[$n]} == open ]] && echo - || echo "${LAB_PFX}-$n")" \
      "${LAB_IP[$n]:--}" "$(lab_public_ip "$n")"
  done
}

# _lab_cleanup_id ID: removes every namespace kh<ID>-* (stopping whatever
# still runs inside, by PID), any stray kh<ID>* link, and /tmp/khlab.<ID>.
_lab_cleanup_id() {
  local id=$1 ns pid link left
  [[ $id =~ ^[0-9a-f]{4}$ ]] || { echo "lab: bad id '$id'" >&2; return 1; }
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^kh${id}-"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^kh${id}-"); do
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^kh${id}"); do
    ip link del "$link" 2>/dev/null || true
  done
  rm -rf "${LAB_TMP_ROOT:-/tmp}/khlab.$id"
  left=$(ip netns list 2>/dev/null | grep -c "^kh${id}-" || true)
  [[ $left -eq 0 ]] || { echo "lab: $left namespaces kh${id}-* could not be removed" >&2; return 1; }
}

# lab_cleanup: stops the processes this lab started and deletes exactly its
# namespaces (and with them its links and bridges) and its state folder.
# Safe to call twice; runs automatically on EXIT/INT/TERM after lab_init.
lab_cleanup() {
  local - pid i ns
  set +eu
  [[ -n $LAB_ID && -z $_LAB_CLEANED ]] || return 0
  # Only the shell that made the lab tears it down (not a subshell).
  [[ $BASHPID == "$_LAB_OWNER_BASHPID" ]] || return 0
  _LAB_CLEANED=1
  for pid in "${LAB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${LAB_PIDS[@]}"; do
    for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  LAB_PIDS=()
  # Anything else still running inside our namespaces (started via lab_exec
  # in the background by a test) is ours too: stop it by PID.
  for ns in "${LAB_NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for (( i = ${#LAB_NAMESPACES[@]} - 1; i >= 0; i-- )); do
    ip netns del "${LAB_NAMESPACES[i]}" 2>/dev/null
  done
  if [[ ${LAB_KEEP_LOGS:-0} == 1 && -d $LAB_DIR ]]; then
    rm -rf "$LAB_TMP_ROOT/khlab-logs.$LAB_ID"
    mv "$LAB_DIR" "$LAB_TMP_ROOT/khlab-logs.$LAB_ID" && _lab_log "logs kept in $LAB_TMP_ROOT/khlab-logs.$LAB_ID"
  fi
  _lab_cleanup_id "$LAB_ID" || true
  _lab_log "lab $LAB_ID: cleaned up"
  return 0
}

# lab_cleanup_stale: removes labs whose owner process is gone (a run killed
# with SIGKILL cannot clean up after itself).
lab_cleanup_stale() {
  local d id owner
  for d in "${LAB_TMP_ROOT:-/tmp}"/khlab.????; do
    [[ -d $d ]] || continue
    id=${d##*.}
    [[ $id != "${LAB_ID:-}" ]] || continue
    owner=$(cat "$d/owner" 2>/dev/null || true)
    if [[ -n $owner ]] && kill -0 "$owner" 2>/dev/null; then continue; fi
    # A lab being created right now may not have written its owner yet.
    if [[ -z $owner ]] && [[ -n $(find "$d" -maxdepth 0 -mmin -1 2>/dev/null) ]]; then continue; fi
    echo "lab: removing stale lab $id (owner ${owner:-unknown} is gone)" >&2
    _lab_cleanup_id "$id" || true
  done
}

# Housekeeping when run as a script.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -u
  case ${1:-} in
    list)
      ip netns list | awk '{print $1}' | grep -E '^kh[0-9a-f]{4}-' || echo "no lab namespaces"
      ls -d "$LAB_TMP_ROOT"/khlab.???? 2>/dev/null || true
      ;;
    cleanup)
      [[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
      [[ -n ${2:-} ]] || { echo "usage: $0 cleanup ID" >&2; exit 2; }
      _lab_cleanup_id "$2"
      ;;
    cleanup-stale)
      [[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
      lab_cleanup_stale
      ;;
    *)
      echo "usage: source $0 (library), or: $0 list | cleanup ID | cleanup-stale" >&2
      exit 2
      ;;
  esac
fi
