#!/usr/bin/env bash
# Installs what is missing, builds, and runs every keyhole test:
#   1. unit tests built with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   2. the whole suite, unit and integration with real daemons (build/)
# Tests that need root (network namespaces) skip with a message when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
# An independent Noise implementation (npm) for the handshake interop test.
if command -v npm >/dev/null && [[ ! -d tests/noise_vectors/node_modules/noise-protocol ]]; then
  npm ci --prefix tests/noise_vectors --no-audit --no-fund >/dev/null || echo "npm ci failed: the Noise interop tests will skip"
fi

echo "== building (sanitizers) =="
KEYHOLE_BUILD_TYPE=Debug tools/build.sh build-asan -DKEYHOLE_SANITIZE=ON -- identity_tests node_tests dht_tests transport_tests
echo "== building (RelWithDebInfo) =="
tools/build.sh build

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0
echo "== unit tests under ASan+UBSan =="
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure 2>&1 | tee "$logs/asan.txt" || status=1
echo "== all tests =="
ctest --test-dir build --output-on-failure 2>&1 | tee "$logs/all.txt" || status=1

# One closing line for both runs.
totals() { sed -n 's/.* \([0-9]*\) tests failed out of \([0-9]*\).*/\1 \2/p' "$1" | tail -1; }
read -r failed_a total_a <<<"$(totals "$logs/asan.txt")" || true
read -r failed_b total_b <<<"$(totals "$logs/all.txt")" || true
failed=$(( ${failed_a:-0} + ${failed_b:-0} ))
total=$(( ${total_a:-0} + ${total_b:-0} ))
# ctest counts a skipped test (exit 77) as passed; say it apart.
skipped=$(cat "$logs/asan.txt" "$logs/all.txt" | grep -c '(Skipped)$' || true)
if [[ $total -eq 0 ]]; then echo "no tests ran"; exit 1; fi
echo "tests: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
exit $status
