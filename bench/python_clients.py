#!/usr/bin/env python3
"""bench/python_clients.py — the Python clients side by side, in one run:
memq.aio and the blocking memq.Client against memqd, and redis-py's asyncio
client (redis.asyncio) against Redis pub/sub. A benchmark, not a test.

Two workloads, each COUNT messages of SIZE bytes on a topic of its own:
- publish: one publisher, pipelined, timed until every publish is
  acknowledged (memq: flush(); Redis: the replies of its pipelines);
- 1 → 1: one publisher and one subscriber, timed from the first publish to
  the last message received. memq.aio and Redis run both in one event loop;
  the blocking client publishes from a second thread.
Every figure is the median of ROUNDS rounds; within a round the clients take
turns (interleaved), so that a change in the machine's load hits them alike.

    bench/python_clients.py [--count N] [--size BYTES] [--rounds R] [--md docs/benchmarks.md]

It starts memqd (memq.testing.start_broker: the package's own) and
redis-server on free loopback ports and stops them by pid. With --md it
writes its section of docs/benchmarks.md, between `<!-- section:python -->`
and `<!-- /section:python -->`, in place of the one there or at the end.
"""

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import threading
import time
from datetime import datetime, timezone

import memq
import memq.aio
from memq.testing import start_broker

# The section markers of docs/benchmarks.md (bench/report.py's `<!-- section:NAME -->` form).
SECTION_BEGIN = "<!-- section:python -->"
SECTION_END = "<!-- /section:python -->"
REDIS_PIPELINE = 1000  # PUBLISH commands per redis-py pipeline
START_TIMEOUT_S = 10.0


# ---- memq.aio ----------------------------------------------------------------

async def aio_publish(port, topic, payload, count):
    async with memq.aio.Client(port=port) as client:
        started = time.perf_counter()
        for _ in range(count):
            await client.publish(topic, payload)
        await client.flush(timeout=60)
        return count / (time.perf_counter() - started)


async def aio_one_to_one(port, topic, payload, count):
    async with memq.aio.Client(port=port) as subscriber, memq.aio.Client(port=port) as publisher:
        await subscriber.subscribe(topic)

        async def publish_all():
            for _ in range(count):
                await publisher.publish(topic, payload)
            await publisher.flush(timeout=60)

        started = time.perf_counter()
        publishing = asyncio.ensure_future(publish_all())
        received = 0
        async for _ in subscriber:
            received += 1
            if received == count:
                break
        elapsed = time.perf_counter() - started
        await publishing
        return count / elapsed


# ---- the blocking memq.Client -------------------------------------------------

def blocking_publish(port, topic, payload, count):
    with memq.Client(port=port) as client:
        started = time.perf_counter()
        for _ in range(count):
            client.publish(topic, payload)
        client.flush(timeout=60)
        return count / (time.perf_counter() - started)


def blocking_one_to_one(port, topic, payload, count):
    with memq.Client(port=port) as subscriber, memq.Client(port=port) as publisher:
        subscriber.subscribe(topic)

        def publish_all():
            for _ in range(count):
                publisher.publish(topic, payload)
            publisher.flush(timeout=60)

        started = time.perf_counter()
        thread = threading.Thread(target=publish_all)
        thread.start()
        for _ in range(count):
            if subscriber.receive(timeout=30) is None:
                raise RuntimeError("blocking 1 -> 1: a message did not arrive within 30 s")
        elapsed = time.perf_counter() - started
        thread.join()
        return count / elapsed


# ---- redis.asyncio -------------------------------------------------------------

async def redis_publish_all(client, topic, payload, count):
    for first in range(0, count, REDIS_PIPELINE):
        pipeline = client.pipeline(transaction=False)
        for _ in range(min(REDIS_PIPELINE, count - first)):
            pipeline.publish(topic, payload)
        await pipeline.execute()


async def redis_publish(port, topic, payload, count):
    import redis.asyncio

    client = redis.asyncio.Redis(port=port)
    try:
        started = time.perf_counter()
        await redis_publish_all(client, topic, payload, count)
        return count / (time.perf_counter() - started)
    finally:
        await client.close()


async def redis_one_to_one(port, topic, payload, count):
    import redis.asyncio

    subscriber_client, publisher = redis.asyncio.Redis(port=port), redis.asyncio.Redis(port=port)
    pubsub = subscriber_client.pubsub()
    try:
        await pubsub.subscribe(topic)
        while await pubsub.get_message(timeout=5) is None:  # the subscribe's confirmation
            pass
        started = time.perf_counter()
        publishing = asyncio.ensure_future(redis_publish_all(publisher, topic, payload, count))
        received = 0
        while received < count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30)
            if message is not None:
                received += 1
        elapsed = time.perf_counter() - started
        await publishing
        return count / elapsed
    finally:
        await pubsub.close()
        await subscriber_client.close()
        await publisher.close()


