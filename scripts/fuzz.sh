#!/usr/bin/env bash
# scripts/fuzz.sh — owns fuzzing memq: installs clang 14 + libFuzzer if
# missing, builds tests/fuzz (ASan + UBSan) into build-fuzz/, and runs each
# target for SECONDS on a scratch copy of its seed corpus (the repository's
# corpus is never written). Prints executions and coverage per target; exits
# non-zero if any target crashed, leaving the crashing input under
# build-fuzz/artifacts/<target>/ and the report in build-fuzz/logs/.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default: 30 s, every target)
# Env:   MEMQ_FUZZ_BUILD_DIR (build-fuzz), MEMQ_FUZZ_ARGS (extra libFuzzer flags),
#        MEMQ_FUZZ_KEEP=DIR (keep each grown corpus in DIR/<target>, e.g. for coverage).
# Replay one input: build-fuzz/fuzz_codec FILE   (or memq_fuzz_*_replay FILE).
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(fuzz_codec fuzz_core fuzz_log_scan)
seconds=${1:-30}
[ $# -gt 0 ] && shift
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]  (targets: ${all_targets[*]})" >&2
  exit 2
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $target "* ]] || { echo "fuzz: unknown target '$target' (${all_targets[*]})" >&2; exit 2; }
done

# -- toolchain (Debian packages, like scripts/setup.sh)
packages=(clang-14 libclang-rt-14-dev cmake nlohmann-json3-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    "${sudo_cmd[@]}" apt-get update -q
    "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# -- build
build_dir=${MEMQ_FUZZ_BUILD_DIR:-build-fuzz}
generator=()
command -v ninja >/dev/null && [ ! -f "$build_dir/CMakeCache.txt" ] && generator=(-G Ninja)
cmake -S tests/fuzz -B "$build_dir" "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)" --target "${targets[@]}"

# -- run
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$build_dir/logs"
declare -A max_len=([fuzz_codec]=4096 [fuzz_core]=8192 [fuzz_log_scan]=8192)
failed=()
summary=()
for target in "${targets[@]}"; do
  corpus="$scratch/$target"
  artifacts="$build_dir/artifacts/$target"
  log="$build_dir/logs/$target.log"
  mkdir -p "$corpus" "$artifacts"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/
  echo "== $target: ${seconds}s (log: $log)"
  status=0
  # shellcheck disable=SC2086  # MEMQ_FUZZ_ARGS is a list of flags
  "$build_dir/$target" "$corpus" \
    -max_total_time="$seconds" -max_len="${max_len[$target]}" -timeout=20 -rss_limit_mb=2560 \
    -dict=tests/fuzz/memq.dict -print_final_stats=1 -artifact_prefix="$artifacts/" \
    ${MEMQ_FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
  if [ -n "${MEMQ_FUZZ_KEEP:-}" ]; then
    mkdir -p "$MEMQ_FUZZ_KEEP/$target"
    cp "$corpus"/* "$MEMQ_FUZZ_KEEP/$target"/
  fi
  done_line=$(grep -a -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  executions=$(grep -a '^stat::number_of_executed_units:' "$log" | awk '{print $2}' | tail -n 1 || true)
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    summary+=("$target: CRASHED (exit $status) after ${executions:-?} executions")
    echo "-- $target crashed; the report:" >&2
    grep -a -A 8 -E 'FAILED|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|invariant failed' "$log" | head -n 40 >&2 || true
    grep -a -E "Test unit written to|^Base64:" "$log" >&2 || true
  else
    summary+=("$target: ${executions:-?} executions; ${done_line:-no DONE line}")
  fi
done

echo "== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build_dir/artifacts/, logs in $build_dir/logs/)" >&2
  exit 1
fi
