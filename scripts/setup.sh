#!/usr/bin/env bash
# scripts/setup.sh — installs what memq builds and tests with, from Debian packages.
# Idempotent: does nothing when every package is already installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libasio-dev nlohmann-json3-dev
  libssl-dev openssl  # TLS: asio::ssl links OpenSSL; tests make certificates with the openssl CLI
  prometheus  # promtool, which checks /metrics in tests/python/test_metrics.py
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  pybind11-dev python3-pybind11 python3-pytest python3-setuptools python3-venv python3-dev python3-pip
  python3-pytest-asyncio python3-wheel  # memq.aio's tests and fixtures; `pip wheel` (scripts/test-wheel.sh)
  openssl  # the certificates of tests/python/test_aio_tls.py
  python3-redis redis-server  # bench/python_clients.py: redis-py's asyncio client on Redis pub/sub, side by side
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
