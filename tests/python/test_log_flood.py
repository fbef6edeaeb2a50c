"""Log flooding: every limit hit memqd logs is rate-limited, one line a second per kind.

A few hundred connections each send a line longer than --max-line-bytes in
one burst. memqd must close every one of them, yet write only a handful of
warn lines about it: the first close, then (once the second has passed) a
summary with how many closes were left out and how many there were in all
(docs/operations.md, "Logging of limit hits").
"""

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
MAX_LINE_BYTES = 64
# Lines about line-too-long closes the burst may cause: one a second, and the burst takes well under a few.
MOST_LINES = 5
SUMMARY_TIMEOUT_S = 10.0

COUNTERS = re.compile(r"line too long: (\d+) left out since the last line, (\d+) in all")


@pytest.fixture
def memqd_with_log(request):
    """memqd on a free port with a small --max-line-bytes; yields (port, path of its stderr)."""
    workdir = tempfile.TemporaryDirectory()
    port_file = Path(workdir.name) / "port"
    log_path = Path(workdir.name) / "memqd.log"
    memqd = request.config.getoption("--memqd") or find_memqd()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [memqd, "--port", "0", "--port-file", str(port_file), "--max-line-bytes", str(MAX_LINE_BYTES),
             "--log-level", "warn"], stdin=subprocess.DEVNULL, stderr=log)
    try:
        wait_for(lambda: port_file.exists() and port_file.read_text().strip() != "", process, "the port file")
        yield process, int(port_file.read_text()), log_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        workdir.cleanup()


def wait_for(condition, process, what, timeout=SUMMARY_TIMEOUT_S):
    """Polls `condition` until it holds (a condition with a deadline, not a fixed wait)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"memqd exited with {process.returncode} before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)


def line_too_long_lines(log_path):
    return [line for line in log_path.read_text().splitlines() if "line too long" in line]


@pytest.mark.memqd_only
def test_a_burst_of_over_long_lines_writes_a_bounded_number_of_log_lines(memqd_with_log):
    process, port, log_path = memqd_with_log
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(OFFENDERS)]
    try:
        for each in sockets:
            each.sendall(b"x" * (MAX_LINE_BYTES * 2))
        for each in sockets:  # each gets its reply, then EOF: memqd closed it
            received = b""
            while chunk := each.recv(4096):
                received += chunk
            assert received == b'{"success": false, "reason": "Line too long"}\r\n'
    finally:
        for each in sockets:
            each.close()

    # Once every close is counted, a line (the summary, or a later close's) says "300 in all".
    wait_for(lambda: any(f" {OFFENDERS} in all" in line for line in line_too_long_lines(log_path)),
             process, f"log line counting {OFFENDERS} closes in all")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0

    lines = line_too_long_lines(log_path)
    print(f"[figure] {OFFENDERS} over-long lines: {len(lines)} log line(s) about them:", *lines, sep="\n")
    assert all(" memqd warn: " in line for line in lines), lines
    assert 2 <= len(lines) <= MOST_LINES, lines
    # The first close is logged as it happens, with its connection and the limit.
    assert re.search(r"closing connection \d+ from \S+: line too long \(max_line_bytes=64\) "
                     r"\[line too long: 0 left out since the last line, 1 in all\]$", lines[0]), lines[0]
    # Every close is either written or counted as left out in a later line, and the counts add up.
    counters = [COUNTERS.search(line) for line in lines]
    assert all(counters), lines
    written = sum(1 for line in lines if "closing connection" in line)
    left_out = sum(int(match.group(1)) for match in counters)
    assert written + left_out == OFFENDERS, lines
    assert int(counters[-1].group(2)) == OFFENDERS
    # The tail of the burst is reported by a summary line of its own.
    assert any(re.search(r"memqd warn: line too long: [1-9]\d* left out since the last line, \d+ in all$", line)
               for line in lines), lines
