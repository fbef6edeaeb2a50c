"""Command templates (PROTOCOL.md, "Templates").

A command object has exactly the keys of its template: every required key,
no other key, each of the right JSON type; anything else is "Malformed json
message". Duplicate keys: the last one wins. Covers the reference suite's
message validation (subscribe / unsubscribe / send) and non-existing commands.
"""

import pytest

from conftest import MALFORMED, OK, QUIET_S, delivered, receive_all, reply_to

TOPIC = "validation"

COMPLETE = {
    "subscribe": {"command": "subscribe", "topic": TOPIC},
    "unsubscribe": {"command": "unsubscribe", "topic": TOPIC},
    "send": {"command": "send", "topic": TOPIC, "msg": "hello", "delivery": "all"},
}
WITH_OPTIONAL_KEYS = {
    "subscribe-last-seen": {"command": "subscribe", "topic": TOPIC, "last_seen": 3},
    "subscribe-cache-true": {"command": "subscribe", "topic": TOPIC, "cache": True},
    "subscribe-cache-false": {"command": "subscribe", "topic": TOPIC, "cache": False},
    "subscribe-both": {"command": "subscribe", "topic": TOPIC, "last_seen": -1, "cache": True},
    "send-one": {"command": "send", "topic": TOPIC, "msg": "hello", "delivery": "one"},
    "send-cache-true": {"command": "send", "topic": TOPIC, "msg": "hello", "delivery": "all", "cache": True},
    "send-cache-false": {"command": "send", "topic": TOPIC, "msg": "hello", "delivery": "one", "cache": False},
}


def without(command, key):
    return {k: v for k, v in COMPLETE[command].items() if k != key}


def with_value(command, key, value):
    return {**COMPLETE[command], key: value}


@pytest.mark.parametrize("command", COMPLETE.values(), ids=COMPLETE.keys())
def test_a_command_with_exactly_its_required_keys_is_accepted(connect, command):
    client = connect()
    client.subscribe(TOPIC)  # so that unsubscribe has something to undo
    assert reply_to(client, command) == OK


@pytest.mark.parametrize("command", WITH_OPTIONAL_KEYS.values(), ids=WITH_OPTIONAL_KEYS.keys())
def test_a_command_with_its_optional_keys_is_accepted(connect, command):
    assert reply_to(connect(), command) == OK


MISSING = [(name, key) for name, command in COMPLETE.items() for key in command]


@pytest.mark.parametrize("name, key", MISSING, ids=[f"{name}-without-{key}" for name, key in MISSING])
def test_a_command_missing_a_required_key_is_malformed(connect, name, key):
    assert reply_to(connect(), without(name, key)) == MALFORMED


EXTRA = [
    ("subscribe", "extra_key", "extra_value"),
    ("unsubscribe", "extra_key", "extra_value"),
    ("send", "extra_key", "extra_value"),
    ("subscribe", "msg", "hello"),
    ("subscribe", "delivery", "all"),
    ("subscribe", "index", 0),
    ("unsubscribe", "last_seen", 1),
    ("unsubscribe", "cache", True),
    ("unsubscribe", "msg", "hello"),
    ("send", "last_seen", 1),
    ("send", "index", 0),
    ("send", "Topic", TOPIC),
    ("send", "", ""),
]


@pytest.mark.parametrize("name, key, value", EXTRA, ids=[f"{name}-with-{key or 'empty-key'}" for name, key, _ in EXTRA])
def test_a_key_outside_the_template_is_malformed(connect, name, key, value):
    assert reply_to(connect(), with_value(name, key, value)) == MALFORMED


def test_a_delivered_message_sent_back_is_malformed(connect):
    client = connect()
    client.subscribe(TOPIC)
    client.send(TOPIC, "hello")
    message = client.receive(timeout=1)
    assert reply_to(client, message.raw) == MALFORMED  # "index" is not in the send template


NOT_A_STRING = {"integer": 123, "float": 1.5, "true": True, "false": False, "null": None, "array": ["x"],
                "object": {"x": "y"}}
