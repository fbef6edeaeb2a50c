#!/usr/bin/env bash
# bench/run.sh — the memq benchmark: installs nats-server and redis-server,
# builds memqd, memq-bench and memq-micro, starts its own broker instances on
# free loopback ports, runs every workload against each broker interleaved
# (rounds of A B C, medians), runs the core microbenchmarks, and writes
# docs/benchmarks.md and docs/benchmarks.png. Everything it starts it stops,
# by pid. Loopback only; every wait is bounded.
# Sections: main (the above), durable (memqd in memory, with --data-dir
# under each --fsync policy, Redis Streams with AOF everysec and always,
# NATS JetStream file storage: acked 1 -> 1 throughput and latency at
# 10k msg/s), metrics (memqd without --metrics, with it, and scraped every
# 100 ms). A run of some sections keeps the others' text in the report.
#
# Usage: bench/run.sh [--quick] [--rounds N] [--brokers memqd,nats,redis]
#                     [--sections main,durable,metrics]
#                     [--server-cmd "CMD {port} {cache_size}"] [--server-name NAME]
#                     [--cache-size N] [--nice N] [--no-build] [--no-micro]
#                     [--memqd PATH] [--results DIR] [--md PATH] [--png PATH]
#   --quick        one round, short phases: a smoke run (~2 minutes)
#   --sections     which sections to run (default all three; durable and
#                  metrics take 3 rounds, or --rounds if fewer)
#   --server-cmd   also measure any aiomemq-protocol server; {port} and
#                  {cache_size} are replaced; it is started with exec, so its
#                  pid is the server's own (for CPU and memory readings)
#   --nice N       run at this niceness (e.g. -10 on a machine shared with
#                  builds; recorded in the report). The script then re-runs
#                  itself in a session of its own and sets that session's
#                  autogroup niceness too: with autogrouping on, plain nice only
#                  ranks processes inside their own session.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
all_args=("$@")

quick=0
rounds=5
brokers="memqd,nats,redis"
server_cmd=""
server_name="custom"
cache_size=100
nice_level=0
build=1
micro=1
memqd=""
results=""
out_md="docs/benchmarks.md"
out_png="docs/benchmarks.png"
sections="main,durable,metrics"

die() { echo "run.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; rounds=1 ;;
    --rounds) rounds=${2:?}; shift ;;
    --brokers) brokers=${2:?}; shift ;;
    --server-cmd) server_cmd=${2:?}; shift ;;
    --server-name) server_name=${2:?}; shift ;;
    --cache-size) cache_size=${2:?}; shift ;;
    --nice) nice_level=${2:?}; shift ;;
    --no-build) build=0 ;;
    --no-micro) micro=0 ;;
    --memqd) memqd=${2:?}; shift ;;
    --results) results=${2:?}; shift ;;
    --md) out_md=${2:?}; shift ;;
    --png) out_png=${2:?}; shift ;;
    --sections) sections=${2:?}; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
