#!/usr/bin/env bash
# Installs keyhole's build and test dependencies from Debian 12's packages.
# The package test needs dpkg-dev and file (CPack's dependency scan),
# systemd (systemd-analyze), python3 (a stand-in NOTIFY_SOCKET), util-linux
# (setpriv) and passwd (temporary users).
# Idempotent: does nothing (and needs no network) when everything is present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopendht-dev libgnutls28-dev libmsgpack-cxx-dev libsodium-dev libasio-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libtomlplusplus-dev libsqlite3-dev
  libsystemd-dev libgtest-dev
  dhtnode iproute2 nftables conntrack procps
  dpkg-dev file systemd python3 util-linux passwd adduser
  iptables libnetfilter-queue-dev tcpdump
)

# The Noise interop test runs an independent implementation on Node.js; a
# machine that already has node and npm (from anywhere) keeps its own.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "Installing: ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# --no-install-recommends keeps the set small; dhtnode's own service is not ours to start.
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Debian's dhtnode package enables a service that joins the public DHT; the
# tests only run the binary by hand, so keep that service off if we added it.
if [[ " ${missing[*]} " == *" dhtnode "* ]] && [[ -d /run/systemd/system ]]; then
  "${sudo_cmd[@]}" systemctl disable --now dhtnode.service >/dev/null 2>&1 || true
fi
