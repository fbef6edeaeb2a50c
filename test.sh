#!/usr/bin/env bash
# test.sh — sets up, builds and runs every memq test suite. This is the
# command the README gives and the one .ci/run calls.
#   1. the C++ suites (ctest) on the Release build in build/;
#   2. the same suites built with AddressSanitizer + UndefinedBehaviorSanitizer
#      in build-asan/ (skip with MEMQ_SKIP_SANITIZERS=1 for a quicker local run);
#   3. libFuzzer on the codec and on the whole core, MEMQ_FUZZ_SECONDS each
#      (default 30; 0 skips; scripts/fuzz.sh runs longer campaigns);
#   4. the Python conformance suite against memqd, through the memq package.
set -euo pipefail
cd "$(dirname "$0")"

scripts/setup.sh
scripts/build.sh

echo "== C++ suites (ctest, Release)"
(cd build && ctest --output-on-failure --timeout 300 -j "$(nproc)")

if [ "${MEMQ_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== C++ suites (ctest, ASan + UBSan)"
  # -O1 and line tables only: what sanitizer reports need, at half the
  # compile time of RelWithDebInfo's -O2 -g. The benchmarks are not built here.
  MEMQ_BUILD_DIR=build-asan scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DMEMQ_SANITIZE=ON -DMEMQ_BUILD_BENCH=OFF
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure --timeout 600 -j "$(nproc)")
fi

if [ "${MEMQ_FUZZ_SECONDS:-30}" != 0 ]; then
  echo "== Fuzzing (libFuzzer, ASan + UBSan)"
  scripts/fuzz.sh "${MEMQ_FUZZ_SECONDS:-30}"
fi

echo "== Python suite (pytest)"
scripts/test-python.sh
