#!/usr/bin/env bash
# bench/tls.sh — TLS against plain TCP, and against NATS with TLS, in one run:
# 1 → 1 and fan-out 1 → 100 (64-byte payloads) on memqd's plain port, memqd's
# TLS port (one memqd serving both), NATS plain and NATS with TLS, rounds
# interleaved, medians. Makes its certificates with tests/tls/make_certs.sh.
# Writes the "TLS" section of docs/benchmarks.md (between its markers; the
# rest of the file is bench/run.sh's) and the raw results to --results DIR.
# Everything it starts it stops, by pid. Loopback only; every wait is bounded.
#
# Usage: bench/tls.sh [--rounds N] [--duration S] [--no-build] [--md PATH] [--results DIR]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

rounds=3
duration=2
build=1
out_md="docs/benchmarks.md"
results=""
die() { echo "tls.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=${2:?}; shift ;;
    --duration) duration=${2:?}; shift ;;
    --no-build) build=0 ;;
    --md) out_md=${2:?}; shift ;;
    --results) results=${2:?}; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
command -v nats-server >/dev/null || die "nats-server is not installed (Debian: nats-server)"
command -v openssl >/dev/null || die "openssl is not installed (scripts/setup.sh)"

build_dir=${MEMQ_BUILD_DIR:-build}
if [ "$build" = 1 ]; then MEMQ_BUILD_TARGETS="memqd memq-bench" scripts/build.sh >/dev/null; fi
memqd="$build_dir/bin/memqd"
bench_bin="$build_dir/bin/memq-bench"
[ -x "$memqd" ] && [ -x "$bench_bin" ] || die "no $memqd or $bench_bin (build first)"

[ -n "$results" ] || results=$(mktemp -d /tmp/memq-tls-bench.XXXXXX)
mkdir -p "$results"
: >"$results/results.jsonl"
certs="$results/certs"
tests/tls/make_certs.sh "$certs"

