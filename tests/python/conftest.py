"""Shared setup of the memq conformance suite.

The suite specifies the aiomemq line protocol (PROTOCOL.md; docs/protocol.md)
through the memq Python package. The `broker` and `make_broker` fixtures, the
`memq_broker(cache_size=..., args=...)` marker and the `--memqd` /
`--server-cmd` options come from the package's pytest plugin (memq.testing).

Markers registered here:
- memq_decision: the behaviour is a memq choice where the reference servers
  differ (PROTOCOL.md marks most of them "(decision)"); run a reference server
  with `-m "not memq_decision"`.
- memqd_only: the test needs an option only memqd has (such as
  --max-line-bytes); it is skipped under --server-cmd.

Helpers shared by the test modules live here too (`from conftest import ...`).
"""

import json
import resource

import pytest

# Many-connection tests open thousands of sockets; memqd inherits the limit too.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft != _hard:
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))
    except (ValueError, OSError):  # an unlimited hard limit: keep the soft one
        pass

# "Nothing more arrives": how long to listen before concluding that.
QUIET_S = 0.05
# How long to wait for something that must come.
REPLY_TIMEOUT_S = 5.0

OK = {"success": True}
BAD_UTF8 = {"success": False, "reason": "Could not decode input as UTF-8"}
BAD_JSON = {"success": False, "reason": "Could not parse json"}
MALFORMED = {"success": False, "reason": "Malformed json message"}
LINE_TOO_LONG = {"success": False, "reason": "Line too long"}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "memq_decision: behaviour PROTOCOL.md settles for memq where the reference servers differ")
    config.addinivalue_line(
        "markers", "memqd_only: needs an option or a memq extension only memqd has; skipped under --server-cmd")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--server-cmd"):
        return
    skip = pytest.mark.skip(reason="needs memqd's own options (not available under --server-cmd)")
    for item in items:
        if item.get_closest_marker("memqd_only"):
            item.add_marker(skip)


@pytest.fixture
def connect(broker):
    """Factory: connect(**options) -> a memq.Client of this test's broker, closed afterwards."""
    clients = []

    def make(**options):
        client = broker.client(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# ---- helpers -------------------------------------------------------------------

def line(command):
    """One client -> server line: a dict as JSON (non-ASCII as raw UTF-8), or str / bytes as they are, plus "\\n"."""
    if isinstance(command, dict):
        command = json.dumps(command, ensure_ascii=False)
    if isinstance(command, str):
        command = command.encode("utf-8")
    return command + b"\n"


def reply_to(client, command):
    """Sends one line (see `line`) and returns the broker's reply as a dict."""
    client.send_raw(line(command), expect_reply=True)
    return client.next_reply(timeout=REPLY_TIMEOUT_S)


def send_in_one_write(client, data, replies):
    """Writes `data` (several lines) with a single write, owing `replies` replies.

    send_raw() owes one reply per call; the calls with empty data reserve the
    extra reply slots without writing anything, so all of `data` still goes
    out in one write. The replies are then read with next_reply().
    """
    for _ in range(replies - 1):
        client.send_raw(b"", expect_reply=True)
    client.send_raw(data, expect_reply=replies > 0)


def wire(message):
    """A delivered memq.Message as the JSON object the broker sent."""
    return json.loads(message.raw)


def delivered(topic, msg, index, delivery="all", cache=None):
    """The object a subscriber must receive for a send (with "cache" only if the sender gave it)."""
    message = {"command": "send", "topic": topic, "msg": msg, "delivery": delivery, "index": index}
    if cache is not None:
        message["cache"] = cache
    return message


def receive_all(client, count):
    """The next `count` messages (each must come within REPLY_TIMEOUT_S), as wire objects."""
    received = []
    for _ in range(count):
        message = client.receive(timeout=REPLY_TIMEOUT_S)
        assert message is not None, f"only {len(received)} of {count} messages arrived: {received}"
        received.append(wire(message))
    return received
