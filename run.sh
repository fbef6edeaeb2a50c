#!/usr/bin/env bash
# run.sh — sets up, builds and starts memqd in the foreground, by default on
# 127.0.0.1:7000. It builds only what it runs: memqd, and the `memq` command
# line tool the README uses next (build/bin/memq); ./test.sh builds the rest in
# the same build/ without redoing these. Extra arguments go to memqd
# (try ./run.sh --help).
set -euo pipefail
cd "$(dirname "$0")"

scripts/setup.sh
MEMQ_BUILD_TARGETS="memqd memq" scripts/build.sh >&2
exec build/bin/memqd "$@"