WRONG_TYPES = [
    *[(name, key, label, value) for name, command in COMPLETE.items() for key in command
      for label, value in NOT_A_STRING.items()],
    ("subscribe", "last_seen", "string", "123"),
    ("subscribe", "last_seen", "float", 2.0),
    ("subscribe", "last_seen", "fraction", 1.5),
    ("subscribe", "last_seen", "null", None),
    ("subscribe", "last_seen", "array", [1]),
    ("subscribe", "last_seen", "object", {"n": 1}),
    ("subscribe", "cache", "integer", 123),
    ("subscribe", "cache", "zero", 0),
    ("subscribe", "cache", "string", "true"),
    ("subscribe", "cache", "null", None),
    ("subscribe", "cache", "array", [True]),
    ("send", "cache", "string", "not_a_bool"),
    ("send", "cache", "integer", 1),
    ("send", "cache", "null", None),
    ("send", "cache", "object", {}),
]
# The Python reference takes a JSON boolean for an integer (bool is an int there).
BOOLEAN_LAST_SEEN = [
    pytest.param("subscribe", "last_seen", "true", True, marks=pytest.mark.memq_decision,
                 id="subscribe-last_seen-true"),
    pytest.param("subscribe", "last_seen", "false", False, marks=pytest.mark.memq_decision,
                 id="subscribe-last_seen-false"),
]


@pytest.mark.parametrize("name, key, label, value", [
    *[pytest.param(*case, id=f"{case[0]}-{case[1]}-{case[2]}") for case in WRONG_TYPES], *BOOLEAN_LAST_SEEN])
def test_a_value_of_the_wrong_type_is_malformed(connect, name, key, label, value):
    assert reply_to(connect(), with_value(name, key, value)) == MALFORMED


@pytest.mark.parametrize("delivery", ["invalid", "ALL", "One", "", " all", "all ", "both", "none"])
def test_delivery_other_than_all_or_one_is_malformed(connect, delivery):
    assert reply_to(connect(), with_value("send", "delivery", delivery)) == MALFORMED


@pytest.mark.parametrize("command", ["non_existing_command", "invalid_command", "fake_command", "Subscribe", "SEND",
                                     "unsubscribe ", "", "quit", "publish"])
def test_a_command_that_does_not_exist_is_malformed(connect, command):
    assert reply_to(connect(), {"command": command, "topic": TOPIC}) == MALFORMED


def test_a_non_existing_command_with_the_keys_of_a_send_is_malformed(connect):
    assert reply_to(connect(), with_value("send", "command", "publish")) == MALFORMED


# ---- duplicate keys: the last one wins --------------------------------------------

def test_duplicate_topic_the_last_one_is_subscribed(connect):
    client, sender = connect(), connect()
    assert reply_to(client, '{"command": "subscribe", "topic": "first", "topic": "last"}') == OK
    sender.send("first", "to first")
    sender.send("last", "to last")
    assert receive_all(client, 1) == [delivered("last", "to last", 0)]
    assert client.receive(timeout=QUIET_S) is None


def test_duplicate_command_the_last_one_is_executed(connect):
    client, sender = connect(), connect()
    assert reply_to(client, '{"command": "unsubscribe", "topic": "t", "command": "subscribe"}') == OK
    sender.send("t", "m")
    assert receive_all(client, 1) == [delivered("t", "m", 0)]


def test_duplicate_msg_the_last_one_is_sent(connect):
    client = connect()
    client.subscribe("t")
    assert reply_to(client, '{"command": "send", "topic": "t", "msg": "first", "delivery": "all", "msg": "last"}') == OK
    assert receive_all(client, 1) == [delivered("t", "last", 0)]


def test_duplicate_key_a_wrong_type_then_a_right_one_is_accepted(connect):
    assert reply_to(connect(), '{"command": "subscribe", "topic": 1, "topic": "t"}') == OK


def test_duplicate_key_a_right_type_then_a_wrong_one_is_malformed(connect):
    assert reply_to(connect(), '{"command": "subscribe", "topic": "t", "topic": 1}') == MALFORMED


def test_duplicate_delivery_the_last_one_counts(connect):
    client = connect()
    client.subscribe("t")
    line = '{"command": "send", "topic": "t", "msg": "m", "delivery": "invalid", "delivery": "one"}'
    assert reply_to(client, line) == OK
    assert receive_all(client, 1) == [delivered("t", "m", 0, "one")]


def test_duplicate_cache_the_last_one_counts(connect):
    sender, late = connect(), connect()
    line = '{"command": "send", "topic": "t", "msg": "m", "delivery": "all", "cache": true, "cache": false}'
    assert reply_to(sender, line) == OK
    late.subscribe("t")
    assert late.receive(timeout=QUIET_S) is None
