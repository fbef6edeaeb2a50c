#!/usr/bin/env bash
# run.sh — sets up, builds and starts memqd in the foreground, by default on
# 127.0.0.1:7000. Extra arguments go to memqd (try ./run.sh --help).
set -euo pipefail
cd "$(dirname "$0")"

scripts/setup.sh
scripts/build.sh
exec build/bin/memqd "$@"
