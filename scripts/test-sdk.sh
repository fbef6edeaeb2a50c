#!/usr/bin/env bash
# scripts/test-sdk.sh — tests the C++ SDK the way an application uses it:
# installs BUILD_DIR (default build) into a temporary prefix, builds
# examples/pubsub against that prefix alone through find_package(memq), and
# runs it against a memqd started here on a free port. Exits non-zero if the
# installed headers do not compile, the package is not found, or the example
# does not print every message it sent.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=$(realpath "${1:-build}")
work=$(mktemp -d)
memqd_pid=""
cleanup() {
  [ -z "$memqd_pid" ] || kill "$memqd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
echo "sdk: installed headers: $(cd "$work/prefix/include" && find . -type f | sort | tr '\n' ' ')"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S examples/pubsub -B "$work/example" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >/dev/null
cmake --build "$work/example" >/dev/null

"$build_dir/bin/memqd" --port 0 --port-file "$work/port" --log-level warn &
memqd_pid=$!
for _ in $(seq 1 1000); do  # until memqd writes its port (or dies), at most ~10 s
  [ -s "$work/port" ] && break
  kill -0 "$memqd_pid" 2>/dev/null || { echo "sdk: memqd exited before listening" >&2; exit 1; }
  sleep 0.01
done
[ -s "$work/port" ] || { echo "sdk: memqd wrote no port file" >&2; exit 1; }

output=$("$work/example/pubsub" "$(cat "$work/port")")
echo "$output" | sed 's/^/sdk: pubsub: /'
expected=$'#0 hello, memq\n#1 pipelined 0\n#2 pipelined 1\n#3 pipelined 2'
if [ "$output" != "$expected" ]; then
  echo "sdk: examples/pubsub printed something else; expected:" >&2
  echo "$expected" >&2
  exit 1
fi
echo "sdk: examples/pubsub built against the installed SDK and received all 4 messages"
