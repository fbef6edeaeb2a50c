#!/usr/bin/env bash
# bench/recovery.sh — how long memqd takes to recover a full data dir. Makes
# a fresh --data-dir holding N known topics and M MiB of cached messages,
# either through the protocol (--fill: memqd runs and memq-bench --workload
# fill sends, then memqd is killed with SIGKILL) or directly
# (--generate: memq-make-data-dir writes the log a memqd would have written:
# every topic with one cached message, the rest on --hot-topics topics).
# Then it starts memqd on the dir and times, from the exec, until it listens
# (its port file appears) and until its metrics show every topic back, and
# kills it with SIGKILL; --rounds times. Prints one JSON line per restart and
# a summary line (medians) on stdout. Everything it starts it stops, by pid;
# loopback only; every wait is bounded. Needs a memqd with --data-dir.
#
# Usage: bench/recovery.sh [--topics N] [--cache-mib M] [--payload B]
#                          [--generate|--fill] [--hot-topics H]
#                          [--fsync interval|always] [--rounds R]
#                          [--memqd PATH] [--bench PATH] [--make-data-dir PATH]
#                          [--data-root DIR]
#   --topics N      known topics, each with a cached message (1000000)
#   --cache-mib M   --fill: payload bytes sent, in MiB; --generate: cached
#                   frame bytes written, in MiB (256)
#   --payload B     bytes of each message's payload (200; --generate: of the
#                   hot topics' messages, the others' are 16)
#   --generate      write the data dir directly (the default past
#                   GENERATE_ABOVE_TOPICS topics); --fill: through the protocol
#   --hot-topics H  --generate: topics that get the bytes past one message each (1000)
#   --fsync         memqd's policy (interval)
#   --rounds R      restarts of the dir (3)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

topics=1000000
cache_mib=256
payload=200
fsync=interval
rounds=3
memqd=build/bin/memqd
bench_bin=build/bin/memq-bench
make_data_dir=build/bin/memq-make-data-dir
data_root=${TMPDIR:-/tmp}
mode=""
hot_topics=1000
readonly GENERATE_ABOVE_TOPICS=10000  # the fill takes minutes past this
readonly KILL_WAIT_S=10          # a killed memqd is gone within this
readonly LISTEN_DEADLINE_S=120   # a restart listens within this, or the run fails
readonly FILL_TIMEOUT_S=900
readonly INTERVAL_SYNC_WAIT_S=3  # under --fsync interval (1 s), what the fill sent is synced after this

die() { echo "recovery.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --topics) topics=${2:?}; shift ;;
    --cache-mib) cache_mib=${2:?}; shift ;;
    --payload) payload=${2:?}; shift ;;
    --fsync) fsync=${2:?}; shift ;;
    --rounds) rounds=${2:?}; shift ;;
    --memqd) memqd=${2:?}; shift ;;
    --bench) bench_bin=${2:?}; shift ;;
    --data-root) data_root=${2:?}; shift ;;
    --make-data-dir) make_data_dir=${2:?}; shift ;;
    --generate) mode=generate ;;
    --fill) mode=fill ;;
    --hot-topics) hot_topics=${2:?}; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
for number in "$topics" "$cache_mib" "$payload" "$rounds" "$hot_topics"; do
  [[ "$number" =~ ^[1-9][0-9]*$ ]] || die "--topics, --cache-mib, --payload, --hot-topics and --rounds take positive integers"
done
if [ -z "$mode" ]; then
  if [ "$topics" -gt "$GENERATE_ABOVE_TOPICS" ]; then mode=generate; else mode=fill; fi
fi
[ "$rounds" -le 20 ] || die "--rounds must be at most 20"
[[ "$fsync" =~ ^(interval|always)$ ]] || die "--fsync: interval or always"
[ -x "$memqd" ] || die "no memqd at $memqd"
if [ "$mode" = fill ]; then
  [ -x "$bench_bin" ] || die "no memq-bench at $bench_bin"
else
  [ -x "$make_data_dir" ] || die "no memq-make-data-dir at $make_data_dir"
fi
[[ "$("$memqd" --help 2>/dev/null)" == *--data-dir* ]] || die "this memqd has no --data-dir yet (issue 12): nothing to recover"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

