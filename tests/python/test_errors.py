"""Errors and their order (PROTOCOL.md, "Errors, checked in this order").

Each refused line gets exactly one reply: "Could not decode input as UTF-8"
first, then "Could not parse json", then "Malformed json message". An error
never closes the connection and never changes any state. Random bytes and
random strings (the reference suite's first two categories) get, line by
line, exactly the reason their content deserves.
"""

import json
import random
import string

import pytest

from conftest import (BAD_JSON, BAD_UTF8, MALFORMED, OK, QUIET_S, REPLY_TIMEOUT_S, delivered, receive_all,
                      reply_to, send_in_one_write)

VALID_SEND = b'{"command": "send", "topic": "t", "msg": "m", "delivery": "all"}'


# ---- UTF-8 -----------------------------------------------------------------------

INVALID_UTF8 = {
    "lone-continuation-byte": b"\x80",
    "ff-byte": b"\xff",
    "fe-byte": b"\xfe",
    "truncated-two-byte": b"\xc3",
    "truncated-four-byte": b"\xf0\x9f\x98",
    "overlong-slash-2-bytes": b"\xc0\xaf",
    "overlong-slash-3-bytes": b"\xe0\x80\xaf",
    "overlong-nul-2-bytes": b"\xc0\x80",
    "overlong-4-bytes": b"\xf0\x80\x80\xaf",
    "surrogate-high": b"\xed\xa0\x80",
    "surrogate-low": b"\xed\xbf\xbf",
    "surrogate-pair-cesu8": b"\xed\xa0\xbd\xed\xb8\x80",
    "above-u10ffff": b"\xf4\x90\x80\x80",
    "five-byte-form": b"\xf8\x88\x80\x80\x80",
    "latin1-e-acute": b"caf\xe9",
}


