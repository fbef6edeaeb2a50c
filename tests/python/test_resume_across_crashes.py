"""A resuming memq.Client against memqd --data-dir that crashed while the
client was away: every message it misses is reported as a Gap, even when the
message was lost by the crash after memqd had delivered it to someone else.

The reproduction is deterministic: a write that fails (RLIMIT_FSIZE, so
EFBIG) stands for the record a crash did not let the writer store; the
message was delivered all the same (deliveries never wait for the disk), and
memqd, restarted, continues past its index.
"""

import json
import signal

import memq
import pytest

from durable_memqd import DurableMemqd, LineConnection, ignore_file_size_signal_and_limit, memqd_path

pytestmark = pytest.mark.memqd_only

TOPIC = "t"
FILE_SIZE_LIMIT_BYTES = 8192
BIG_MESSAGE = "x" * 1024
REPLY_TIMEOUT_S = 5.0
QUIET_S = 0.3


def sends_until_a_write_fails(memqd):
    """Sends BIG_MESSAGEs until memqd closes the connection (the write of the last one failed)."""
    with memqd.connect() as connection:
        for number in range(2 * FILE_SIZE_LIMIT_BYTES // len(BIG_MESSAGE)):
            try:
                assert connection.send(TOPIC, f"{number} {BIG_MESSAGE}") == {"success": True}
            except ConnectionError:
                return
    raise AssertionError("no write failed")


def indices_until_quiet(connection):
    connection.sock.settimeout(QUIET_S)
    indices = []
    try:
        while True:
            indices.append(json.loads(connection.read_line())["index"])
    except TimeoutError:
        return indices


def test_a_message_delivered_then_lost_by_a_crash_is_a_gap_for_a_subscriber_who_was_away(request, tmp_path):
    memqd = DurableMemqd(memqd_path(request.config), tmp_path / "data", tmp_path, ["--fsync", "always"])
    try:
        away = memq.Client("127.0.0.1", memqd.port, reconnect=True)
        away.subscribe(TOPIC)
        with memqd.connect() as connection:
            assert connection.send(TOPIC, "before") == {"success": True}
        assert away.receive(timeout=REPLY_TIMEOUT_S).msg == "before"
        # The first crash: `away` does not call in again until the end, so it resumes only then.
        memqd.preexec_fn = ignore_file_size_signal_and_limit(FILE_SIZE_LIMIT_BYTES)
        memqd.restart(signal.SIGKILL)
        with LineConnection(memqd.port) as present:
            assert present.request({"command": "subscribe", "topic": TOPIC, "last_seen": 0}) == {"success": True}
            sends_until_a_write_fails(memqd)
            delivered_to_present = indices_until_quiet(present)
        # The second crash: the message whose write failed is gone; memqd continues past it.
        memqd.preexec_fn = None
        memqd.restart(signal.SIGKILL)
        with memqd.connect() as connection:
            assert connection.send(TOPIC, "after") == {"success": True}
        received = []
        while (message := away.receive(timeout=REPLY_TIMEOUT_S)) is not None and message.msg != "after":
            received.append(message.index)
        missed = sorted(set(delivered_to_present) - set(received))
        assert missed, "the crash lost no delivered message: the scenario did not happen"
        gaps = away.take_gaps()
        uncovered = [index for index in missed if not any(first <= index < upto for _, first, upto in gaps)]
        assert uncovered == [], (f"indices {uncovered} reached another subscriber, not this one, and no Gap says so "
                                 f"(received {received}, gaps {gaps})")
        away.close()
    finally:
        memqd.end(signal.SIGKILL)
