#!/usr/bin/env bash
# scripts/test-python.sh — installs the memq Python package into .venv (a venv
# over Debian's site-packages: pytest and pybind11 come from apt, there is no
# PyPI) and runs the Python conformance suite against memqd (the memq.aio tests
# included), then the asyncio variant of the conformance suite against the
# aiomemq reference server (tests/python/aiomemq_reference_server.py).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${MEMQ_VENV:-.venv}
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install --quiet --no-index --no-deps --no-build-isolation .
# From outside the checkout, so that `import memq` is the installed package.
(cd /tmp && "$OLDPWD/$venv/bin/python" -c "import memq, memq.testing; print('memq', memq.__version__, 'installed')")
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python "$@"
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/python/test_aio_conformance.py -m "not memq_decision" \
  --server-cmd "$venv/bin/python tests/python/aiomemq_reference_server.py {port} {cache_size}"
