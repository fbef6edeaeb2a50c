#!/usr/bin/env python3
"""bench/report.py — turns bench/run.sh's raw results (memq-bench JSON lines,
memq-micro's Google Benchmark JSON, the scraper's JSON lines, the machine's
facts) into docs/benchmarks.md and the chart docs/benchmarks.png.

docs/benchmarks.md has three sections, each between `<!-- section:NAME -->`
and `<!-- /section:NAME -->` markers: main (memqd against NATS and Redis),
durable (memqd with --data-dir against Redis Streams and NATS JetStream) and
metrics (the cost of --metrics and of scrapes). Sections not in --sections
keep their text from the existing file."""

import argparse
import json
import os
import re
import statistics
import sys
from collections import defaultdict

SECTIONS = ("main", "durable", "metrics")
DURABLE_CONFIGS = ["memqd-mem", "memqd-interval", "memqd-always", "redis-everysec", "redis-always", "jetstream"]
DURABLE_TEXT = {
    "memqd-mem": "memqd, in memory (no `--data-dir`)",
    "memqd-interval": "memqd `--data-dir D --fsync interval` (1 s)",
    "memqd-always": "memqd `--data-dir D --fsync always`",
    "redis-everysec": "Redis Streams, `appendonly yes`, `appendfsync everysec`",
    "redis-always": "Redis Streams, `appendonly yes`, `appendfsync always`",
    "jetstream": "NATS JetStream, file storage",
}
METRICS_CONFIGS = ["memqd-nometrics", "memqd-metrics", "memqd-scraped"]
METRICS_TEXT = {
    "memqd-nometrics": "memqd without `--metrics`",
    "memqd-metrics": "memqd `--metrics 127.0.0.1:0`, not scraped (turn times recorded)",
    "memqd-scraped": "the same memqd, `/metrics` scraped every 100 ms",
}

SWEEP = [16, 64, 256, 1024, 4096, 16384, 65536]


def load_results(path):
    runs = defaultdict(list)  # (broker, workload) -> [result]
    failures = []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                result = json.loads(line)
            except json.JSONDecodeError:
                failures.append(("?", "?", "unparsable line: " + line[:120]))
                continue
            broker, workload, _round = (result.get("label", "?/?/?").split("/") + ["?", "?"])[:3]
            if result.get("failed") or result.get("errors") or result.get("lost", 0) > 0:
                what = "; ".join(result.get("errors", [])) or "{} deliveries lost".format(result.get("lost"))
                failures.append((broker, workload, what))
            if not result.get("failed"):
                runs[(broker, workload)].append(result)
    return runs, failures


def median(runs, broker, workload, key):
    values = [r[key] for r in runs.get((broker, workload), []) if isinstance(r.get(key), (int, float)) and r[key] >= 0]
    return statistics.median(values) if values else None


def spread(runs, broker, workload, key):
    values = [r[key] for r in runs.get((broker, workload), []) if isinstance(r.get(key), (int, float)) and r[key] >= 0]
    return (min(values), max(values)) if values else None


def si(value, digits=2):
    if value is None:
        return "—"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return "{:.{}f}{}".format(value / factor, digits, suffix)
    return "{:.0f}".format(value)


def rate_cell(runs, broker, workload, key):
    middle = median(runs, broker, workload, key)
    if middle is None:
        return "—"
    low, high = spread(runs, broker, workload, key)
    if len(runs.get((broker, workload), [])) < 2:
        return si(middle)
    return "{} <sub>({}–{})</sub>".format(si(middle), si(low, 1), si(high, 1))


def micros(value):
    if value is None:
        return "—"
    if value >= 10000:
        return "{:.1f} ms".format(value / 1000)
    return "{:.0f}".format(value) if value >= 100 else "{:.1f}".format(value)


def kib_cell(runs, broker, key):
    value = median(runs, broker, "conns", key)
    return "—" if value is None else "{:.1f} KiB".format(value / 1024)


def latency_cell(runs, broker, workload):
    parts = [median(runs, broker, workload, key) for key in ("p50_us", "p99_us", "p999_us")]
    if parts[0] is None:
        return "—"
    return " / ".join(micros(p) for p in parts)