work=$(mktemp -d "$data_root/memq-recovery.XXXXXX")
pid=""
cleanup() {
  # A restart whose timing script failed left its memqd's pid only in the file.
  if [ -z "$pid" ] && [ -s "$work/pid" ]; then pid=$(cat "$work/pid"); fi
  if [ -n "$pid" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

data_dir=$work/data
cache_size=100  # memqd's default
if [ "$mode" = generate ]; then
  log "generating $data_dir: $topics topics, $cache_mib MiB of cached frames ($hot_topics hot topics, $payload-byte payloads)"
  generated=$("$make_data_dir" "$data_dir" --topics "$topics" --cache-mib "$cache_mib" --hot-topics "$hot_topics" \
              --payload "$payload" --topic-prefix recovery) || die "memq-make-data-dir failed"
  echo "$generated"
  cache_size=$(echo "$generated" | python3 -c 'import json,sys; print(json.load(sys.stdin)["most_per_topic"])')
fi
# Room for every topic and every cached frame (a frame is the payload plus its JSON around it).
cache_bytes=$((cache_mib * 1048576 * 4 + topics * 512))
memqd_args=(--port 0 --port-file "$work/port" --metrics 127.0.0.1:0 --metrics-port-file "$work/metrics-port"
            --data-dir "$data_dir" --fsync "$fsync" --max-topics "$topics" --max-indexed-topics "$topics"
            --max-cache-bytes "$cache_bytes" --cache-size "$cache_size" --log-level warn)

metric() {  # metric NAME: its value on memqd's metrics port now
  curl -s --max-time 5 "http://127.0.0.1:$(cat "$work/metrics-port")/metrics" | awk -v name="$1" '$1 == name {print $2}'
}

if [ "$mode" = fill ]; then
  mkdir -p "$data_dir"
  log "filling $data_dir: $topics topics, $cache_mib MiB of $payload-byte payloads (--fsync $fsync)"
  "$memqd" "${memqd_args[@]}" 2>"$work/memqd-fill.log" &
  pid=$!
  for _ in $(seq 600); do [ -s "$work/port" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  [ -s "$work/port" ] || die "memqd did not start (see its log: $(head -c 300 "$work/memqd-fill.log"))"
  fill=$(timeout "$FILL_TIMEOUT_S" "$bench_bin" --workload fill --port "$(cat "$work/port")" --topics "$topics" \
         --fill-bytes $((cache_mib * 1048576)) --payload "$payload" --topic-prefix recovery \
         --setup-timeout "$FILL_TIMEOUT_S" --label fill) || die "the fill failed: $fill"
  echo "$fill"
  known=$(metric memq_topics_known)
  cached_messages=$(metric memq_cached_messages)
  cached_bytes=$(metric memq_cached_bytes)
  log "filled: $known topics known, $cached_messages messages in $cached_bytes cached bytes"
  [ "$fsync" = always ] || sleep "$INTERVAL_SYNC_WAIT_S"
else
  known=$topics
fi

restart_times=()
all_topics_times=()
for round in $(seq "$rounds"); do
  if [ -n "$pid" ]; then
    kill -KILL "$pid"
    for _ in $(seq $((KILL_WAIT_S * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
  rm -f "$work/port" "$work/metrics-port" "$work/pid"
  # The disk idle when memqd starts: what the generator, the fill or a run
  # before this script left dirty is written back first, not during the start.
  sync
  disk_bytes=$(du -sb "$data_dir" | cut -f1)
  # Timed in Python: exec, then the port file every millisecond, then the
  # metrics until every topic is known again. memqd's pid goes to a file so
  # that this script can stop it.
  timing=$(python3 - "$work" "$known" "$LISTEN_DEADLINE_S" "$memqd" "${memqd_args[@]}" <<'PY'
import json, os, subprocess, sys, time, urllib.request
work, known, deadline_s, command = sys.argv[1], int(float(sys.argv[2])), float(sys.argv[3]), sys.argv[4:]
log = open(os.path.join(work, "memqd-restart.log"), "a")
start = time.monotonic()
# stdout is not inherited: the shell reads this script's stdout until every holder closes it.
process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                           start_new_session=True)
with open(os.path.join(work, "pid"), "w") as handle:
    handle.write(str(process.pid))
deadline = start + deadline_s
port_file = os.path.join(work, "port")
while not (os.path.exists(port_file) and os.path.getsize(port_file) > 0):
    if process.poll() is not None or time.monotonic() > deadline:
        print(json.dumps({"error": "memqd did not listen", "exit": process.poll()}))
        sys.exit(0)
    time.sleep(0.001)
listening = time.monotonic() - start
metrics_port = int(open(os.path.join(work, "metrics-port")).read())
values = {}
while True:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        values = dict(line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    except (OSError, TimeoutError):
        pass  # the loop is busy (the start-up snapshot is built on it): ask again until the deadline
    if time.monotonic() > deadline:
        break
    if int(float(values.get("memq_topics_known", "0"))) >= known:
        break
    time.sleep(0.001)
recovered = int(float(values.get("memq_topics_known", "0")))
print(json.dumps({"listen_seconds": listening, "all_topics_seconds": time.monotonic() - start,
                  "complete": recovered >= known, "topics_known": recovered,
                  "cached_messages": int(float(values.get("memq_cached_messages", "0"))),
                  "cached_bytes": int(float(values.get("memq_cached_bytes", "0")))}))
PY
)
  pid=$(cat "$work/pid")
  echo "$timing" | python3 -c '
import json, sys
timing = json.loads(sys.stdin.read())
timing.update({"workload": "recovery", "round": int(sys.argv[1]), "topics": int(sys.argv[2]),
               "fill_mib": int(sys.argv[3]), "fsync": sys.argv[4], "disk_bytes": int(sys.argv[5]),
               "payload": int(sys.argv[6]), "made_by": sys.argv[7],
               "load_average": float(open("/proc/loadavg").read().split()[0])})
print(json.dumps(timing))' "$round" "$topics" "$cache_mib" "$fsync" "$disk_bytes" "$payload" "$mode"
  case "$timing" in *error*) die "restart $round failed: $timing" ;; esac
  restart_times+=("$(echo "$timing" | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen_seconds"])')")
  all_topics_times+=("$(echo "$timing" | python3 -c 'import json,sys; print(json.load(sys.stdin)["all_topics_seconds"])')")
  log "restart $round: $timing"
done
python3 -c '
import json, statistics, sys
listen = [float(value) for value in sys.argv[1].split()]
all_topics = [float(value) for value in sys.argv[2].split()]
print(json.dumps({"workload": "recovery-summary", "made_by": sys.argv[3], "restarts": len(listen),
                  "median_listen_seconds": statistics.median(listen), "max_listen_seconds": max(listen),
                  "median_all_topics_seconds": statistics.median(all_topics),
                  "max_all_topics_seconds": max(all_topics)}))' "${restart_times[*]}" "${all_topics_times[*]}" "$mode"
