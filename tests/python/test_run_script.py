"""./run.sh, the README's first command, as a new user runs it.

test.sh has built everything before this suite runs, so run.sh's own build is
a no-op here: these tests check what run.sh does, not how long a build takes.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import memq

ROOT = Path(__file__).resolve().parents[2]
RUN_SH = ROOT / "run.sh"
# run.sh checks the packages and the build before it starts memqd.
START_TIMEOUT_S = 120.0

pytestmark = pytest.mark.skipif(not RUN_SH.exists(), reason="run.sh is in a source checkout only")


def test_run_sh_help_exits_zero_and_prints_memqd_usage():
    result = subprocess.run([str(RUN_SH), "--help"], capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: memqd")


def test_run_sh_starts_a_broker_that_answers(tmp_path):
    port_file = tmp_path / "port"
    process = subprocess.Popen([str(RUN_SH), "--port", "0", "--port-file", str(port_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, process.stderr.read().decode(errors="replace")
            assert time.monotonic() < deadline, "run.sh did not write the port file"
            time.sleep(0.01)
        port = int(port_file.read_text())
        with memq.Client("127.0.0.1", port) as client:
            client.subscribe("run-sh")
            client.send("run-sh", "hello")
            message = client.receive(timeout=5)
            assert (message.topic, message.msg, message.index) == ("run-sh", "hello", 0)
    finally:
        # run.sh execs memqd, so its pid is memqd's.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        process.stderr.close()