[[ "$rounds" =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] && [ "$rounds" -le 20 ] || die "--rounds must be in 1..20"
[[ "$cache_size" =~ ^[0-9]+$ ]] || die "--cache-size must be a number"
[[ "$sections" =~ ^(main|durable|metrics)(,(main|durable|metrics))*$ ]] || die "--sections: a list of main, durable, metrics"
wants() { [[ ",$sections," == *",$1,"* ]]; }
[[ "$nice_level" =~ ^-?[0-9]+$ ]] && [ "$nice_level" -ge -20 ] && [ "$nice_level" -le 19 ] || die "--nice must be in -20..19"
# Prefix of every broker and memq-bench command line.
run_nice=()
[ "$nice_level" = 0 ] || run_nice=(nice -n "$nice_level")
if [ "$nice_level" != 0 ]; then
  if [ -z "${MEMQ_BENCH_SESSION:-}" ] && command -v setsid >/dev/null; then
    # Re-run in a new session (so a new autogroup); pass Ctrl-C and TERM on.
    MEMQ_BENCH_SESSION=1 setsid "$0" "${all_args[@]}" &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null || true' INT TERM
    rc=0
    wait "$child" || rc=$?
    while kill -0 "$child" 2>/dev/null; do wait "$child" || rc=$?; done
    exit "$rc"
  fi
  if [ -w /proc/self/autogroup ]; then
    echo "$nice_level" >/proc/self/autogroup 2>/dev/null || echo "run.sh: could not set the autogroup niceness" >&2
  fi
fi
if [ -n "$server_cmd" ]; then
  [[ "$server_name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--server-name: letters, digits, . _ - only"
  brokers="$brokers,$server_name"
fi

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- packages ---------------------------------------------------------------
install_packages() {
  local missing=()
  command -v nats-server >/dev/null || missing+=(nats-server)
  command -v redis-server >/dev/null || missing+=(redis-server)
  # python3-matplotlib is for Debian's own python3 (PATH may put another first).
  /usr/bin/python3 -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${missing[@]}" >/dev/null || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
  # The Debian package may start the system redis service: we run our own.
  if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    if command -v service >/dev/null && service redis-server status >/dev/null 2>&1; then
      service redis-server stop >/dev/null 2>&1 || true
    fi
  fi
}
install_packages
python=python3
python3 -c 'import matplotlib' 2>/dev/null || python=/usr/bin/python3

# ---- build ------------------------------------------------------------------
if grep -q 'add_subdirectory(bench)' CMakeLists.txt; then
  bin_dir=build/bin
  if [ "$build" = 1 ]; then log "building (scripts/build.sh)"; scripts/build.sh; fi
else
  bin_dir=build-bench/bin
  if [ "$build" = 1 ]; then
    log "building memqd (build/) and bench (build-bench/, standalone)"
    [ -f build/CMakeCache.txt ] || cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build --target memqd --parallel "$(nproc)" >/dev/null
    cmake -S bench -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build-bench --parallel "$(nproc)" >/dev/null
  fi
fi
memqd=${memqd:-build/bin/memqd}
bench_bin=$bin_dir/memq-bench
micro_bin=$bin_dir/memq-micro
[ -x "$memqd" ] || die "no memqd at $memqd"
[ -x "$bench_bin" ] || die "no memq-bench at $bench_bin"
if [ -x "$bin_dir/memq-bench-selftest" ]; then
  "$bin_dir/memq-bench-selftest" >/dev/null || die "memq-bench-selftest failed: the load generator's parsers are wrong"
fi

results=${results:-build-bench/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$results"
: > "$results/results.jsonl"
log "results in $results"

# ---- servers ----------------------------------------------------------------
started=()
cleanup() {
  local pid
  for pid in "${started[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${started[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  started=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until 127.0.0.1:$1 accepts connections and pid $2 lives (10 s at most).
wait_port() {
  local _
  for _ in $(seq 100); do
    kill -0 "$2" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

proto_of() {
  case "$1" in
    nats) echo nats ;;
    redis) echo redis ;;
    redis-everysec|redis-always) echo redis-streams ;;
    jetstream) echo jetstream ;;
    *) echo memq ;;
  esac
}

# start_server NAME TAG: sets server_pid and server_port.
start_server() {
  local name=$1 tag=$2 logf="$results/$1-$2.log"
  server_port=$(free_port)
  case "$name" in
    memqd)
      local port_file="$results/memqd-$tag.port"
      rm -f "$port_file"
      "${run_nice[@]}" "$memqd" --port 0 --port-file "$port_file" --cache-size "$cache_size" \
        --max-pending-bytes 67108864 --log-level warn >"$logf" 2>&1 &
      server_pid=$!
      started+=("$server_pid")
      for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.1; done
      [ -s "$port_file" ] || die "memqd did not write its port file (see $logf)"
      server_port=$(cat "$port_file")
      ;;
    nats)
      "${run_nice[@]}" nats-server -a 127.0.0.1 -p "$server_port" >"$logf" 2>&1 &
      server_pid=$!
      started+=("$server_pid")
      ;;
    redis)
      "${run_nice[@]}" redis-server --port "$server_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --maxclients 11000 >"$logf" 2>&1 &
      server_pid=$!
      started+=("$server_pid")
      ;;
    *)
      local cmd=${server_cmd//\{port\}/$server_port}
      cmd=${cmd//\{cache_size\}/$cache_size}
      "${run_nice[@]}" bash -c "exec $cmd" >"$logf" 2>&1 &
      server_pid=$!
      started+=("$server_pid")
      ;;
  esac
  wait_port "$server_port" "$server_pid" || die "$name did not start listening on $server_port (see $logf)"
}

stop_server() {
  local pid=$1 kept=() p
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${started[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  started=("${kept[@]}")
}

# ---- the machine and the versions --------------------------------------------
IFS=, read -r -a broker_list <<<"$brokers"
version_of() {
  case "$1" in
    memqd) "$memqd" --version 2>&1 | head -1 ;;
    nats) nats-server --version 2>&1 | head -1 ;;
    redis) redis-server --version 2>&1 | head -1 | sed 's/ sha=.*malloc=/ malloc=/; s/ bits=.*//' ;;
    *) echo "$server_cmd" ;;
  esac
}
{
  echo "{"
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\","
  echo "  \"nproc\": $(nproc),"
  echo "  \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//; s/"/\\"/g')\","
  echo "  \"kernel\": \"$(uname -r)\","
  echo "  \"mem_gib\": $(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo),"
  echo "  \"load_before\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo "  \"quick\": $quick, \"rounds\": $rounds, \"cache_size\": $cache_size, \"nice\": $nice_level,"
  echo "  \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- broker 2>/dev/null || echo +local)\","
  echo "  \"versions\": {"
  sep=""
  for b in "${broker_list[@]}"; do
    printf '%s    "%s": "%s"' "$sep" "$b" "$(version_of "$b" | sed 's/"/\\"/g')"
    sep=$',\n'
  done
  echo
  echo "  }"
  echo "}"
} >"$results/meta.json"

