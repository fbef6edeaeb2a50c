#!/usr/bin/env bash
# scripts/test-wheel.sh — builds the memq wheel and proves that it works where
# nothing can be compiled: installed into a fresh venv with a PATH that has
# no compiler, cmake or ninja, it must give `memqd` and `memq` commands, a
# working `import memq` (blocking and asyncio clients) and the pytest fixtures.
#   scripts/test-wheel.sh [OUT_DIR]   (the wheel is left in OUT_DIR, default dist/)
# It prints the wheel's size and contents. The build reuses build/python/,
# as `pip install .` does (setup.py).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${MEMQ_VENV:-.venv}
out_dir=${1:-dist}
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"

work=$(mktemp -d /tmp/memq-wheel-test.XXXXXX)
memqd_pid=""
cleanup() {
  [ -z "$memqd_pid" ] || kill "$memqd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# ---- build -----------------------------------------------------------------------
mkdir -p "$out_dir"
rm -f "$out_dir"/memq-*.whl
"$venv/bin/pip" wheel --quiet --no-index --no-deps --no-build-isolation -w "$out_dir" .
wheel=$(ls "$out_dir"/memq-*.whl)
echo "wheel: $wheel ($(du -k "$wheel" | cut -f1) KiB)"
"$venv/bin/python" -m zipfile -l "$wheel"

# ---- a PATH where nothing compiles: only the interpreter -----------------------------
bare="$work/bare-bin"
mkdir "$bare"
ln -s /usr/bin/python3 "$bare/python3"
for tool in g++ c++ cc gcc cmake ninja; do
  if PATH="$bare" command -v "$tool" >/dev/null; then
    echo "test-wheel: $tool is on the bare PATH" >&2
    exit 1
  fi
done

# A fresh venv; the system site packages only for pytest and pytest-asyncio.
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
run_bare() { env -i HOME="$work" PATH="$work/venv/bin:$bare" LANG=C.UTF-8 "$@"; }
for tool in g++ c++ cc gcc cmake ninja; do
  if run_bare python3 -c "import shutil, sys; sys.exit(shutil.which('$tool') is None)"; then
    echo "test-wheel: $tool is reachable from the venv's PATH" >&2
    exit 1
  fi
done
run_bare pip install --quiet --no-index --no-deps "$wheel"

# ---- the commands ----------------------------------------------------------------
run_bare memqd --help | head -n 1
run_bare memq --help | head -n 1
# Not through run_bare: a function in the background is a subshell, whose pid is not memqd's.
env -i HOME="$work" PATH="$work/venv/bin:$bare" LANG=C.UTF-8 memqd --port 0 --port-file "$work/port" --log-level warn &
memqd_pid=$!
for _ in $(seq 200); do  # polls for the port file, up to 10 s
  [ -s "$work/port" ] && break
  kill -0 "$memqd_pid" 2>/dev/null || { echo "test-wheel: memqd exited" >&2; exit 1; }
  sleep 0.05
done
port=$(cat "$work/port")
echo "memqd (pid $memqd_pid) listens on $port"

# memq CLI: a message published, then read back from the broker's cache.
run_bare memq --port "$port" pub wheel-topic "from the memq command"
got=$(run_bare memq --port "$port" sub wheel-topic --count 1)
[ "$got" = "from the memq command" ] || { echo "test-wheel: memq sub printed '$got'" >&2; exit 1; }
echo "memq pub/sub: $got"

# import memq, blocking and asyncio, from outside the checkout.
(cd "$work" && run_bare python3 - "$port" <<'EOF'
import asyncio
import sys

import memq
import memq.aio

port = int(sys.argv[1])
with memq.Client(port=port) as client:
    client.subscribe("wheel-python")
    client.send("wheel-python", "blocking")
    print("memq.Client:", client.receive(timeout=5).msg)


async def main():
    async with memq.aio.Client(port=port) as client:
        await client.subscribe("wheel-aio")
        await client.send("wheel-aio", "asyncio")
        print("memq.aio.Client:", (await client.receive(timeout=5)).msg)

asyncio.run(main())
print("import memq from", memq.__file__)
EOF
)

# The pytest fixtures, blocking and asyncio, from the installed plugin.
cat > "$work/test_fixtures.py" <<'EOF'
import pytest


def test_broker_fixture(broker):
    with broker.client() as client:
        client.subscribe("t")
        client.send("t", "hi")
        assert client.receive(timeout=5).msg == "hi"


@pytest.mark.asyncio
async def test_aio_client_fixture(aio_client):
    await aio_client.subscribe("t")
    await aio_client.send("t", "hi")
    assert (await aio_client.receive(timeout=5)).msg == "hi"
EOF
(cd "$work" && run_bare python3 -m pytest -q -p no:cacheprovider test_fixtures.py)

kill "$memqd_pid"
wait "$memqd_pid" || { echo "test-wheel: memqd exited with $?" >&2; exit 1; }
memqd_pid=""
echo "test-wheel: the wheel works without a compiler"