started=()
cleanup() {
  local pid
  for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
# Waits until 127.0.0.1:$1 accepts connections and pid $2 lives (10 s at most).
wait_port() {
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# One memqd, both ports.
rm -f "$results/memqd.port" "$results/memqd.tls-port"
"$memqd" --port 0 --port-file "$results/memqd.port" --tls-port 0 --tls-port-file "$results/memqd.tls-port" \
  --tls-cert "$certs/server.pem" --tls-key "$certs/server.key" --max-pending-bytes 67108864 --log-level warn \
  >"$results/memqd.log" 2>&1 &
memqd_pid=$!
started+=("$memqd_pid")
for _ in $(seq 100); do [ -s "$results/memqd.port" ] && break; sleep 0.1; done
[ -s "$results/memqd.port" ] || die "memqd did not write its port file (see $results/memqd.log)"
nats_port=$(free_port)
nats-server -a 127.0.0.1 -p "$nats_port" >"$results/nats.log" 2>&1 &
nats_pid=$!
started+=("$nats_pid")
nats_tls_port=$(free_port)
nats-server -a 127.0.0.1 -p "$nats_tls_port" --tls --tlscert "$certs/server.pem" --tlskey "$certs/server.key" \
  >"$results/nats-tls.log" 2>&1 &
nats_tls_pid=$!
started+=("$nats_tls_pid")
wait_port "$nats_port" "$nats_pid" || die "nats-server did not listen"
wait_port "$nats_tls_port" "$nats_tls_pid" || die "nats-server --tls did not listen"

# name|proto|pid|port|extra arguments
brokers=(
  "memqd-tcp|memq|$memqd_pid|$(cat "$results/memqd.port")|"
  "memqd-tls|memq|$memqd_pid|$(cat "$results/memqd.tls-port")|--tls $certs/ca.pem"
  "nats-tcp|nats|$nats_pid|$nats_port|"
  "nats-tls|nats|$nats_tls_pid|$nats_tls_port|--tls $certs/ca.pem"
)
workloads=(
  "1to1|--pubs 1 --subs 1 --topics 1 --payload 64"
  "fanout100|--pubs 1 --subs 100 --topics 1 --payload 64"
)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
  echo "tls.sh: round $round of $rounds" >&2
  for workload in "${workloads[@]}"; do
    for broker in "${brokers[@]}"; do
      IFS='|' read -r name proto pid port extra <<<"$broker"
      read -r -a workload_args <<<"${workload#*|}"
      read -r -a extra_args <<<"$extra"
      out=$(timeout 120 "$bench_bin" --proto "$proto" --port "$port" --pid "$pid" --warmup 0.5 --duration "$duration" \
        --label "$name/${workload%%|*}/$round" "${workload_args[@]}" "${extra_args[@]}" 2>"$results/last-stderr.txt") || {
        echo "tls.sh: $name ${workload%%|*} round $round failed: $(head -c 300 "$results/last-stderr.txt")" >&2
        continue
      }
      echo "$out" >>"$results/results.jsonl"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$results/results.jsonl" "$out_md" "$rounds" "$duration" "$load_before" "$load_after" \
  "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(nats-server --version 2>&1 | head -1)" <<'PY'
import json, statistics, sys
path, md, rounds, duration, load_before, load_after, commit, nats_version = sys.argv[1:]
runs = {}
for line in open(path):
    result = json.loads(line)
    name, workload, _ = result["label"].split("/")
    runs.setdefault((name, workload), []).append(result)

def med(name, workload, key):
    values = [r[key] for r in runs.get((name, workload), []) if not r.get("errors")]
    return statistics.median(values) if values else None

def rate(value):
    return "—" if value is None else (f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k")

brokers = [("memqd-tcp", "memqd, plain TCP"), ("memqd-tls", "memqd, TLS"), ("nats-tcp", "NATS, plain TCP"),
           ("nats-tls", "NATS, TLS")]
workloads = [("1to1", "1 → 1"), ("fanout100", "fan-out 1 → 100")]
lines = ["<!-- tls:begin: written by bench/tls.sh; edit that, not this section -->",
         "## TLS: memqd over TLS, against plain TCP and NATS with TLS", "",
         f"`bench/tls.sh`: one memqd serving its plain port and its TLS port (`--tls-port`, an EC P-256 "
         f"certificate, TLS 1.3 negotiated), NATS ({nats_version}) plain and with `--tls`; memq-bench speaks TLS "
         f"with `--tls CA`. 64-byte payloads, saturating publisher, {duration} s measured after 0.5 s warm-up; "
         f"median of {rounds} interleaved rounds. Deliveries per second (p50 / p99 latency in brackets). "
         f"Commit {commit}. **The machine was shared** with other builds and test runs during this run "
         f"(load average {load_before} before, {load_after} after, on 2 cores), so the absolute figures are "
         f"low and noisy; the ratios within one round are the figures to read.", "",
         "| workload | " + " | ".join(title for _, title in brokers) + " | memqd TLS / TCP | memqd TLS / NATS TLS |",
         "|---|" + "---|" * (len(brokers) + 2)]
for workload, title in workloads:
    cells = []
    for name, _ in brokers:
        value = med(name, workload, "deliveries_per_s")
        p50, p99 = med(name, workload, "p50_us"), med(name, workload, "p99_us")
        latency = "" if p50 is None else f" ({p50 / 1e3:.1f} / {p99 / 1e3:.1f} ms)"
        cells.append(rate(value) + latency)
    tls, tcp, nats_tls = (med(n, workload, "deliveries_per_s") for n in ("memqd-tls", "memqd-tcp", "nats-tls"))
    ratio = lambda a, b: "—" if not a or not b else f"{a / b:.2f}"
    lines.append(f"| {title} | " + " | ".join(cells) + f" | {ratio(tls, tcp)} | {ratio(tls, nats_tls)} |")
cpu = []
for workload, title in workloads:
    parts = []
    for name, label in brokers:
        value = med(name, workload, "server_cpu_us_per_delivery")
        if value is not None and value >= 0:
            parts.append(f"{label} {value:.2f}")
    cpu.append(f"{title}: " + ", ".join(parts))
lines += ["", "Server CPU per delivery (µs): " + "; ".join(cpu) + ".", "<!-- tls:end -->"]
section = "\n".join(lines) + "\n"

try:
    text = open(md).read()
except FileNotFoundError:
    text = ""
begin, end = text.find("<!-- tls:begin"), text.find("<!-- tls:end -->")
if begin >= 0 and end >= 0:
    text = text[:begin] + section + text[end + len("<!-- tls:end -->\n"):]
else:
    text = text.rstrip("\n") + "\n\n" + section
open(md, "w").write(text)
print(section)
PY
echo "tls.sh: results in $results" >&2
