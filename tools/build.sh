#!/usr/bin/env bash
# Configures and builds keyhole.
# Usage: tools/build.sh BUILD_DIR [cmake args...] [-- targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=$1; shift
cmake_args=(); targets=()
while [[ $# -gt 0 ]]; do
  if [[ $1 == -- ]]; then shift; targets=("$@"); break; fi
  cmake_args+=("$1"); shift
done
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${KEYHOLE_BUILD_TYPE:-RelWithDebInfo}" "${cmake_args[@]}" >/dev/null
if [[ ${#targets[@]} -gt 0 ]]; then
  cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]}"
else
  cmake --build "$build_dir" -j "$(nproc)"
fi
