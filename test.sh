#!/usr/bin/env bash
# test.sh — sets up, builds and runs every memq test suite. This is the
# command the README gives and the one .ci/run calls.
#   1. the C++ suites (ctest) on the Release build in build/;
#   2. the installed SDK: `cmake --install` into a temporary prefix, then
#      examples/pubsub built against it through find_package(memq) and run
#      against a memqd it starts (scripts/test-sdk.sh);
#   3. the same C++ suites built with AddressSanitizer + UndefinedBehaviorSanitizer
#      in build-asan/ (skip with MEMQ_SKIP_SANITIZERS=1 for a quicker local run);
#   4. the suites that use threads built with ThreadSanitizer in build-tsan/
#      (skipped with the sanitizers too);
#   5. libFuzzer on the codec and on the whole core, MEMQ_FUZZ_SECONDS each
#      (default 30; 0 skips; scripts/fuzz.sh runs longer campaigns);
#   6. the Python conformance suite against memqd, through the memq package,
#      and ./run.sh as a new user runs it.
#   7. the documentation: the transcripts and snippets of README.md,
#      client/README.md, docs/operations.md and docs/testing.md, run against
#      memqds it starts (scripts/check_docs.py, in the venv of stage 6).
#   8. the wheel: built with `pip wheel`, installed into a fresh venv with a
#      PATH that has no compiler, cmake or ninja, and its memqd and memq
#      commands, import memq (blocking and asyncio) and its pytest fixtures
#      run from there (scripts/test-wheel.sh).
# It says each stage as it starts, and the time of each and of the whole at the end.
set -euo pipefail
cd "$(dirname "$0")"

stage_names=()
stage_seconds=()
stage_started=0
current_stage=""
suite_started=$SECONDS

finish_stage() {
  [ -n "$current_stage" ] || return 0
  stage_names+=("$current_stage")
  stage_seconds+=($((SECONDS - stage_started)))
  current_stage=""
}
stage() {
  finish_stage
  current_stage=$1
  stage_started=$SECONDS
  echo "== [$(date +%H:%M:%S)] $current_stage"
}
report() {
  local status=$?
  finish_stage
  echo "== stage times"
  local i
  for i in "${!stage_names[@]}"; do
    printf '   %5ds  %s\n' "${stage_seconds[$i]}" "${stage_names[$i]}"
  done
  printf '   %5ds  total (%s)\n' $((SECONDS - suite_started)) "$([ "$status" -eq 0 ] && echo passed || echo FAILED)"
}
trap report EXIT

stage "setup (Debian packages)"
scripts/setup.sh

stage "build (Release, build/)"
scripts/build.sh

stage "C++ suites (ctest, Release)"
(cd build && ctest --output-on-failure --timeout 300 -j "$(nproc)")

stage "installed SDK (examples/pubsub against an install prefix)"
scripts/test-sdk.sh build

if [ "${MEMQ_SKIP_SANITIZERS:-0}" != 1 ]; then
  stage "C++ suites (build and ctest, ASan + UBSan, build-asan/)"
  # -O1 and line tables only: what sanitizer reports need, at half the
  # compile time of RelWithDebInfo's -O2 -g. The benchmarks are not built here.
  MEMQ_BUILD_DIR=build-asan scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DMEMQ_SANITIZE=ON -DMEMQ_BUILD_BENCH=OFF
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure --timeout 600 -j "$(nproc)")
fi

if [ "${MEMQ_SKIP_SANITIZERS:-0}" != 1 ]; then
  stage "threaded suites (build and ctest -L threads, ThreadSanitizer, build-tsan/)"
  # Only what uses threads: memq-sim --jobs, Client and AsyncClient (and the
  # memqd and memq they run), memqd's LogWriter, at -O1 -g1 like the ASan build.
  MEMQ_BUILD_DIR=build-tsan MEMQ_BUILD_TARGETS="memq-sim memq_client_tests memqd memq memq_log_writer_tests" scripts/build.sh \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" -DMEMQ_TSAN=ON -DMEMQ_BUILD_BENCH=OFF
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
     ctest --output-on-failure --timeout 600 -j "$(nproc)" -L threads)
fi

if [ "${MEMQ_FUZZ_SECONDS:-30}" != 0 ]; then
  stage "fuzzing (libFuzzer, ASan + UBSan, ${MEMQ_FUZZ_SECONDS:-30} s a target)"
  scripts/fuzz.sh "${MEMQ_FUZZ_SECONDS:-30}"
fi

stage "Python suite (pytest) and ./run.sh"
scripts/test-python.sh

stage "documentation (scripts/check_docs.py: transcripts and snippets run)"
"${MEMQ_VENV:-.venv}/bin/python" scripts/check_docs.py --build build

stage "wheel (scripts/test-wheel.sh: built, installed and run without a compiler)"
scripts/test-wheel.sh