@pytest.mark.parametrize("raw", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
def test_invalid_utf8_is_refused(connect, raw):
    assert reply_to(connect(), raw) == BAD_UTF8


@pytest.mark.parametrize("raw", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
def test_invalid_utf8_inside_an_otherwise_valid_command_is_refused(connect, raw):
    client = connect()
    command = b'{"command": "send", "topic": "t", "msg": "' + raw + b'", "delivery": "all"}'
    assert reply_to(client, command) == BAD_UTF8
    client.subscribe("t", last_seen=-1)
    assert client.receive(timeout=QUIET_S) is None


def test_utf8_is_checked_before_json(connect):
    assert reply_to(connect(), b"\xff this is not json {") == BAD_UTF8


@pytest.mark.parametrize("text", ["é", "€", "\U0001F600", "\u0800", "\uffff", "\U0010FFFF", "\u00a0", "\ufeff"],
                         ids=["2-byte", "3-byte", "4-byte", "u0800", "uffff", "u10ffff", "nbsp", "bom"])
def test_valid_utf8_of_every_length_is_accepted(connect, text):
    client = connect()
    client.subscribe("t")
    assert reply_to(client, {"command": "send", "topic": "t", "msg": text, "delivery": "all"}) == OK
    assert receive_all(client, 1) == [delivered("t", text, 0)]


# ---- JSON ------------------------------------------------------------------------

INVALID_JSON = {
    "plain-text": b"hello",
    "truncated-object": b'{"command": "subscribe", "topic": "t"',
    "trailing-garbage": b'{"command": "subscribe", "topic": "t"} x',
    "two-objects": b'{"command": "subscribe", "topic": "t"}{"command": "subscribe", "topic": "u"}',
    "trailing-comma": b'{"command": "subscribe", "topic": "t",}',
    "single-quotes": b"{'command': 'subscribe', 'topic': 't'}",
    "unquoted-keys": b'{command: "subscribe", topic: "t"}',
    "missing-colon": b'{"command" "subscribe", "topic": "t"}',
    "unescaped-control-character": b'{"command": "send", "topic": "t", "msg": "a\x01b", "delivery": "all"}',
    "unescaped-tab-in-string": b'{"command": "send", "topic": "t", "msg": "a\tb", "delivery": "all"}',
    "invalid-escape": b'{"command": "send", "topic": "t", "msg": "\\x41", "delivery": "all"}',
    "short-unicode-escape": b'{"command": "send", "topic": "t", "msg": "\\u41", "delivery": "all"}',
    "leading-zero": b'{"command": "subscribe", "topic": "t", "last_seen": 01}',
    "plus-sign": b'{"command": "subscribe", "topic": "t", "last_seen": +1}',
    "hex-number": b'{"command": "subscribe", "topic": "t", "last_seen": 0x10}',
    "bare-word-true-capitalised": b'{"command": "subscribe", "topic": "t", "cache": True}',
    "comment": b'{"command": "subscribe", "topic": "t"} // comment',
    "form-feed-inside": b'{"command":\x0c"subscribe", "topic": "t"}',
    "lone-brace": b"}",
    "lone-minus": b"-",
}

# Python's json (the Python reference server) reads these non-RFC-8259 tokens
# as numbers, so there the line is "Malformed json message"; PROTOCOL.md asks
# for strict RFC 8259, which memq follows.
NON_RFC_NUMBERS = {
    "nan": b'{"command": "subscribe", "topic": "t", "last_seen": NaN}',
    "infinity": b'{"command": "subscribe", "topic": "t", "last_seen": Infinity}',
    "minus-infinity": b'{"command": "subscribe", "topic": "t", "last_seen": -Infinity}',
    "bare-nan": b"NaN",
}


@pytest.mark.parametrize("raw", INVALID_JSON.values(), ids=INVALID_JSON.keys())
def test_invalid_json_is_refused(connect, raw):
    assert reply_to(connect(), raw) == BAD_JSON


@pytest.mark.memq_decision
@pytest.mark.parametrize("raw", NON_RFC_NUMBERS.values(), ids=NON_RFC_NUMBERS.keys())
def test_nan_and_infinity_are_not_json(connect, raw):
    assert reply_to(connect(), raw) == BAD_JSON


NUMBERS_PAST_A_DOUBLE = {
    "exponent": b"[1e400]",
    "400-digit-integer": b"[1" + b"0" * 400 + b"]",
    "as-last-seen": b'{"command": "subscribe", "topic": "t", "last_seen": 1e400}',
    "as-cache": b'{"command": "subscribe", "topic": "t", "cache": 1e400}',
}


@pytest.mark.parametrize("raw", NUMBERS_PAST_A_DOUBLE.values(), ids=NUMBERS_PAST_A_DOUBLE.keys())
def test_a_number_too_large_for_a_double_is_still_json(connect, raw):
    # RFC 8259 sets no range on numbers: these lines are JSON, just not commands.
    assert reply_to(connect(), raw) == MALFORMED


def test_json_is_checked_before_the_template(connect):
    assert reply_to(connect(), b'{"command": "subscribe", "extra": 1') == BAD_JSON


NOT_AN_OBJECT = {
    "array": b"[]",
    "array-of-a-command": b'[{"command": "subscribe", "topic": "t"}]',
    "string": b'"subscribe"',
    "empty-object": b"{}",
}
# The Python reference answers "Internal exception" to these (it looks for
# "command" in them with Python's `in`, which fails on numbers, booleans, None).
SCALARS = {
    "integer": b"42",
    "float": b"-1.5e3",
    "true": b"true",
    "false": b"false",
    "null": b"null",
}


@pytest.mark.parametrize("raw", NOT_AN_OBJECT.values(), ids=NOT_AN_OBJECT.keys())
def test_json_that_is_not_a_command_object_is_malformed(connect, raw):
    assert reply_to(connect(), raw) == MALFORMED


@pytest.mark.memq_decision
@pytest.mark.parametrize("raw", SCALARS.values(), ids=SCALARS.keys())
def test_a_json_number_boolean_or_null_is_malformed(connect, raw):
    assert reply_to(connect(), raw) == MALFORMED


# ---- errors change nothing -------------------------------------------------------

def test_errors_do_not_close_the_connection(connect):
    client = connect()
    for raw, reply in [(b"\xc0\xaf", BAD_UTF8), (b"{", BAD_JSON), (b"[]", MALFORMED)] * 3:
        assert reply_to(client, raw) == reply
    client.subscribe("t")
    client.send("t", "after the errors")
    assert receive_all(client, 1) == [delivered("t", "after the errors", 0)]


def test_a_refused_send_does_not_use_an_index(connect):
    client = connect()
    client.subscribe("t")
    assert reply_to(client, {"command": "send", "topic": "t", "msg": "m", "delivery": "some"}) == MALFORMED
    assert reply_to(client, {"command": "send", "topic": "t", "msg": "m", "delivery": "all", "x": 1}) == MALFORMED
    assert reply_to(client, b'{"command": "send", "topic": "t", "msg": "\xff", "delivery": "all"}') == BAD_UTF8
    client.send("t", "accepted")
    assert receive_all(client, 1) == [delivered("t", "accepted", 0)]
    assert client.receive(timeout=QUIET_S) is None


def test_a_refused_send_is_neither_delivered_nor_cached(connect):
    subscriber, sender, late = connect(), connect(), connect()
    subscriber.subscribe("t")
    assert reply_to(sender, {"command": "send", "topic": "t", "msg": "m", "delivery": "all", "cache": 1}) == MALFORMED
    assert subscriber.receive(timeout=QUIET_S) is None
    late.subscribe("t")
    assert late.receive(timeout=QUIET_S) is None


def test_a_refused_subscribe_does_not_subscribe(connect):
    client, sender = connect(), connect()
    assert reply_to(client, {"command": "subscribe", "topic": "t", "cache": "yes"}) == MALFORMED
    sender.send("t", "m")
    assert client.receive(timeout=QUIET_S) is None


def test_a_refused_unsubscribe_does_not_unsubscribe(connect):
    client, sender = connect(), connect()
    client.subscribe("t")
    assert reply_to(client, {"command": "unsubscribe", "topic": "t", "cache": False}) == MALFORMED
    sender.send("t", "m")
    assert receive_all(client, 1) == [delivered("t", "m", 0)]


# ---- random bytes and random strings (the reference suite's categories 1 and 2) ---

ASCII_WHITESPACE = b" \t\r\n\f\v"


def deserved_reply(raw_line):
    """The reply PROTOCOL.md owes one line (without its "\\n"): None when none, "quit" for quit."""
    content = raw_line.strip(ASCII_WHITESPACE)
    if not content:
        return None
    try:
        text = content.decode("utf-8")  # strict: no overlongs, no surrogates
    except UnicodeDecodeError:
        return BAD_UTF8
    if text == "quit":
        return "quit"
    try:
        json.loads(text, parse_constant=lambda name: 1 / 0)  # strict RFC 8259: no NaN / Infinity
    except (ValueError, ZeroDivisionError):
        return BAD_JSON
    return MALFORMED  # random input never makes a whole command; if it did, this test would say so


def check_every_line_gets_its_deserved_reply(client, data):
    """Writes `data` at once; each complete line must get exactly the reply it deserves."""
    assert data.endswith(b"\n")
    expected = []
    for raw_line in data.split(b"\n")[:-1]:
        reply = deserved_reply(raw_line)
        if reply == "quit":
            break
        if reply is not None:
            expected.append(reply)
    send_in_one_write(client, data, replies=len(expected))
    replies = [client.next_reply(timeout=REPLY_TIMEOUT_S) for _ in expected]
    assert replies == expected
    assert client.receive(timeout=QUIET_S) is None


SIZES = {"100": 100, "1k": 1024, "10k": 10 * 1024, "64k": 64 * 1024 - 2}


@pytest.mark.parametrize("length", SIZES.values(), ids=SIZES.keys())
def test_random_bytes_get_the_reply_each_line_deserves(connect, length):
    generator = random.Random(f"random bytes {length}")
    data = generator.randbytes(length) + b"\r\n"
    check_every_line_gets_its_deserved_reply(connect(), data)


@pytest.mark.parametrize("length", SIZES.values(), ids=SIZES.keys())
def test_random_strings_are_not_json(connect, length):
    generator = random.Random(f"random string {length}")
    data = "".join(generator.choices(string.ascii_letters + string.digits, k=length)).encode() + b"\r\n"
    check_every_line_gets_its_deserved_reply(connect(), data)


@pytest.mark.memq_decision  # lines that parse to a bare number: "Internal exception" in the Python reference
@pytest.mark.parametrize("seed", range(5))
def test_random_printable_text_gets_the_reply_each_line_deserves(connect, seed):
    # Mostly JSON punctuation, digits and whitespace, so that some lines do parse.
    generator = random.Random(f"random text {seed}")
    alphabet = '{}[]":,0123456789-. nul\t\r\n\n\n\\' + "é€\U0001F600"
    data = "".join(generator.choices(alphabet, k=4096)).encode() + b"\n"
    check_every_line_gets_its_deserved_reply(connect(), data)


def test_the_connection_works_after_random_bytes(connect):
    client = connect()
    data = random.Random("then a command").randbytes(4096) + b"\n"
    check_every_line_gets_its_deserved_reply(client, data)
    client.subscribe("t")
    client.send("t", "m")
    assert receive_all(client, 1) == [delivered("t", "m", 0)]
