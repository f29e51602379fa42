#!/usr/bin/env bash
# The keyhole demo: a local network on loopback of one bootstrap node and two
# daemons, Alice and Bob, who find each other by public-key ID alone and chat.
# Installs what is missing, builds, runs, explains, and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
echo "Building keyhole (first time takes a few minutes)..."
tools/build.sh build >/dev/null

# The test helpers start and stop daemons by the PIDs they started.
source tests/integration/lib.sh build/bin

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

say "1. Starting a bootstrap node: a DHT node that only helps others find the network."
kh_start bootstrap 4400 --bootstrap-only
echo "   keyholed --bootstrap-only listening on UDP 127.0.0.1:4400"

say "2. Starting two daemons, Alice and Bob. Each makes an Ed25519 key pair on first start."
kh_start alice 4401 --bootstrap 127.0.0.1:4400
kh_start bob 4402 --bootstrap 127.0.0.1:4400
alice=$(kh_id alice)
bob=$(kh_id bob)
echo "   Alice's ID: $alice"
echo "   Bob's ID:   $bob"
echo "   An ID is the public key plus a checksum; it is all anyone needs to reach its owner."

say "3. Each daemon joins the DHT and publishes a signed identity record."
kh_wait_for "Alice to join the DHT" 30 bash -c "build/bin/keyhole --socket '$KH_TMP/alice/control.sock' status --json | grep -q '\"dht_nodes\": *[1-9]'"
kh alice status | sed 's/^/   /'

say "4. Alice looks up Bob by his ID. The record she gets back is verified: signature, key, expiry."
kh_wait_for "Alice to find Bob" 30 kh alice lookup "$bob"
kh alice lookup "$bob" | sed 's/^/   /'

say "5. A mistyped ID is caught by its checksum before any lookup happens."
typo="${bob:0:5}$([[ ${bob:5:1} == a ]] && echo b || echo a)${bob:6}"
echo "   \$ keyhole lookup $typo"
kh alice lookup "$typo" 2>&1 | sed 's/^/   /' || true

say "6. Alice sends Bob a message by his ID. It is stored in her outbox before the command returns;"
echo "   her daemon then makes a Noise IK handshake with Bob's through his DHT inbox, punches a"
echo "   direct UDP path, and waits for Bob's daemon to acknowledge the message (stored in his inbox)."
echo "   \$ keyhole send $bob 'Hi Bob, it is Alice.' --wait"
started=$(date +%s%N)
kh alice send "$bob" "Hi Bob, it is Alice." --wait=30 >/dev/null
echo "   delivered and acknowledged after $(( ($(date +%s%N) - started) / 1000000 )) ms (lookup, handshake, punch and delivery included)"

say "7. Bob reads his inbox and answers."
kh bob inbox | sed 's/^/   /'
kh bob send "$alice" "Hello Alice! Got it, end to end encrypted." --wait=30 >/dev/null
kh alice inbox | sed 's/^/   /'

say "8. The session between them: path type, endpoint, round-trip time."
kh alice peers | sed 's/^/   /'

say "9. Alice's side of the conversation (✓ = Bob's daemon acknowledged it):"
kh alice history "$bob" | sed 's/^/   /'

say "Done. Stopping the three daemons and removing their temporary state."