# ---- workloads -----------------------------------------------------------------
if [ "$quick" = 1 ]; then
  t_main="--warmup 0.3 --duration 1"; t_lat="--warmup 0.3 --duration 1.5"; t_sweep="--warmup 0.2 --duration 0.6"
else
  t_main="--warmup 0.5 --duration 2"; t_lat="--warmup 0.5 --duration 3"; t_sweep="--warmup 0.3 --duration 1.2"
fi
# name|arguments of memq-bench
workloads=(
  "1to1|--pubs 1 --subs 1 --topics 1 --payload 64 $t_main"
  "fanout100|--pubs 1 --subs 100 --topics 1 --payload 64 $t_main"
  "100x100|--pubs 100 --subs 100 --topics 100 --payload 64 $t_main"
  "latency10k|--pubs 1 --subs 1 --topics 1 --payload 64 --rate 10000 $t_lat"
  "saturation|--pubs 1 --subs 1 --topics 1 --payload 64 --window-bytes 262144 $t_main"
)
for size in 16 256 1024 4096 16384 65536; do
  workloads+=("payload$size|--pubs 1 --subs 1 --topics 1 --payload $size $t_sweep")
done

# run_one BROKER PID PORT WORKLOAD ROUND ARGS...
run_one() {
  local broker=$1 pid=$2 port=$3 workload=$4 round=$5
  shift 5
  local out rc=0
  out=$(timeout 120 "${run_nice[@]}" "$bench_bin" --proto "$(proto_of "$broker")" --port "$port" --pid "$pid" \
        --label "$broker/$workload/$round" "$@" 2>"$results/last-stderr.txt") || rc=$?
  if [ -n "$out" ]; then
    echo "$out" >>"$results/results.jsonl"
  else
    printf '{"label": "%s/%s/%s", "failed": true, "errors": ["exit %s: %s"]}\n' "$broker" "$workload" "$round" \
      "$rc" "$(head -c 300 "$results/last-stderr.txt" | tr '"\n' "' ")" >>"$results/results.jsonl"
  fi
  [ "$rc" = 0 ] || log "  $broker $workload round $round: exit $rc $(head -c 200 "$results/last-stderr.txt")"
}

declare -A pid_of port_of
if wants main; then
for b in "${broker_list[@]}"; do
  start_server "$b" main
  pid_of[$b]=$server_pid
  port_of[$b]=$server_port
  log "$b: pid $server_pid, port $server_port"
done

