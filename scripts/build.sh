#!/usr/bin/env bash
# scripts/build.sh — configures and builds memq into build/ (Release, warnings as errors).
# Usage: scripts/build.sh [extra cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${MEMQ_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$build_dir/CMakeCache.txt" ] && generator=()
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMEMQ_WERROR=ON "$@" >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)"
