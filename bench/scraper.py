#!/usr/bin/env python3
"""bench/scraper.py — scrapes memqd's /metrics at a fixed interval, as a
Prometheus server would, until SIGTERM or a time limit; then prints one JSON
line: the number of scrapes and their mean and longest time. Used by
bench/run.sh's metrics section (the scrape-overhead benchmark). Loopback only.

Usage: bench/scraper.py METRICS_PORT [--interval S] [--limit S] [--label TEXT]
"""

import argparse
import json
import signal
import sys
import time
import urllib.request


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--limit", type=float, default=60.0, help="stop after this many seconds in any case")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    url = "http://127.0.0.1:{}/metrics".format(args.port)
    durations = []
    failures = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < args.limit:
            began = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    response.read()
                durations.append(time.monotonic() - began)
            except OSError:
                failures += 1
            time.sleep(max(0.0, args.interval - (time.monotonic() - began)))
    finally:
        print(json.dumps({
            "label": args.label,
            "scrapes": len(durations),
            "failures": failures,
            "mean_ms": 1000 * sum(durations) / len(durations) if durations else None,
            "max_ms": 1000 * max(durations) if durations else None,
        }), flush=True)


if __name__ == "__main__":
    main()
