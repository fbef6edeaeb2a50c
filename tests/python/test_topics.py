"""Topics: any string names a topic, up to memqd's --max-topic-bytes (1 KiB).

Covers the reference suite's topic length tests (1 to 1024 characters), that
a longer topic is refused by memqd and changes nothing, and that a topic is
its exact string: case, whitespace and normalisation count.
"""

import json

import pytest

from conftest import OK, QUIET_S, delivered, receive_all, reply_to

LENGTHS = {"1": 1, "2": 2, "256": 256, "1024": 1024}
TOPIC_TOO_LONG = {"success": False, "reason": "Topic too long"}


@pytest.mark.parametrize("length", LENGTHS.values(), ids=LENGTHS.keys())
def test_a_topic_of_any_length_works(connect, length):
    client = connect()
    topic = "a" * length
    client.subscribe(topic)
    client.send(topic, "test message")
    assert receive_all(client, 1) == [delivered(topic, "test message", 0)]
    assert client.receive(timeout=QUIET_S) is None


@pytest.mark.memqd_only
def test_a_topic_past_the_default_1_kib_is_refused_and_changes_nothing(connect):
    subscriber, sender = connect(), connect()
    topic = "\u00e9" * 513  # 1026 bytes of UTF-8; 512 of them are 1024
    assert reply_to(subscriber, json.dumps({"command": "subscribe", "topic": topic})) == TOPIC_TOO_LONG
    assert reply_to(sender, json.dumps({"command": "send", "topic": topic, "msg": "m", "delivery": "all"})) \
        == TOPIC_TOO_LONG
    assert reply_to(sender, json.dumps({"command": "unsubscribe", "topic": topic})) == TOPIC_TOO_LONG
    assert reply_to(subscriber, json.dumps({"command": "subscribe", "topic": topic[:512]})) == OK
    assert reply_to(sender, json.dumps({"command": "send", "topic": topic[:512], "msg": "m", "delivery": "all"})) == OK
    assert receive_all(subscriber, 1) == [delivered(topic[:512], "m", 0)]


@pytest.mark.memqd_only
@pytest.mark.memq_broker(args=["--max-line-bytes", "4096", "--max-topic-bytes", "4096"])
def test_with_max_topic_bytes_raised_a_topic_is_bounded_only_by_the_line_limit(connect):
    subscriber, sender = connect(), connect()
    bare = json.dumps({"command": "send", "topic": "", "msg": "m", "delivery": "all"})
    topic = "t" * (4096 - len(bare))
    subscriber.subscribe(topic)
    command = json.dumps({"command": "send", "topic": topic, "msg": "m", "delivery": "all"})
    assert len(command) == 4096
    assert reply_to(sender, command) == OK
    assert receive_all(subscriber, 1) == [delivered(topic, "m", 0)]


@pytest.mark.parametrize("other", ["T", " t", "t ", "t\t", "tt"],
                         ids=["upper-case", "leading-space", "trailing-space", "trailing-tab", "doubled"])
def test_topics_differ_by_their_exact_string(connect, other):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    sender.send(other, "not for t")
    assert subscriber.receive(timeout=QUIET_S) is None


def test_unicode_topics_are_not_normalised(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("\u00e9")  # é, precomposed
    sender.send("e\u0301", "decomposed")  # e + combining acute
    assert subscriber.receive(timeout=QUIET_S) is None


def test_a_connection_may_subscribe_to_many_topics(connect):
    subscriber, sender = connect(), connect()
    topics = [f"topic-{i}" for i in range(200)]
    for topic in topics:
        subscriber.subscribe(topic)
    for topic in topics:
        sender.publish(topic, f"to {topic}")
    sender.flush()
    assert receive_all(subscriber, 200) == [delivered(topic, f"to {topic}", 0) for topic in topics]
