"""A resuming subscriber (Client(reconnect=True)) across a restart of its broker
on the same port, by SIGTERM and by SIGKILL, against memqd (which answers hello
with a new incarnation) and against an aiomemq-protocol server
(aiomemq_reference_server.py, which answers hello "Malformed json message",
so the SDK falls back to checking the first index after the resume).

One scenario per server and signal, run once (a module fixture); each test
checks one thing about its outcome:
- before the restart the subscriber receives 20 messages on "a", 5 on "b";
- after it, and before the subscriber makes any call (it reads only inside
  calls, so it has not resumed), 3 are sent on "a" and 2 on "b";
- the subscriber's calls then notice the loss and reconnect; a subscribe
  answered after its resubscriptions says it has resumed;
- then 3 more are sent on "a" and 2 on "b".
"""

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import memq
from memq.testing import start_broker

from conftest import QUIET_S, REPLY_TIMEOUT_S

REFERENCE_SERVER = Path(__file__).with_name("aiomemq_reference_server.py")
SERVERS = {
    "memqd": {},
    "aiomemq": {"server_cmd": f"{sys.executable} {REFERENCE_SERVER} {{port}} {{cache_size}}"},
}
SENT_BEFORE = {"a": 20, "b": 5}
SENT_EARLY = {"a": 3, "b": 2}  # after the restart, before the subscriber resumes
SENT_LATE = {"a": 3, "b": 2}   # after it resumed
# One Reset per topic, with the last index received before the restart.
RESETS = [memq.Reset(topic, count - 1) for topic, count in SENT_BEFORE.items()]


@dataclass
class Outcome:
    after_restart: dict    # topic -> texts received after the restart, in order
    unexpected: object     # a message after all of those, or None
    resets: list
    reset_count: int
    called_back: list      # what on_reset was called with
    gap_count: int
    reconnect_count: int
    incarnation_before: object
    incarnation_after: object


def send_texts(broker, topic, label, count):
    with broker.client() as sender:
        for i in range(count):
            sender.send(topic, f"{label}{i}")


def texts(label, count):
    return [f"{label}{i}" for i in range(count)]


def wait_for_reconnect(subscriber, into):
    """Calls receive() (where IO happens) until the subscriber has reconnected; keeps what arrives."""
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while subscriber.reconnect_count == 0:
        assert time.monotonic() < deadline, "the subscriber did not reconnect"
        message = subscriber.receive(timeout=QUIET_S)
        if message is not None:
            into.append(message)


def run_scenario(broker, signum):
    called_back = []
    subscriber = broker.client(reconnect=True, timeout=REPLY_TIMEOUT_S, on_reset=called_back.append)
    with subscriber:
        for topic, count in SENT_BEFORE.items():
            subscriber.subscribe(topic)
            send_texts(broker, topic, f"old-{topic}", count)
        for _ in range(sum(SENT_BEFORE.values())):
            assert subscriber.receive(timeout=REPLY_TIMEOUT_S) is not None
        incarnation_before = subscriber.broker_incarnation

        broker.restart(signum)
        for topic, count in SENT_EARLY.items():
            send_texts(broker, topic, f"early-{topic}", count)
        received = []
        wait_for_reconnect(subscriber, received)
        incarnation_after = subscriber.broker_incarnation  # the new connection's hello is answered ...
        subscriber.subscribe("resumed")  # ... and this reply comes after the resubscriptions'
        for topic, count in SENT_LATE.items():
            send_texts(broker, topic, f"late-{topic}", count)
        while len(received) < sum(SENT_EARLY.values()) + sum(SENT_LATE.values()):
            message = subscriber.receive(timeout=REPLY_TIMEOUT_S)
            assert message is not None, f"only {[m.msg for m in received]} arrived"
            received.append(message)
        after_restart = {topic: [m.msg for m in received if m.topic == topic] for topic in SENT_BEFORE}
        return Outcome(after_restart, subscriber.receive(timeout=QUIET_S), subscriber.take_resets(),
                       subscriber.reset_count, called_back, subscriber.gap_count, subscriber.reconnect_count,
                       incarnation_before, incarnation_after)


@pytest.fixture(scope="module", params=[(server, signum) for server in SERVERS
                                        for signum in (signal.SIGTERM, signal.SIGKILL)],
                ids=lambda param: f"{param[0]}-{signal.Signals(param[1]).name}")
def restarted(request):
    server, signum = request.param
    broker = start_broker(cache_size=100, **SERVERS[server])
    try:
        yield server, run_scenario(broker, signum)
    finally:
        broker.stop()


def test_every_message_sent_after_the_restart_is_received_once_in_order(restarted):
    _, outcome = restarted
    assert outcome.after_restart == {topic: texts(f"early-{topic}", SENT_EARLY[topic]) +
                                     texts(f"late-{topic}", SENT_LATE[topic]) for topic in SENT_BEFORE}


def test_nothing_more_arrives(restarted):
    _, outcome = restarted
    assert outcome.unexpected is None


def test_each_topic_reports_exactly_one_reset_with_its_last_index(restarted):
    _, outcome = restarted
    assert sorted(outcome.resets, key=lambda reset: reset.topic) == RESETS


def test_reset_count_counts_each_reset(restarted):
    _, outcome = restarted
    assert outcome.reset_count == 2


def test_on_reset_is_called_once_per_reset(restarted):
    _, outcome = restarted
    assert sorted(outcome.called_back, key=lambda reset: reset.topic) == RESETS


def test_a_reset_is_no_gap(restarted):
    _, outcome = restarted
    assert outcome.gap_count == 0


def test_the_subscriber_reconnected_once(restarted):
    _, outcome = restarted
    assert outcome.reconnect_count == 1


def test_the_broker_incarnation_changes_with_a_memqd_restart_and_is_none_for_aiomemq(restarted):
    server, outcome = restarted
    if server == "memqd":
        assert None not in (outcome.incarnation_before, outcome.incarnation_after)
        assert outcome.incarnation_before != outcome.incarnation_after
    else:
        assert (outcome.incarnation_before, outcome.incarnation_after) == (None, None)


# ---- on_reset -------------------------------------------------------------------

def test_on_reset_must_be_callable(broker):
    with pytest.raises(TypeError):
        broker.client(on_reset=42)


@pytest.mark.memqd_only  # the Reset and the message must come in one call: memqd's hello tells at once
def test_an_exception_from_on_reset_goes_to_unraisablehook_and_the_message_is_kept(broker, monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    def refuse(reset):
        raise RuntimeError(f"no thanks: {reset!r}")

    with broker.client(reconnect=True, timeout=REPLY_TIMEOUT_S, on_reset=refuse) as subscriber:
        subscriber.subscribe("t")
        send_texts(broker, "t", "old", 1)
        assert subscriber.receive(timeout=REPLY_TIMEOUT_S).msg == "old0"
        broker.restart()
        send_texts(broker, "t", "new", 1)
        message = subscriber.receive(timeout=REPLY_TIMEOUT_S)  # resumes: the Reset, then the new cache
    assert message is not None and message.msg == "new0"
    assert [str(entry.exc_value) for entry in unraisable] == ["no thanks: Reset(topic='t', last_index=0)"]

