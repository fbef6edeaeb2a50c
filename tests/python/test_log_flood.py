"""Log flooding: every limit hit memqd logs is rate-limited, one line a second per kind.

A few hundred connections hit one limit in one burst: each sends a line
longer than --max-line-bytes, or each is a subscriber that a message bigger
than --max-pending-bytes makes a slow consumer, or each comes past
--max-connections. memqd must close every one of them, yet write only a
handful of warn lines about it: the first hit, then (once the second has
passed) a summary with how many hits were left out and how many there were
in all (docs/operations.md, "Logging of limit hits").
"""

import json
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from memq.testing import find_memqd

OFFENDERS = 300
# Lines about one kind the burst may cause: one a second, and the burst takes well under a few.
MOST_LINES = 5
SUMMARY_TIMEOUT_S = 10.0


def wait_for(condition, process, what, timeout=SUMMARY_TIMEOUT_S):
    """Polls `condition` until it holds (a condition with a deadline, not a fixed wait)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"memqd exited with {process.returncode} before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)


def read_to_eof(conn):
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received


def connect_all(port, count):
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def over_long_lines(port):
    sockets = connect_all(port, OFFENDERS)
    try:
        for each in sockets:
            each.sendall(b"x" * 128)
        for each in sockets:  # each gets its reply, then EOF: memqd closed it
            assert read_to_eof(each) == b'{"success": false, "reason": "Line too long"}\r\n'
    finally:
        for each in sockets:
            each.close()


def slow_consumers(port):
    subscribers = connect_all(port, OFFENDERS)
    try:
        for each in subscribers:
            each.sendall(b'{"command": "subscribe", "topic": "flood", "cache": false}\n')
        for each in subscribers:
            assert each.makefile("rb").readline() == b'{"success": true}\r\n'
        # One message bigger than --max-pending-bytes: queueing it to any subscriber passes the limit.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as publisher:
            send = {"command": "send", "topic": "flood", "msg": "y" * 2048, "delivery": "all", "cache": False}
            publisher.sendall(json.dumps(send).encode() + b"\n")
            assert publisher.makefile("rb").readline() == b'{"success": true}\r\n'
        for each in subscribers:  # closed at once: what was queued is dropped
            assert read_to_eof(each) == b""
    finally:
        for each in subscribers:
            each.close()


def refused_connections(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as holder:
        holder.sendall(b'{"command": "subscribe", "topic": "held"}\n')
        assert holder.makefile("rb").readline() == b'{"success": true}\r\n'  # it counts as open now
        refused = connect_all(port, OFFENDERS)
        try:
            for each in refused:  # accepted and closed at once: EOF and nothing else
                assert read_to_eof(each) == b""
        finally:
            for each in refused:
                each.close()


FLOODS = {
    "line too long": (["--max-line-bytes", "64"], over_long_lines,
                      r"closing connection \d+ from \S+: line too long \(max_line_bytes=64\)"),
    "slow consumer": (["--max-pending-bytes", "1024"], slow_consumers,
                      r"closing connection \d+ from \S+: slow consumer "
                      r"\(pending output passed max_pending_bytes=1024\)"),
    "too many connections": (["--max-connections", "1"], refused_connections,
                             r"refusing connection \d+ from \S+: too many connections \(max_connections=1\)"),
}


@pytest.mark.memqd_only
@pytest.mark.parametrize("kind", FLOODS)
def test_a_burst_of_limit_hits_writes_a_bounded_number_of_log_lines(request, kind):
    args, flood, first_line = FLOODS[kind]
    with tempfile.TemporaryDirectory() as workdir:
        port_file, log_path = Path(workdir) / "port", Path(workdir) / "memqd.log"
        memqd = request.config.getoption("--memqd") or find_memqd()
        with open(log_path, "wb") as log:
            process = subprocess.Popen([memqd, "--port", "0", "--port-file", str(port_file), "--log-level", "warn",
                                        *args], stdin=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(lambda: port_file.exists() and port_file.read_text().strip() != "", process, "port file")
            flood(int(port_file.read_text()))

            def lines():
                return [line for line in log_path.read_text().splitlines() if f"[{kind}: " in line
                        or f"warn: {kind}: " in line]

            # Once every hit is counted, a line (the summary, or a later hit's) says "300 in all".
            wait_for(lambda: any(f" {OFFENDERS} in all" in line for line in lines()), process,
                     f"log line counting {OFFENDERS} hits in all")
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0

        written = lines()
        everything = log_path.read_text().splitlines()
    print(f"[figure] {OFFENDERS} hits of {kind!r}: {len(written)} log line(s) about them "
          f"({len(everything)} in the whole log):", *written, sep="\n")
    assert len(written) == len(everything), everything  # nothing else was logged at warn
    assert all(" memqd warn: " in line for line in written), written
    assert 2 <= len(written) <= MOST_LINES, written
    # The first hit is logged as it happens, with what was hit.
    assert re.search(first_line + rf" \[{kind}: 0 left out since the last line, 1 in all\]$", written[0]), written[0]
    # Every hit is either written or counted as left out in a later line, and the counts add up.
    counters = [re.search(rf"{kind}: (\d+) left out since the last line, (\d+) in all", line) for line in written]
    assert all(counters), written
    hits_written = sum(1 for line in written if re.search(first_line, line))
    assert hits_written + sum(int(match.group(1)) for match in counters) == OFFENDERS, written
    assert int(counters[-1].group(2)) == OFFENDERS
    # The tail of the burst is reported by a summary line of its own.
    assert any(re.search(rf"memqd warn: {kind}: [1-9]\d* left out since the last line, \d+ in all$", line)
               for line in written), written
