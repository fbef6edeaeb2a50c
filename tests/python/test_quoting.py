"""Quoting: topics and messages are arbitrary strings (PROTOCOL.md, "Templates").

Any Unicode, quotes, backslashes, escapes and control characters travel
unchanged from the sender to every subscriber; the delivered JSON may carry
non-ASCII raw or escaped.
"""

import json

import pytest

from conftest import OK, REPLY_TIMEOUT_S, delivered, receive_all, reply_to, wire

# The reference suite's quoting test: single, double and mixed quotes.
QUOTES = ["''''''", '""""""', "'\"'\"'\""]

STRINGS = {
    "single-quotes": QUOTES[0],
    "double-quotes": QUOTES[1],
    "mixed-quotes": QUOTES[2],
    "backslashes": "\\\\ \\ \\\\\\",
    "escaped-quote-lookalike": '\\"',
    "json-lookalike": '{"command": "send", "topic": "x", "msg": "y", "delivery": "all"}',
    "newline-and-crlf": "line1\nline2\r\nline3",
    "control-characters": "".join(chr(c) for c in range(0x20)) + "\x7f",
    "nul": "a\x00b",
    "latin": "árvíztűrő tükörfúrógép",
    "cjk": "消息队列",
    "rtl": "שלום עולם",
    "emoji": "\U0001F600\U0001F680 \U0001F468\u200D\U0001F469\u200D\U0001F467",
    "combining": "e\u0301a\u0308",
    "line-separators": "\u2028\u2029\u0085",
    "bom-and-noncharacters": "\ufeff\ufffe\uffff",
    "spaces-only": "   ",
    "slash": "/a/b/",
    "percent-and-braces": "%s %d {} {0} ${x}",
}


@pytest.mark.parametrize("quoted", QUOTES, ids=["single", "double", "mixed"])
def test_quotes_in_topic_and_msg_are_delivered_unchanged(connect, quoted):
    client = connect()
    client.subscribe(quoted)
    client.send(quoted, quoted)
    assert receive_all(client, 1) == [delivered(quoted, quoted, 0)]


def test_each_quoted_topic_is_a_topic_of_its_own(connect):
    client = connect()
    for quoted in QUOTES:
        client.subscribe(quoted)
        client.send(quoted, quoted)
        assert receive_all(client, 1) == [delivered(quoted, quoted, 0)]


@pytest.mark.parametrize("text", STRINGS.values(), ids=STRINGS.keys())
def test_a_message_is_delivered_exactly_as_sent(connect, text):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    sender.send("t", text)
    message = subscriber.receive(timeout=REPLY_TIMEOUT_S)
    assert message.msg == text
    assert wire(message) == delivered("t", text, 0)


@pytest.mark.parametrize("text", STRINGS.values(), ids=STRINGS.keys())
def test_a_topic_is_delivered_exactly_as_named(connect, text):
    subscriber, sender = connect(), connect()
    subscriber.subscribe(text)
    sender.send(text, "m")
    message = subscriber.receive(timeout=REPLY_TIMEOUT_S)
    assert message.topic == text
    assert wire(message) == delivered(text, "m", 0)


def test_an_empty_message_is_delivered(connect):
    client = connect()
    client.subscribe("t")
    client.send("t", "")
    assert receive_all(client, 1) == [delivered("t", "", 0)]


def test_escaped_and_raw_utf8_name_the_same_topic(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("café \U0001F600")
    escaped = json.dumps({"command": "send", "topic": "café \U0001F600", "msg": "m", "delivery": "all"})
    assert "\\u00e9" in escaped and "\\ud83d\\ude00" in escaped
    assert reply_to(sender, escaped) == OK
    assert receive_all(subscriber, 1) == [delivered("café \U0001F600", "m", 0)]


def test_json_escapes_are_decoded_before_delivery(connect):
    client = connect()
    client.subscribe("t")
    line = r'{"command": "send", "topic": "t", "msg": "\/\u0041\"\\\b\f\n\r\t", "delivery": "all"}'
    assert reply_to(client, line) == OK
    assert receive_all(client, 1) == [delivered("t", '/A"\\\b\f\n\r\t', 0)]


def test_escaped_keys_are_the_same_keys(connect):
    client = connect()
    line = r'{"\u0063ommand": "subscribe", "topi\u0063": "t"}'
    assert reply_to(client, line) == OK
    client.send("t", "m")
    assert receive_all(client, 1) == [delivered("t", "m", 0)]


def test_a_long_message_full_of_quotes_is_delivered_unchanged(connect):
    client = connect()
    client.subscribe("t")
    text = "\"'\\" * 10_000  # a 50 KB line: under the Python reference's 64 KiB limit
    client.send("t", text)
    assert receive_all(client, 1) == [delivered("t", text, 0)]