# ---- servers ---------------------------------------------------------------------

def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis():
    server = shutil.which("redis-server")
    if server is None:
        return None, None
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--daemonize", "no"],
                               stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)  # polling the listener with a deadline


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def redis_available():
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        return False
    return shutil.which("redis-server") is not None


# ---- the run ---------------------------------------------------------------------

def run(args):
    payload = "x" * args.size
    broker = start_broker()
    redis_process, redis_port = start_redis() if redis_available() else (None, None)
    clients = ["memq.aio", "memq.Client (blocking)"] + (["redis.asyncio"] if redis_port else [])
    workloads = ["publish", "1 → 1"]
    results = {(client, workload): [] for client in clients for workload in workloads}
    load_before = os.getloadavg()
    try:
        for round_number in range(args.rounds):
            for workload in workloads:
                for client in clients:
                    topic = f"bench-{round_number}-{workload}-{client}"
                    if client == "memq.aio":
                        work = aio_publish if workload == "publish" else aio_one_to_one
                        rate = asyncio.run(work(broker.port, topic, payload, args.count))
                    elif client.startswith("memq.Client"):
                        work = blocking_publish if workload == "publish" else blocking_one_to_one
                        rate = work(broker.port, topic, payload, args.count)
                    else:
                        work = redis_publish if workload == "publish" else redis_one_to_one
                        rate = asyncio.run(work(redis_port, topic, payload, args.count))
                    results[(client, workload)].append(rate)
                    print(f"round {round_number + 1}: {client:24} {workload:8} {rate / 1000:8.1f}k msg/s", flush=True)
    finally:
        broker.stop()
        if redis_process is not None:
            stop(redis_process)
    load_after = os.getloadavg()
    return clients, workloads, results, load_before, load_after


def rate_text(rate):
    return f"{rate / 1e6:.2f}M" if rate >= 1e6 else f"{rate / 1e3:.0f}k"


def figure(rates):
    return f"{rate_text(statistics.median(rates))} <sub>({rate_text(min(rates))}–{rate_text(max(rates))})</sub>"


def section(args, clients, workloads, results, load_before, load_after):
    redis_version = ""
    if "redis.asyncio" in clients:
        import redis

        redis_version = f", redis-py {redis.__version__}"
    lines = [
        SECTION_BEGIN,
        "## Python clients (bench/python_clients.py)",
        "",
        f"The Python clients side by side in one run: memq.aio and the blocking "
        f"memq.Client against memqd, redis-py's asyncio client against Redis pub/sub. "
        f"{args.count:,} messages of {args.size} B per run; the median of {args.rounds} "
        f"interleaved rounds, lowest and highest in brackets (msg/s). *publish*: one "
        f"publisher, pipelined, until every publish is acknowledged (memq: `flush()`; "
        f"Redis: pipelines of {REDIS_PIPELINE} PUBLISH and their replies). *1 → 1*: one "
        f"publisher and one subscriber, from the first publish to the last message "
        f"received; memq.aio and redis.asyncio run both in one event loop, the blocking "
        f"client publishes from a second thread.",
        "",
        "| workload | " + " | ".join(clients) + " |",
        "|---|" + "---|" * len(clients),
    ]
    for workload in workloads:
        lines.append(f"| {workload}: msg/s | " + " | ".join(figure(results[(c, workload)]) for c in clients) + " |")
    lines += [
        "",
        f"Python {platform.python_version()}{redis_version}; "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%MZ')}; load average before / after: "
        f"{' '.join(f'{x:.2f}' for x in load_before)} / {' '.join(f'{x:.2f}' for x in load_after)} "
        f"on {os.cpu_count()} cores (shared with other work when the load is above 1: "
        "the figures are then lower than on an idle machine). Rerun with "
        "`.venv/bin/python bench/python_clients.py --md docs/benchmarks.md` (about a minute).",
        SECTION_END,
    ]
    return "\n".join(lines) + "\n"


def write_section(path, text):
    with open(path) as handle:
        document = handle.read()
    begin, end = document.find(SECTION_BEGIN), document.find(SECTION_END)
    if begin != -1 and end != -1:
        document = document[:begin] + text + document[end + len(SECTION_END) + 1:]
    else:
        document = document.rstrip("\n") + "\n\n" + text
    with open(path, "w") as handle:
        handle.write(document)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200_000, help="messages per run (default 200000)")
    parser.add_argument("--size", type=int, default=64, help="payload bytes (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    parser.add_argument("--md", help="write the section into this Markdown file (docs/benchmarks.md)")
    args = parser.parse_args()
    if args.count < 1 or args.size < 0 or args.rounds < 1:
        parser.error("--count and --rounds must be at least 1, --size at least 0")
    clients, workloads, results, load_before, load_after = run(args)
    text = section(args, clients, workloads, results, load_before, load_after)
    print(text)
    if args.md:
        write_section(args.md, text)


if __name__ == "__main__":
    main()
