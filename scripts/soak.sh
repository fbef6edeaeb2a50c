#!/usr/bin/env bash
# scripts/soak.sh — builds memq-soak (Release, in build/) and runs the long soak against a fresh memqd.
# Usage: scripts/soak.sh [SECONDS] [extra memq-soak options, e.g. --seed 42]   (default 600 seconds)
# Exit status: memq-soak's (0 ok, 1 a check failed: the output ends with the seed to replay, 2 bad usage).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
build_dir=${MEMQ_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$build_dir/CMakeCache.txt" ] && generator=()
cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMEMQ_WERROR=ON >/dev/null
cmake --build "$build_dir" --parallel "${MEMQ_JOBS:-$(nproc)}" --target memq-soak memqd
exec "$build_dir/bin/memq-soak" --seconds "$seconds" "$@"
