#!/usr/bin/env bash
# scripts/build.sh — configures and builds memq into build/ (Release, warnings as errors).
# Usage: scripts/build.sh [extra cmake -D options...]
# Env:   MEMQ_BUILD_DIR (default build), MEMQ_BUILD_TARGETS (space-separated
#        targets to build; default: all). The configuration does not depend on
#        the targets, so run.sh (memqd and memq only) and test.sh (everything)
#        share build/ and neither makes the other rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${MEMQ_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$build_dir/CMakeCache.txt" ] && generator=()
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMEMQ_WERROR=ON "$@" >/dev/null
targets=()
for target in ${MEMQ_BUILD_TARGETS:-}; do targets+=(--target "$target"); done
cmake --build "$build_dir" --parallel "$(nproc)" "${targets[@]}"