n=${#broker_list[@]}
for round in $(seq "$rounds"); do
  log "round $round of $rounds"
  for entry in "${workloads[@]}"; do
    name=${entry%%|*}
    read -r -a args <<<"${entry#*|}"
    # Rotate the broker order every round: no broker always goes first.
    for k in $(seq 0 $((n - 1))); do
      b=${broker_list[$(((k + round) % n))]}
      run_one "$b" "${pid_of[$b]}" "${port_of[$b]}" "$name" "$round" "${args[@]}"
    done
  done
done
for b in "${broker_list[@]}"; do stop_server "${pid_of[$b]}"; done

# Idle connections: a fresh instance each time, so memory from earlier runs
# (kept by the allocator) does not hide the cost of a connection.
log "idle connections"
conns_rounds=$((rounds < 3 ? rounds : 3))  # memory readings vary little
for round in $(seq "$conns_rounds"); do
  for k in $(seq 0 $((n - 1))); do
    b=${broker_list[$(((k + round) % n))]}
    start_server "$b" "conns$round"
    sleep 0.5
    run_one "$b" "$server_pid" "$server_port" conns "$round" --workload conns --conns 10000 --settle 1
    stop_server "$server_pid"
  done
done

# ---- microbenchmarks -------------------------------------------------------------
if [ "$micro" = 1 ] && [ -x "$micro_bin" ]; then
  log "microbenchmarks"
  if [ "$quick" = 1 ]; then reps=1; min_time=0.1; else reps=3; min_time=0.5; fi
  timeout 300 "${run_nice[@]}" "$micro_bin" --benchmark_min_time="$min_time" --benchmark_repetitions="$reps" \
    --benchmark_out="$results/micro.json" --benchmark_out_format=json >"$results/micro.txt" 2>&1 ||
    log "memq-micro failed (see $results/micro.txt)"
fi
fi  # main

# ---- durable and metrics sections: configurations of one broker each ---------------
# Data dirs live in one temporary directory, removed at the end.
data_root=$(mktemp -d "${TMPDIR:-/tmp}/memq-bench-data.XXXXXX")
trap 'cleanup; rm -rf "$data_root"' EXIT
section_rounds=$((rounds < 3 ? rounds : 3))
# (Not a pipe into grep -q: under pipefail, memqd's write into a closed pipe would fail it.)
memqd_has_data_dir() { [[ "$("$memqd" --help 2>/dev/null)" == *--data-dir* ]]; }

# start_config NAME TAG: sets server_pid and server_port (and metrics_port for memqd).
start_config() {
  local name=$1 tag=$2 logf="$results/$1-$2.log" dir="$data_root/$1-$2"
  mkdir -p "$dir"
  server_port=$(free_port)
  metrics_port=""
  local memqd_args=() redis_fsync=""
  case "$name" in
    memqd-mem|memqd-nometrics) ;;
    memqd-interval) memqd_args=(--data-dir "$dir" --fsync interval) ;;
    memqd-always) memqd_args=(--data-dir "$dir" --fsync always) ;;
    memqd-metrics|memqd-scraped) memqd_args=(--metrics 127.0.0.1:0 --metrics-port-file "$dir/metrics-port") ;;
    redis-everysec) redis_fsync=everysec ;;
    redis-always) redis_fsync=always ;;
    jetstream) ;;
    *) die "unknown configuration $name" ;;
  esac
  case "$name" in
    memqd-*)
      local port_file="$dir/port"
      "${run_nice[@]}" "$memqd" --port 0 --port-file "$port_file" --cache-size "$cache_size" \
        --max-pending-bytes 67108864 --log-level warn "${memqd_args[@]}" >"$logf" 2>&1 &
      server_pid=$!
      started+=("$server_pid")
      for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.1; done
      [ -s "$port_file" ] || die "memqd ($name) did not write its port file (see $logf)"
      server_port=$(cat "$port_file")
      [ ! -s "$dir/metrics-port" ] || metrics_port=$(cat "$dir/metrics-port")
      ;;
    redis-*)
      "${run_nice[@]}" redis-server --port "$server_port" --bind 127.0.0.1 --save '' --appendonly yes \
        --appendfsync "$redis_fsync" --dir "$dir" --daemonize no >"$logf" 2>&1 &
      server_pid=$!
      started+=("$server_pid")
      ;;
    jetstream)
      "${run_nice[@]}" nats-server -a 127.0.0.1 -p "$server_port" -js -sd "$dir" >"$logf" 2>&1 &
      server_pid=$!
      started+=("$server_pid")
      ;;
  esac
  wait_port "$server_port" "$server_pid" || die "$name did not start listening on $server_port (see $logf)"
}

