"""last_seen (PROTOCOL.md, "Templates" and "Semantics").

A subscribe replays the cached messages whose index is greater than
last_seen (default -1). last_seen is a JSON integer that fits in a signed
64-bit value. Covers the reference suite's last_seen behaviour test.
"""

import pytest

from conftest import MALFORMED, OK, QUIET_S, delivered, receive_all, reply_to

INT64_MAX = 2**63 - 1
INT64_MIN = -2**63


@pytest.fixture
def five_sent(connect):
    """Topic "t" with five cached messages, indices 0..4, from a sender that has left."""
    sender = connect()
    for i in range(5):
        sender.send("t", f"test message {i}")
    sender.close()
    return [delivered("t", f"test message {i}", i) for i in range(5)]


def test_only_messages_after_last_seen_are_replayed(connect, five_sent):
    receiver = connect()
    receiver.subscribe("t", last_seen=2)
    assert receive_all(receiver, 2) == five_sent[3:]
    assert receiver.receive(timeout=QUIET_S) is None


def test_last_seen_of_the_newest_index_replays_nothing(connect, five_sent):
    receiver = connect()
    receiver.subscribe("t", last_seen=4)
    assert receiver.receive(timeout=QUIET_S) is None


@pytest.mark.parametrize("last_seen", [5, 1000, INT64_MAX], ids=["next-index", "far-ahead", "int64-max"])
def test_last_seen_beyond_the_newest_index_replays_nothing(connect, five_sent, last_seen):
    receiver = connect()
    receiver.subscribe("t", last_seen=last_seen)
    assert receiver.receive(timeout=QUIET_S) is None


@pytest.mark.parametrize("last_seen", [-1, -2, -1000, INT64_MIN], ids=["minus-one", "minus-two", "minus-1000",
                                                                         "int64-min"])
def test_last_seen_below_zero_replays_everything(connect, five_sent, last_seen):
    receiver = connect()
    receiver.subscribe("t", last_seen=last_seen)
    assert receive_all(receiver, 5) == five_sent
    assert receiver.receive(timeout=QUIET_S) is None


def test_last_seen_defaults_to_minus_one(connect, five_sent):
    receiver = connect()
    receiver.subscribe("t")
    assert receive_all(receiver, 5) == five_sent


def test_last_seen_with_cache_false_replays_nothing(connect, five_sent):
    receiver = connect()
    receiver.subscribe("t", last_seen=2, cache=False)
    assert receiver.receive(timeout=QUIET_S) is None


def test_last_seen_does_not_filter_new_messages(connect, five_sent):
    receiver, sender = connect(), connect()
    receiver.subscribe("t", last_seen=100)
    sender.send("t", "test message 5")
    assert receive_all(receiver, 1) == [delivered("t", "test message 5", 5)]


@pytest.mark.memq_broker(cache_size=3)
def test_last_seen_older_than_the_cache_replays_what_is_left(connect, five_sent):
    receiver = connect()
    receiver.subscribe("t", last_seen=0)
    assert receive_all(receiver, 3) == five_sent[2:]


def test_one_messages_up_to_last_seen_stay_cached(connect):
    sender, skipping, late = connect(), connect(), connect()
    sender.send("t", "o0", delivery="one")
    sender.send("t", "o1", delivery="one")
    skipping.subscribe("t", last_seen=0)
    assert receive_all(skipping, 1) == [delivered("t", "o1", 1, "one")]
    skipping.unsubscribe("t")
    late.subscribe("t")
    assert receive_all(late, 1) == [delivered("t", "o0", 0, "one")]
    assert late.receive(timeout=QUIET_S) is None


# ---- the type of last_seen ---------------------------------------------------------------

@pytest.mark.parametrize("text", ["0", "-1", "4", str(INT64_MAX), str(INT64_MIN), "-0"])
def test_last_seen_accepts_any_integer_in_int64(connect, text):
    line = '{"command": "subscribe", "topic": "t", "last_seen": %s}' % text
    assert reply_to(connect(), line) == OK


@pytest.mark.parametrize("text", ["2.0", '"2"', "2e0", "1.5", "-1.0", "null", "[2]", '{"n": 2}'],
                         ids=["float", "string", "exponent", "fraction", "minus-one-float", "null", "array", "object"])
def test_last_seen_that_is_not_an_integer_is_malformed(connect, five_sent, text):
    client = connect()
    line = '{"command": "subscribe", "topic": "t", "last_seen": %s}' % text
    assert reply_to(client, line) == MALFORMED
    assert client.receive(timeout=QUIET_S) is None


@pytest.mark.memq_decision  # the Python reference takes true as 1 (and false as 0)
@pytest.mark.parametrize("text", ["true", "false"])
def test_last_seen_that_is_a_boolean_is_malformed(connect, five_sent, text):
    client = connect()
    line = '{"command": "subscribe", "topic": "t", "last_seen": %s}' % text
    assert reply_to(client, line) == MALFORMED
    assert client.receive(timeout=QUIET_S) is None


@pytest.mark.memq_decision  # the Python reference takes any integer, however large
@pytest.mark.parametrize("value", [INT64_MAX + 1, 2**64, 10**30, INT64_MIN - 1, -10**30],
                         ids=["int64-max-plus-one", "2-to-the-64", "10-to-the-30", "int64-min-minus-one",
                              "minus-10-to-the-30"])
def test_last_seen_beyond_int64_is_malformed(connect, five_sent, value):
    client = connect()
    line = '{"command": "subscribe", "topic": "t", "last_seen": %d}' % value
    assert reply_to(client, line) == MALFORMED
    assert client.receive(timeout=QUIET_S) is None
