#!/usr/bin/env bash
# test.sh — sets up, builds and runs every memq test suite. This is the
# command the README gives and the one .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")"

scripts/setup.sh
scripts/build.sh

echo "== C++ suites (ctest)"
(cd build && ctest --output-on-failure --timeout 300 -j "$(nproc)")

if [ -x scripts/test-python.sh ]; then
  echo "== Python suite (pytest)"
  scripts/test-python.sh
fi