# run_configs SECTION WORKLOAD-ENTRIES... over the configurations in $configs,
# one instance of each for the whole section, rounds rotating the order.
run_configs() {
  local section=$1
  shift
  local entries=("$@") names=() c
  IFS=, read -r -a names <<<"$configs"
  declare -A cpid cport cmetrics
  for c in "${names[@]}"; do
    if [ "$c" = memqd-scraped ] && [ -n "${cpid[memqd-metrics]:-}" ]; then
      # The same instance as memqd-metrics: scraped or not is then the only difference.
      cpid[$c]=${cpid[memqd-metrics]}; cport[$c]=${cport[memqd-metrics]}; cmetrics[$c]=${cmetrics[memqd-metrics]}
      continue
    fi
    start_config "$c" "$section"
    cpid[$c]=$server_pid
    cport[$c]=$server_port
    cmetrics[$c]=$metrics_port
    log "$c: pid $server_pid, port $server_port"
  done
  local count=${#names[@]} round k entry name args scraper
  for round in $(seq "$section_rounds"); do
    log "$section: round $round of $section_rounds"
    for entry in "${entries[@]}"; do
      name=${entry%%|*}
      read -r -a args <<<"${entry#*|}"
      for k in $(seq 0 $((count - 1))); do
        c=${names[$(((k + round) % count))]}
        scraper=""
        if [ "$c" = memqd-scraped ]; then
          # Scrapes /metrics every 100 ms for as long as the run (60 s at most).
          "$python" bench/scraper.py "${cmetrics[$c]}" --interval 0.1 --limit 60 --label "$c/$name/$round" \
            >>"$results/scrapes.jsonl" 2>>"$results/scraper-stderr.txt" &
          scraper=$!
        fi
        run_one "$c" "${cpid[$c]}" "${cport[$c]}" "$name" "$round" "${args[@]}"
        if [ -n "$scraper" ]; then kill -TERM "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; fi
      done
    done
  done
  for c in "${names[@]}"; do
    kill -0 "${cpid[$c]}" 2>/dev/null || continue  # stopped already (a shared instance)
    [ -z "${cmetrics[$c]}" ] || curl -s --max-time 5 "http://127.0.0.1:${cmetrics[$c]}/metrics" >"$results/$c-metrics.txt" || true
    stop_server "${cpid[$c]}"
  done
}

if wants durable; then
  log "durable section"
  configs="memqd-mem,redis-everysec,redis-always,jetstream"
  if memqd_has_data_dir; then
    configs="memqd-mem,memqd-interval,memqd-always,redis-everysec,redis-always,jetstream"
  else
    log "memqd has no --data-dir yet: its durable rows are left out"
  fi
  run_configs durable \
    "d1to1|--pubs 1 --subs 1 --topics 1 --payload 64 --acked $t_main" \
    "dlatency10k|--pubs 1 --subs 1 --topics 1 --payload 64 --acked --rate 10000 $t_lat"
  if memqd_has_data_dir; then
    # Issue 12's recovery target: 1M known topics and 256 MiB cached (smaller with --quick).
    if [ "$quick" = 1 ]; then recovery_size=(--topics 100000 --cache-mib 32); else recovery_size=(--topics 1000000 --cache-mib 256); fi
    log "recovery: ${recovery_size[*]}"
    # Past 10k topics recovery.sh writes the data dir with memq-make-data-dir (the fill would take minutes).
    "${run_nice[@]}" bench/recovery.sh "${recovery_size[@]}" --rounds "$section_rounds" --memqd "$memqd" \
      --bench "$bench_bin" --make-data-dir "$bin_dir/memq-make-data-dir" \
      >"$results/recovery.jsonl" 2>"$results/recovery-stderr.txt" ||
      log "recovery.sh failed (see $results/recovery-stderr.txt)"
  fi
fi

if wants metrics; then
  log "metrics section"
  configs="memqd-nometrics,memqd-metrics,memqd-scraped"
  : >"$results/scrapes.jsonl"
  run_configs metrics "m1to1|--pubs 1 --subs 1 --topics 1 --payload 64 $t_main"
fi

sed -i "s/^}$/, \"load_after\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}/" "$results/meta.json"

# ---- the report ----------------------------------------------------------------------
"$python" bench/report.py --results "$results/results.jsonl" --meta "$results/meta.json" \
  --micro "$results/micro.json" --md "$out_md" --png "$out_png" --sections "$sections"
log "wrote $out_md and $out_png"