def load_micro(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as handle:
        data = json.load(handle)
    rows = defaultdict(list)
    for bench in data.get("benchmarks", []):
        if bench.get("run_type") == "aggregate" and bench.get("aggregate_name") != "median":
            continue
        name = bench.get("run_name", bench["name"])
        rows[name].append(bench)
    table = []
    for name, benches in rows.items():
        chosen = [b for b in benches if b.get("aggregate_name") == "median"] or benches
        bench = chosen[0]
        unit = bench.get("time_unit", "ns")
        scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[unit]
        cpu_ns = statistics.median([b["cpu_time"] * scale for b in chosen])
        table.append({
            "name": name,
            "cpu_ns": cpu_ns,
            "items_per_second": bench.get("items_per_second"),
            "bytes_per_second": statistics.median([b["bytes_per_second"] for b in chosen])
            if all("bytes_per_second" in b for b in chosen) else None,
            "allocs_per_msg": bench.get("allocs_per_msg"),
            "frames_per_msg": bench.get("frames_per_msg"),
            "label": bench.get("label", ""),
        })
    return table


MICRO_TEXT = {
    "BM_parse_line/45": "parse: `memq::parse_line`, a typical 120-byte send line (UTF-8, JSON, template)",
    "BM_parse_line/16384": "parse: the same with a 16 KiB message (16.5 KB line)",
    "BM_validate_utf8/45": "validate: `memq::is_valid_utf8` of the 120-byte line",
    "BM_validate_utf8/16384": "validate: the same, 16.5 KB line",
    "BM_trim_line": "`memq::trim_line`",
    "BM_encode_message/45": "serialize: `memq::encode_message`, the delivered frame of the 120-byte send",
    "BM_encode_message/16384": "serialize: the same with a 16 KiB message",
    "BM_route/1/45": "route: `Broker::handle_receive` of one 120-byte send line, 1 subscriber, "
                     "every Transmit drained and written (the 1 → 1 path)",
    "BM_route/100/45": "route: the same with 100 subscribers (per published message)",
    "BM_route/1/16384": "route: 1 subscriber, a 16 KiB message",
    "BM_route_pipelined": "route, the whole core on the 1 → 1 path (cache on): 256 pipelined 120-byte send lines per `handle_receive`, every Transmit written (per message)",
}


def chart(runs, brokers, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"memqd": "#d62728", "nats": "#1f77b4", "redis": "#2ca02c"}
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    width = 0.8 / max(1, len(brokers))

    ax = axes[0][0]
    groups = [("1to1", "msgs_per_s", "1 → 1\nmsg/s"), ("fanout100", "deliveries_per_s", "1 → 100\ndeliveries/s"),
              ("100x100", "msgs_per_s", "100 → 100\nmsg/s")]
    for i, broker in enumerate(brokers):
        values = [(median(runs, broker, w, k) or 0) / 1e6 for w, k, _ in groups]
        xs = [g + (i - (len(brokers) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, values, width, label=broker, color=colors.get(broker))
    ax.set_xticks(range(len(groups)), [label for _, _, label in groups])
    ax.set_ylabel("millions per second")
    ax.set_title("Throughput, 64-byte payloads (higher is better)")
    ax.legend()

    ax = axes[0][1]
    labels = ["p50", "p99", "p99.9"]
    for i, broker in enumerate(brokers):
        values = [median(runs, broker, "latency10k", k) or 0 for k in ("p50_us", "p99_us", "p999_us")]
        xs = [g + (i - (len(brokers) - 1) / 2) * width for g in range(len(labels))]
        ax.bar(xs, values, width, label=broker, color=colors.get(broker))
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yscale("log")
    ax.set_ylabel("microseconds (log)")
    ax.set_title("Latency at 10k msg/s, 1 → 1 (lower is better)")
    ax.legend()

    ax = axes[1][0]
    for broker in brokers:
        points = []
        for size in SWEEP:
            workload = "1to1" if size == 64 else "payload{}".format(size)
            value = median(runs, broker, workload, "msgs_per_s")
            if value:
                points.append((size, value))
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=broker, color=colors.get(broker))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(SWEEP, ["16", "64", "256", "1K", "4K", "16K", "64K"])
    ax.set_xlabel("payload bytes")
    ax.set_ylabel("msg/s (log)")
    ax.set_title("Payload sweep, 1 → 1 (higher is better)")
    ax.legend()

    ax = axes[1][1]
    for i, (key, label) in enumerate((("bytes_per_conn", "connected"), ("bytes_per_conn_greeted", "after a round trip"))):
        values = [(median(runs, b, "conns", key) or 0) / 1024 for b in brokers]
        xs = [x + (i - 0.5) * 0.38 for x in range(len(brokers))]
        ax.bar(xs, values, 0.38, color=[colors.get(b, "#7f7f7f") for b in brokers],
               alpha=1.0 if i == 0 else 0.45, hatch=None if i == 0 else "//", edgecolor="black", linewidth=0.5)
        for x, value in zip(xs, values):
            ax.annotate("{:.1f}".format(value), (x, value), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(brokers)), brokers)
    ax.set_ylabel("KiB of broker RSS per connection")
    ax.set_title("Memory per idle connection, 10,000 connections (lower is better)")
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(facecolor="#bbbbbb", edgecolor="black", label="connected"),
                       Patch(facecolor="#bbbbbb", edgecolor="black", alpha=0.45, hatch="//",
                             label="after one round trip")])

    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main_section(args, runs, failures, brokers, meta, micro):
    lines = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add("memqd against NATS and Redis on the same work, measured by one load generator")
    add("(`memq-bench`, in `bench/loadgen/`) that speaks all three protocols. Each figure")
    add("is the median of {} interleaved round(s); small figures in brackets are the".format(meta.get("rounds", "?")))
    add("lowest and highest round. Regenerate with `bench/run.sh` (about 10 minutes) or")
    add("`bench/run.sh --quick` (one short round, a smoke run).")
    add("")
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    add("| CPU | {} × {} |".format(meta.get("nproc", "?"), meta.get("cpu", "?")))
    add("| memory | {} GiB |".format(meta.get("mem_gib", "?")))
    add("| kernel | {} |".format(meta.get("kernel", "?")))
    add("| load average before / after | {} / {} |".format(meta.get("load_before", "?"), meta.get("load_after", "?")))
    add("| date | {} |".format(meta.get("date", "?")))
    if meta.get("nice", 0):
        add("| niceness of brokers and memq-bench | {} (the machine was shared) |".format(meta["nice"]))
    add("| memq commit | {} |".format(meta.get("commit", "?")))
    for broker, version in meta.get("versions", {}).items():
        add("| {} | {} |".format(broker, version.replace("|", "\\|")))
    add("")
    add("Everything runs on these {} cores at once: the broker, and memq-bench's".format(meta.get("nproc", "?")))
    add("publisher and subscriber threads. memqd runs with `--cache-size {}` (its".format(meta.get("cache_size", 100)))
    add("default: every message is also kept for replay) and `--max-pending-bytes 64 MiB`;")
    add("NATS and Redis with their defaults, persistence off for Redis.")
    add("")
    add("## Results (medians)")
    add("")
    header = "| workload | " + " | ".join(brokers) + " |"
    add(header)
    add("|---|" + "---|" * len(brokers))

    def row(title, cell):
        add("| {} | {} |".format(title, " | ".join(cell(b) for b in brokers)))

    row("1 → 1, 64 B, pipelined: msg/s", lambda b: rate_cell(runs, b, "1to1", "msgs_per_s"))
    row("fan-out 1 → 100, 64 B: deliveries/s", lambda b: rate_cell(runs, b, "fanout100", "deliveries_per_s"))
    row("100 → 100 on 100 topics, 64 B: msg/s", lambda b: rate_cell(runs, b, "100x100", "msgs_per_s"))
    row("latency at 10k msg/s, p50 / p99 / p99.9 (µs)", lambda b: latency_cell(runs, b, "latency10k"))
    row("latency at saturation, p50 / p99 / p99.9 (µs)", lambda b: latency_cell(runs, b, "saturation"))
    row("… throughput of that saturation run: msg/s", lambda b: si(median(runs, b, "saturation", "msgs_per_s")))
    row("memory per idle connection, 10,000 connected", lambda b: kib_cell(runs, b, "bytes_per_conn"))
    row("… after one round trip on each", lambda b: kib_cell(runs, b, "bytes_per_conn_greeted"))
    row("broker CPU per delivery, 1 → 1 (µs)",
        lambda b: "—" if median(runs, b, "1to1", "server_cpu_us_per_delivery") is None
        else "{:.2f}".format(median(runs, b, "1to1", "server_cpu_us_per_delivery")))
    row("broker CPU per delivery, 1 → 100 (µs)",
        lambda b: "—" if median(runs, b, "fanout100", "server_cpu_us_per_delivery") is None
        else "{:.3f}".format(median(runs, b, "fanout100", "server_cpu_us_per_delivery")))
    row("broker CPU use during 1 → 1 (cores)",
        lambda b: "—" if median(runs, b, "1to1", "server_cpu_util") is None
        else "{:.2f}".format(median(runs, b, "1to1", "server_cpu_util")))
    add("")
    add("![memqd, NATS and Redis: throughput, latency, payload sweep, memory per connection]({})".format(
        os.path.relpath(args.png, os.path.dirname(os.path.abspath(args.md)) or ".")))
    add("")
    add("### Payload sweep, 1 → 1 (msg/s, and payload MB/s)")
    add("")
    add("| payload | " + " | ".join(brokers) + " |")
    add("|---|" + "---|" * len(brokers))
    for size in SWEEP:
        workload = "1to1" if size == 64 else "payload{}".format(size)

        def cell(b, workload=workload):
            value = median(runs, b, workload, "msgs_per_s")
            if value is None:
                return "—"
            return "{} ({:.0f} MB/s)".format(si(value), median(runs, b, workload, "payload_mb_per_s"))

        label = "{} B".format(size) if size < 1024 else "{} KiB".format(size // 1024)
        add("| {} | {} |".format(label, " | ".join(cell(b) for b in brokers)))
    add("")
    add("## Core microbenchmarks (memq-micro)")
    add("")
    if micro:
        add("Google Benchmark, median CPU time of the repetitions; `allocs/msg` counts")
        add("`operator new` calls in the timed loop (global new/delete are replaced by")
        add("counting ones in that binary), after a warm-up that fills the replay cache.")
        add("")
        add("| what | CPU time | per byte | allocs/msg |")
        add("|---|---|---|---|")
        for entry in micro:
            name = entry["name"]
            per = entry["cpu_ns"]
            text = MICRO_TEXT.get(name, "`{}`".format(name))
            if name == "BM_route_pipelined":
                per = per / 256
                time_text = "{:.0f} ns per message".format(per)
            elif name.startswith("BM_route/100/"):
                time_text = "{:.0f} ns per message ({:.1f} ns per delivery)".format(per, per / 100)
            elif per >= 10000:
                time_text = "{:.1f} µs".format(per / 1000)
            else:
                time_text = "{:.0f} ns".format(per)
            rate = entry.get("bytes_per_second")
            byte_text = "{:.2f} ns".format(1e9 / rate) if rate and not name.startswith("BM_route/100/") else "—"
            allocs = entry["allocs_per_msg"]
            add("| {} | {} | {} | {} |".format(text, time_text, byte_text,
                                               "—" if allocs is None else "{:.2f}".format(allocs)))
    else:
        add("(not run)")
    add("")
    add("## How it is measured")
    add("")
    add("- **memq-bench** (`bench/loadgen/`): C++20, plain POSIX sockets and epoll, one")
    add("  thread for all publishers and one for all subscribers. Publishers pipeline")
    add("  64 KiB writes built from a prepared template (only the 16-byte stamp at the")
    add("  head of each payload changes); subscribers read 256 KiB at a time and parse")
    add("  only framing and the stamp. memq is spoken as aiomemq JSON lines (`send`,")
    add("  `subscribe` with `\"cache\": false`), NATS as `CONNECT {\"verbose\":false,...}`,")
    add("  `SUB`/`PUB`/`MSG` with `PING`/`PONG` to confirm subscriptions, Redis as RESP2")
    add("  `SUBSCRIBE`/`PUBLISH` (each `PUBLISH` answered by an integer).")
    add("- **Flow control**: a saturating publisher keeps at most a window of deliveries")
    add("  in flight end to end (8 MiB of frames; 256 KiB for the saturation-latency")
    add("  row), so no broker reaches its slow-consumer limit and nothing is dropped;")
    add("  every run checks that all published messages were delivered (waiting up to")
    add("  5 s after the measured phase for what is still in flight).")
    add("- **Throughput** counts deliveries received by the subscribers during the")
    add("  measured phase (after a warm-up); msg/s is deliveries / subscribers per topic.")
    add("- **Latency**: each payload starts with `~` and its send time (CLOCK_MONOTONIC,")
    add("  15 hex digits), taken when its batch is written; a subscriber subtracts it from")
    add("  the time its read returned. At 10k msg/s the publisher is paced (open loop,")
    add("  a timerfd per message). At saturation latency mostly measures the queue the")
    add("  window allows, so it is reported with that run's throughput.")
    add("- **Memory per idle connection**: a fresh broker instance; VmRSS from")
    add("  `/proc/PID/status` before, then 1 s after 10,000 connections are accepted")
    add("  (memq-bench waits until the broker holds 10,000 more descriptors), divided by")
    add("  10,000. The second row is read again after one round trip on every connection")
    add("  (memq: an `unsubscribe`; NATS: `CONNECT` + `PING`; Redis: `PING`), which is")
    add("  when some brokers allocate their per-connection buffers.")
    add("- **Broker CPU** is user + system time of the broker process from")
    add("  `/proc/PID/stat` over the measured phase, per delivery.")
    add("- Workloads are interleaved: each round runs every workload on every broker,")
    add("  rotating which broker goes first. The machine is shared and noisy; compare")
    add("  brokers within one run of this script, not across runs.")
    add("")
    add("## Running it")
    add("")
    add("- `bench/run.sh` — everything above; `--quick` for one short round;")
    add("  `--nice -10` on a machine shared with other work; `--server-cmd \"CMD {port}")
    add("  {cache_size}\" --server-name NAME` adds any aiomemq-protocol server as a column.")
    add("  Raw results (one JSON line per run) stay in `build-bench/results/`.")
    add("- `memq-bench --proto memq|nats|redis --port P [--pubs N --subs N --topics N")
    add("  --payload B --rate R --duration S --pid BROKER_PID]` runs one workload and prints")
    add("  one JSON line; `--workload conns --conns N --pid PID` measures idle connections.")
    add("- `memq-micro` is a Google Benchmark binary (`--benchmark_filter=BM_route` etc.).")
    add("- `memq-bench-selftest` checks the generator's protocol parsers (memq, NATS, Redis,")
    add("  Redis Streams, JetStream).")
    add("- `--sections main,durable,metrics` picks the sections of this file to measure")
    add("  again; the others keep their text.")
    add_failures(add, failures, None, heading="## Runs with errors", most=30)
    return lines


def ratio(value, base):
    if value is None or not base:
        return None
    return value / base


def ratio_text(value):
    return "—" if value is None else "{:.2f}×".format(value)


def add_failures(add, failures, configs, heading="Runs with errors:", most=20):
    """Lists the runs (of `configs`, or all) that had errors, then a blank line."""
    section_failures = [f for f in failures if configs is None or f[0] in configs]
    if section_failures:
        add("")
        add(heading)
        add("")
        for broker, workload, what in section_failures[:most]:
            add("- {} {}: {}".format(broker, workload, what))
    add("")


def run_note(meta):
    return ("Measured {} on {} × {} (load average before / after: {} / {}), memq commit {}{}.".format(
        meta.get("date", "?"), meta.get("nproc", "?"), meta.get("cpu", "?"), meta.get("load_before", "?"),
        meta.get("load_after", "?"), meta.get("commit", "?"),
        ", niceness {}".format(meta["nice"]) if meta.get("nice") else ""))


def durable_section(runs, failures, meta, recoveries):
    lines = []
    add = lines.append
    add("## Durable brokers")
    add("")
    add("memqd with a data dir under each `--fsync` policy, against Redis Streams with")
    add("its append-only file and NATS JetStream with file storage, side by side in one")
    add("run (issue 12). Each broker instance is started once for the section, its data")
    add("in a fresh temporary directory; the runs interleave, rotating the order, and each")
    add("figure is the median of {} round(s) (lowest and highest in brackets).".format(
        min(3, meta.get("rounds", 3))))
    add(run_note(meta))
    add("")
    present = [c for c in DURABLE_CONFIGS if runs.get((c, "d1to1"))]
    missing = [c for c in DURABLE_CONFIGS if c not in present]
    base = median(runs, "memqd-mem", "d1to1", "msgs_per_s")
    base_p99 = median(runs, "memqd-mem", "dlatency10k", "p99_us")
    add("| broker | 1 → 1 acked msg/s | × in-memory memqd | latency at 10k msg/s, p50 / p99 / p99.9 (µs) "
        "| p99 × in-memory | broker CPU per message (µs) |")
    add("|---|---|---|---|---|---|")
    for config in present:
        rate = median(runs, config, "d1to1", "msgs_per_s")
        p99 = median(runs, config, "dlatency10k", "p99_us")
        cpu = median(runs, config, "d1to1", "server_cpu_us_per_delivery")
        add("| {} | {} | {} | {} | {} | {} |".format(
            DURABLE_TEXT[config], rate_cell(runs, config, "d1to1", "msgs_per_s"), ratio_text(ratio(rate, base)),
            latency_cell(runs, config, "dlatency10k"), ratio_text(ratio(p99, base_p99)),
            "—" if cpu is None else "{:.2f}".format(cpu)))
    for config in missing:
        add("| {} | not run{} | | | | |".format(
            DURABLE_TEXT[config], ": memqd had no `--data-dir` yet" if config.startswith("memqd-") else ""))
    add("")

    def best(configs):
        values = [(median(runs, c, "d1to1", "msgs_per_s"), c) for c in configs]
        values = [v for v in values if v[0] is not None]
        return max(values) if values else (None, None)

    best_interval_peer, best_interval_name = best(["redis-everysec", "jetstream"])
    best_always_peer, best_always_name = best(["redis-always"])
    interval = median(runs, "memqd-interval", "d1to1", "msgs_per_s")
    always = median(runs, "memqd-always", "d1to1", "msgs_per_s")
    interval_p99 = median(runs, "memqd-interval", "dlatency10k", "p99_us")
    recovery = [r for r in recoveries if r.get("workload") == "recovery"]
    summary = [r for r in recoveries if r.get("workload") == "recovery-summary"]
    if recovery and summary:
        first = recovery[0]
        made = ("written directly by memq-make-data-dir ({:,} topics, {} MiB of cached frames, the bytes past one "
                "message a topic in {}-byte payloads on 1000 hot topics)" if first.get("made_by") == "generate" else
                "filled through the protocol with {:,} topics and {} MiB of {}-byte payloads")
        add(("Recovery (`bench/recovery.sh`): a data dir " + made + " "
            "(`--fsync {}`; {:.0f} MiB on disk, {:,} messages in {:.0f} MiB of cached frames once back), memqd "
            "killed with SIGKILL and restarted {} time(s): it listened after {:.2f} s (median; longest {:.2f} s), "
            "with every topic back after {:.2f} s{}.").format(
                first["topics"], first["fill_mib"], first["payload"], first["fsync"], first["disk_bytes"] / 1048576,
                first["cached_messages"], first["cached_bytes"] / 1048576, summary[0]["restarts"],
                summary[0]["median_listen_seconds"], summary[0]["max_listen_seconds"],
                statistics.median(r["all_topics_seconds"] for r in recovery),
                "" if all(r.get("complete") for r in recovery) else " (NOT every topic came back)"))
        if first["topics"] < 1000000 or first["fill_mib"] < 256:
            add("This data dir is smaller than issue 12's target (1M topics, 256 MiB): "
                "`bench/recovery.sh --topics 1000000 --cache-mib 256` measures that size.")
        add("")
    add("Issue 12's targets, from this run:")
    add("")
    add("| target | measured | met |")
    add("|---|---|---|")

    def target(text, value, goal):
        met = "—" if value is None else ("yes" if value >= goal else "no")
        add("| {} | {} | {} |".format(text, ratio_text(value), met))

    target("*interval* 1 → 1 ≥ 0.8× in-memory memqd", ratio(interval, base), 0.8)
    target("*interval* 1 → 1 ≥ 1.5× the best durable peer at a like setting ({})".format(
        best_interval_name or "—"), ratio(interval, best_interval_peer), 1.5)
    target("*always* 1 → 1 ≥ the best peer's always setting ({})".format(best_always_name or "—"),
           ratio(always, best_always_peer), 1.0)
    p99_ratio = ratio(interval_p99, base_p99)
    if recovery and summary:
        # Recovered: listening, with every topic back (the later of the two).
        seconds = statistics.median(max(r["listen_seconds"], r["all_topics_seconds"]) for r in recovery)
        complete = all(r.get("complete") for r in recovery)
        add("| recovery of 1M topics and 256 MiB in ≤ 2 s | {:.2f} s ({:,} topics, {} MiB{}) | {} |".format(
            seconds, recovery[0]["topics"], recovery[0]["fill_mib"], "" if complete else ", incomplete",
            "yes" if complete and seconds <= 2 and recovery[0]["topics"] >= 1000000 and recovery[0]["fill_mib"] >= 256
            else "no"))
    else:
        add("| recovery of 1M topics and 256 MiB in ≤ 2 s | not run | — |")
    add("| p99 at 10k msg/s with `--data-dir` within 2× of in-memory | {} | {} |".format(
        ratio_text(p99_ratio), "—" if p99_ratio is None else ("yes" if p99_ratio <= 2 else "no")))
    add("")
    add("How it is measured:")
    add("")
    add("- Every broker acks each publish: memq's `{\"success\": true}`, XADD's entry id,")
    add("  JetStream's `{\"stream\":..,\"seq\":N}`. memq-bench runs with `--acked`: a publish")
    add("  stays in the 8 MiB window until both its ack and its delivery came back, so")
    add("  the throughput is of acked publishes (under *always*, of synced ones), and")
    add("  every run checks that each publish was acked and delivered.")
    add("- Redis Streams: the publisher pipelines `XADD <stream> * f <payload>`; the")
    add("  subscriber keeps one `XREAD COUNT 1000 BLOCK 0 STREAMS <stream> <last id>` in")
    add("  flight, from `0-0` (each run's stream is new), sending the next as each is")
    add("  answered. Redis runs with `--appendonly yes --appendfsync everysec|always`,")
    add("  no RDB snapshots.")
    add("- NATS JetStream (`nats-server -js -sd DIR`): the publisher creates a stream")
    add("  over the subject with `\"storage\":\"file\"` (`$JS.API.STREAM.CREATE`) in its")
    add("  handshake, then pipelines `PUB <subject> <inbox>`, each acked on the inbox.")
    add("  The subscriber is a plain core-NATS subscription on the subject, not a")
    add("  JetStream consumer: it receives each message as it is published, so its")
    add("  figure is bounded by the acks (the window), not by reads from the store.")
    add("  JetStream's defaults sync its files every 2 minutes (an *interval* policy).")
    add("- memqd runs with `--cache-size {}`; its data dir is a fresh temporary".format(meta.get("cache_size", 100)))
    add("  directory on the same disk as the peers'.")
    add("- Latency: the publisher paced at 10k msg/s (open loop), each delivery's")
    add("  end-to-end time from the stamp in its payload.")
    add("- Run this section alone with `bench/run.sh --sections durable`; one row by hand with")
    add("  `memq-bench --proto memq|redis-streams|jetstream --acked --port P`; the recovery")
    add("  figure with `bench/recovery.sh [--topics N --cache-mib M]`.")
    add_failures(add, failures, DURABLE_CONFIGS)
    return lines


def load_json_lines(path):
    scrapes = []
    if path and os.path.exists(path):
        with open(path) as handle:
            for line in handle:
                line = line.strip()
                if line:
                    try:
                        scrapes.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
    return scrapes


def seconds_text(seconds):
    if seconds is None:
        return "—"
    if seconds == float("inf"):
        return "+Inf"
    return "{:g} µs".format(seconds * 1e6) if seconds < 1e-3 else "{:g} ms".format(seconds * 1e3)


def turn_figures(path):
    """The turn-time histogram and the published count of a saved /metrics text, or None."""
    if not os.path.exists(path):
        return None
    buckets = []
    values = {}
    with open(path) as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            match = re.match(r'memq_event_loop_turn_seconds_bucket\{le="([^"]+)"\}', name)
            if match:
                buckets.append((float(match.group(1)), float(value)))
            else:
                values[name] = float(value)
    count = values.get("memq_event_loop_turn_seconds_count")
    if not buckets or not count:
        return None
    buckets.sort()

    def bound_at(q):
        return next(bound for bound, cumulative in buckets if cumulative >= q * count)

    return {"count": int(count), "published": int(values.get("memq_messages_published_total", 0)),
            "p50": bound_at(0.5), "p99": bound_at(0.99)}


def metrics_section(runs, failures, meta, scrapes, results_dir):
    lines = []
    add = lines.append
    add("## Metrics overhead")
    add("")
    add("The cost of memqd's metrics port (issue 14): 1 → 1, 64 B, pipelined, in one run,")
    add("interleaved, the median of {} round(s), against two memqd instances: one without".format(
        min(3, meta.get("rounds", 3))))
    add("`--metrics`, and one with it that is measured both unscraped and scraped.")
    add("With `--metrics`, memqd also times every read's turn into")
    add("`memq_event_loop_turn_seconds` (two `steady_clock` reads per read); in the scraped")
    add("runs `bench/scraper.py` GETs its `/metrics` every 100 ms, as a Prometheus server")
    add("would, for the whole of each run.")
    add(run_note(meta))
    add("")
    base = median(runs, "memqd-nometrics", "m1to1", "msgs_per_s")
    add("| memqd | 1 → 1 msg/s | × without metrics | broker CPU per message (µs) |")
    add("|---|---|---|---|")
    for config in METRICS_CONFIGS:
        rate = median(runs, config, "m1to1", "msgs_per_s")
        cpu = median(runs, config, "m1to1", "server_cpu_us_per_delivery")
        add("| {} | {} | {} | {} |".format(METRICS_TEXT[config], rate_cell(runs, config, "m1to1", "msgs_per_s"),
                                         ratio_text(ratio(rate, base)),
                                         "—" if cpu is None else "{:.3f}".format(cpu)))
    add("")
    done = [s for s in scrapes if s.get("scrapes")]
    if done:
        count = sum(s["scrapes"] for s in done)
        mean = sum(s["mean_ms"] * s["scrapes"] for s in done) / count
        add("Scrapes during the scraped runs: {} in all, {:.2f} ms each on average (the longest {:.1f} ms),"
            " {} failed.".format(count, mean, max(s["max_ms"] for s in done), sum(s.get("failures", 0) for s in done)))
        add("")
    turns = turn_figures(os.path.join(results_dir, "memqd-metrics-metrics.txt"))
    if turns:
        add("From the `--metrics` instance's own `/metrics` at the end: {:,} turns for {:,} messages published "
            "({:.0f} per turn), turn time p50 ≤ {} and p99 ≤ {} (bucket bounds). The timing is two `steady_clock` "
            "reads per turn (`clock_gettime` from the vDSO, no system call): even at 100 ns a read it would cost "
            "{:.2f} ns a message, against the {:.0f} ns of broker CPU a message measured above, so the ratio of the "
            "two unscraped rows is this machine's noise.".format(
                turns["count"], turns["published"], turns["published"] / max(1, turns["count"]),
                seconds_text(turns["p50"]), seconds_text(turns["p99"]),
                200 * turns["count"] / max(1, turns["published"]),
                1000 * (median(runs, "memqd-nometrics", "m1to1", "server_cpu_us_per_delivery") or 0)))
        add("")
    scraped = ratio(median(runs, "memqd-scraped", "m1to1", "msgs_per_s"),
                    median(runs, "memqd-metrics", "m1to1", "msgs_per_s"))
    timed = ratio(median(runs, "memqd-metrics", "m1to1", "msgs_per_s"), base)
    add("Scrape overhead (scraped ÷ not scraped, both with `--metrics`): {}; turn timing".format(ratio_text(scraped)))
    add("overhead (`--metrics` unscraped ÷ no `--metrics`): {}. Differences of a few per".format(ratio_text(timed)))
    add("cent are within this shared machine's noise between rounds (see the brackets).")
    add("The scraper is a Python process on the same 2 cores, so its own CPU is part of")
    add("what the scraped run pays. Run this section alone with `bench/run.sh --sections metrics`.")
    add_failures(add, failures, METRICS_CONFIGS)
    return lines


HEADER = ("<!-- docs/benchmarks.md: memqd vs NATS vs Redis, and durable and metrics sections, measured and "
          "written by bench/run.sh (bench/report.py); edit those, not this file. -->")


def existing_sections(path):
    """({name: text} of this script's sections in the file at `path`, the rest of the
    file's text). The rest (the sections other scripts write, such as bench/tls.sh's
    and bench/python_clients.py's) is kept as it is, after ours. A file without our
    markers is all main section, but for bench/tls.sh's block."""
    if not os.path.exists(path):
        return {}, ""
    with open(path) as handle:
        text = handle.read()
    if text.startswith("<!-- docs/benchmarks.md"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    found = {}

    def take(match):
        found[match.group(1)] = match.group(2)
        return ""

    names = "|".join(SECTIONS)
    rest = re.sub(r"<!-- section:({}) -->\n(.*?)<!-- /section:\1 -->\n?".format(names), take, text, flags=re.S)
    if not found:
        tls = re.search(r"<!-- tls:begin.*?<!-- tls:end -->\n?", rest, re.S)
        kept = tls.group(0) if tls else ""
        main_text = rest.replace(kept, "") if kept else rest
        python = re.search(r"<!-- section:python -->.*?<!-- /section:python -->\n?", main_text, re.S)
        if python:
            kept += "\n" + python.group(0)
            main_text = main_text.replace(python.group(0), "")
        if main_text.strip():
            found["main"] = main_text.strip("\n") + "\n"
        rest = kept
    return found, rest.strip("\n")


def write_markdown(path, new_sections):
    kept, rest = existing_sections(path)
    parts = [HEADER]
    for name in SECTIONS:
        body = new_sections.get(name, kept.get(name))
        if body is None:
            continue
        parts.append("<!-- section:{} -->\n{}<!-- /section:{} -->".format(name, body, name))
    if rest:
        parts.append("\n" + rest)
    with open(path, "w") as handle:
        handle.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", required=True)
    parser.add_argument("--meta", required=True)
    parser.add_argument("--micro")
    parser.add_argument("--md", required=True)
    parser.add_argument("--png", required=True)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--scrapes", help="bench/scraper.py's JSON lines (default: beside --results)")
    args = parser.parse_args()

    runs, failures = load_results(args.results)
    with open(args.meta) as handle:
        meta = json.load(handle)
    wanted = [name for name in args.sections.split(",") if name]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error("unknown sections: " + ", ".join(sorted(unknown)))
    new_sections = {}
    if "main" in wanted:
        brokers = list(meta.get("versions", {}).keys()) or sorted({b for b, _ in runs})
        micro = load_micro(args.micro)
        chart(runs, brokers, args.png)
        main_failures = [f for f in failures if f[0] not in DURABLE_CONFIGS + METRICS_CONFIGS]
        new_sections["main"] = "\n".join(main_section(args, runs, main_failures, brokers, meta, micro)) + "\n"
    if "durable" in wanted:
        recoveries = load_json_lines(os.path.join(os.path.dirname(args.results), "recovery.jsonl"))
        new_sections["durable"] = "\n".join(durable_section(runs, failures, meta, recoveries)) + "\n"
    if "metrics" in wanted:
        scrapes = load_json_lines(args.scrapes or os.path.join(os.path.dirname(args.results), "scrapes.jsonl"))
        new_sections["metrics"] = "\n".join(
            metrics_section(runs, failures, meta, scrapes, os.path.dirname(args.results))) + "\n"
    write_markdown(args.md, new_sections)
    for broker, workload, what in failures:
        print("report.py: {} {}: {}".format(broker, workload, what), file=sys.stderr)


if __name__ == "__main__":
    main()
