"""Framing: lines in, replies out (PROTOCOL.md, "Framing").

A command is one line ending at "\\n"; "\\r" before it and ASCII whitespace
around the line are ignored, empty lines get no reply, commands may be
pipelined and split anywhere, "quit" closes the connection, and a line past
the limit gets "Line too long" before the connection closes.
"""

import json

import pytest

import memq
from conftest import (BAD_JSON, LINE_TOO_LONG, MALFORMED, OK, QUIET_S, REPLY_TIMEOUT_S, delivered, line,
                      receive_all, reply_to, send_in_one_write)


def subscribe_line(topic):
    return line({"command": "subscribe", "topic": topic})


def send_line(topic, msg, delivery="all"):
    return line({"command": "send", "topic": topic, "msg": msg, "delivery": delivery})


def write_in_pieces(client, pieces, other):
    """Writes each piece with its own write; the last one owes a reply.

    Between writes a round trip on `other` gives the broker the chance to
    read each piece on its own before the next one is sent.
    """
    for number, piece in enumerate(pieces, start=1):
        client.send_raw(piece, expect_reply=number == len(pieces))
        other.subscribe("framing-sync")


# ---- pipelining ------------------------------------------------------------------

def test_pipelined_commands_in_one_write_are_answered_in_order(connect):
    client = connect()
    data = b"".join([
        subscribe_line("t"),
        send_line("t", "first"),
        b"not json\n",
        send_line("t", "second"),
        line({"command": "unsubscribe", "topic": "t"}),
        send_line("t", "third"),
    ])
    send_in_one_write(client, data, replies=6)
    assert [client.next_reply(timeout=REPLY_TIMEOUT_S) for _ in range(6)] == [OK, OK, BAD_JSON, OK, OK, OK]
    assert receive_all(client, 2) == [delivered("t", "first", 0), delivered("t", "second", 1)]
    assert client.receive(timeout=QUIET_S) is None


def test_a_thousand_sends_in_one_write_are_all_executed(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    send_in_one_write(sender, b"".join(send_line("t", f"m{i}") for i in range(1000)), replies=1000)
    assert all(sender.next_reply(timeout=REPLY_TIMEOUT_S) == OK for _ in range(1000))
    assert receive_all(subscriber, 1000) == [delivered("t", f"m{i}", i) for i in range(1000)]
    assert subscriber.receive(timeout=QUIET_S) is None


def test_one_line_split_over_many_writes_is_one_command(connect):
    client, other, sender = connect(), connect(), connect()
    command = subscribe_line("split-topic")
    write_in_pieces(client, [command[i:i + 1] for i in range(len(command))], other)
    assert client.next_reply(timeout=REPLY_TIMEOUT_S) == OK
    sender.send("split-topic", "hello")
    assert receive_all(client, 1) == [delivered("split-topic", "hello", 0)]
    assert client.receive(timeout=QUIET_S) is None


def test_a_character_split_between_writes_is_reassembled(connect):
    client, other = connect(), connect()
    client.subscribe("t")
    command = send_line("t", "a\U0001F600b")
    emoji = command.index("\U0001F600".encode("utf-8"))
    write_in_pieces(client, [command[:emoji + 1], command[emoji + 1:emoji + 3], command[emoji + 3:]], other)
    assert client.next_reply(timeout=REPLY_TIMEOUT_S) == OK
    assert receive_all(client, 1) == [delivered("t", "a\U0001F600b", 0)]


def test_several_lines_split_at_arbitrary_points_are_all_executed(connect):
    client, other = connect(), connect()
    data = subscribe_line("t") + send_line("t", "one") + send_line("t", "two")
    client.send_raw(b"", expect_reply=True)
    client.send_raw(b"", expect_reply=True)
    write_in_pieces(client, [data[i:i + 7] for i in range(0, len(data), 7)], other)
    assert [client.next_reply(timeout=REPLY_TIMEOUT_S) for _ in range(3)] == [OK, OK, OK]
    assert receive_all(client, 2) == [delivered("t", "one", 0), delivered("t", "two", 1)]


def test_a_crlf_split_between_writes_still_ends_one_line(connect):
    client, other = connect(), connect()
    command = json.dumps({"command": "subscribe", "topic": "t"}).encode()
    write_in_pieces(client, [command + b"\r", b"\n"], other)
    assert client.next_reply(timeout=REPLY_TIMEOUT_S) == OK
    assert client.receive(timeout=QUIET_S) is None


# ---- line endings and whitespace -------------------------------------------------

@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_a_line_ends_at_newline_with_or_without_carriage_return(connect, ending):
    client = connect()
    client.send_raw(json.dumps({"command": "subscribe", "topic": "t"}).encode() + ending, expect_reply=True)
    assert client.next_reply(timeout=REPLY_TIMEOUT_S) == OK
    assert reply_to(client, {"command": "send", "topic": "t", "msg": "m", "delivery": "all"}) == OK
    assert receive_all(client, 1) == [delivered("t", "m", 0)]


def test_a_bare_carriage_return_does_not_end_a_line(connect):
    client = connect()
    command = json.dumps({"command": "subscribe", "topic": "t"}).encode()
    send_in_one_write(client, command + b"\r" + command + b"\n", replies=1)
    assert client.next_reply(timeout=REPLY_TIMEOUT_S) == BAD_JSON
    assert client.receive(timeout=QUIET_S) is None


@pytest.mark.parametrize("before, after", [
    (b" ", b""), (b"", b" "), (b"\t", b"\t"), (b"  \t ", b" \t  \r"), (b"\f\v", b"\v\f"), (b"\r", b"\r\r"),
], ids=["space-before", "space-after", "tabs", "mixed", "form-feed-vertical-tab", "carriage-returns"])
def test_ascii_whitespace_around_a_line_is_ignored(connect, before, after):
    client, sender = connect(), connect()
    command = json.dumps({"command": "subscribe", "topic": "t"}).encode()
    client.send_raw(before + command + after + b"\n", expect_reply=True)
    assert client.next_reply(timeout=REPLY_TIMEOUT_S) == OK
    sender.send("t", "m")
    assert receive_all(client, 1) == [delivered("t", "m", 0)]


def test_empty_and_blank_lines_get_no_reply(connect):
    client = connect()
    send_in_one_write(client, b"\n\r\n   \n\t\n\f\v\r\n" + subscribe_line("t") + b"\n\n", replies=1)
    assert client.next_reply(timeout=REPLY_TIMEOUT_S) == OK
    assert client.receive(timeout=QUIET_S) is None


def test_only_blank_lines_get_no_reply_at_all(connect):
    client = connect()
    client.send_raw(b"\n \n\r\n\t\t\n", expect_reply=False)
    assert client.receive(timeout=QUIET_S) is None
    assert reply_to(client, {"command": "subscribe", "topic": "t"}) == OK


def test_newlines_inside_a_message_do_not_split_its_line(connect):
    client = connect()
    client.subscribe("t")
    client.send("t", "line one\nline two\r\n")
    assert receive_all(client, 1) == [delivered("t", "line one\nline two\r\n", 0)]
    assert client.receive(timeout=QUIET_S) is None


# ---- quit ------------------------------------------------------------------------

@pytest.mark.memq_decision
def test_quit_closes_the_connection_without_a_reply(connect):
    client = connect()
    send_in_one_write(client, subscribe_line("t") + b"quit\n", replies=1)
    assert client.next_reply(timeout=REPLY_TIMEOUT_S) == OK
    with pytest.raises(memq.ConnectionError):
        client.receive(timeout=REPLY_TIMEOUT_S)


@pytest.mark.memq_decision
@pytest.mark.parametrize("quit_line", [b"quit\r\n", b"  quit \t\n", b"\tquit\r\r\n"], ids=["crlf", "spaces", "tabs"])
def test_quit_with_whitespace_around_it_is_quit(connect, quit_line):
    client = connect()
    client.send_raw(quit_line, expect_reply=False)
    with pytest.raises(memq.ConnectionError):
        client.receive(timeout=REPLY_TIMEOUT_S)


@pytest.mark.memq_decision
def test_lines_after_quit_are_not_executed(connect):
    client, subscriber = connect(), connect()
    subscriber.subscribe("t")
    client.send_raw(b"quit\n" + send_line("t", "after quit"), expect_reply=False)
    with pytest.raises(memq.ConnectionError):
        client.receive(timeout=REPLY_TIMEOUT_S)
    assert subscriber.receive(timeout=QUIET_S) is None


@pytest.mark.parametrize("not_quit, reply", [
    (b"QUIT", BAD_JSON), (b"Quit", BAD_JSON), (b"quit now", BAD_JSON), (b"quitquit", BAD_JSON),
    (b'"quit"', MALFORMED), (b'{"command": "quit"}', MALFORMED),
], ids=["upper", "capitalised", "with-argument", "doubled", "json-string", "json-command"])
def test_only_the_bare_word_quit_is_quit(connect, not_quit, reply):
    client = connect()
    assert reply_to(client, not_quit) == reply
    assert reply_to(client, {"command": "subscribe", "topic": "still-open"}) == OK


# ---- the line limit (memqd takes --max-line-bytes) --------------------------------

LIMIT = 1024


def padded_send_line(topic, length):
    """A send command of exactly `length` bytes (without its "\\n")."""
    bare = json.dumps({"command": "send", "topic": topic, "msg": "", "delivery": "all"}).encode()
    padding = length - len(bare)
    assert padding >= 0
    return json.dumps({"command": "send", "topic": topic, "msg": "x" * padding, "delivery": "all"}).encode()


@pytest.mark.memqd_only
@pytest.mark.memq_broker(args=["--max-line-bytes", str(LIMIT)])
def test_a_line_of_exactly_the_limit_is_accepted(connect):
    client = connect()
    command = padded_send_line("t", LIMIT)
    assert len(command) == LIMIT
    assert reply_to(client, command) == OK
    assert reply_to(client, {"command": "subscribe", "topic": "t"}) == OK


@pytest.mark.memqd_only
@pytest.mark.memq_decision
@pytest.mark.memq_broker(args=["--max-line-bytes", str(LIMIT)])
def test_a_line_past_the_limit_gets_line_too_long_then_the_connection_closes(connect):
    client = connect()
    assert reply_to(client, padded_send_line("t", LIMIT + 1)) == LINE_TOO_LONG
    with pytest.raises(memq.ConnectionError):
        client.receive(timeout=REPLY_TIMEOUT_S)


@pytest.mark.memqd_only
@pytest.mark.memq_decision
@pytest.mark.memq_broker(args=["--max-line-bytes", str(LIMIT)])
def test_a_line_past_the_limit_is_refused_before_its_newline_arrives(connect):
    client = connect()
    client.send_raw(b"x" * (LIMIT + 1), expect_reply=True)
    assert client.next_reply(timeout=REPLY_TIMEOUT_S) == LINE_TOO_LONG
    with pytest.raises(memq.ConnectionError):
        client.receive(timeout=REPLY_TIMEOUT_S)


@pytest.mark.memqd_only
@pytest.mark.memq_decision
@pytest.mark.memq_broker(args=["--max-line-bytes", str(LIMIT)])
def test_line_too_long_comes_before_any_other_error(connect):
    client = connect()
    assert reply_to(client, b"\xff" * (LIMIT + 1)) == LINE_TOO_LONG


@pytest.mark.memqd_only
@pytest.mark.memq_decision
@pytest.mark.memq_broker(args=["--max-line-bytes", str(LIMIT)])
def test_replies_to_lines_before_a_too_long_line_are_sent_first(connect):
    client = connect()
    send_in_one_write(client, subscribe_line("t") + send_line("t", "m") + b"x" * (LIMIT + 1) + b"\n", replies=3)
    assert [client.next_reply(timeout=REPLY_TIMEOUT_S) for _ in range(3)] == [OK, OK, LINE_TOO_LONG]
    assert receive_all(client, 1) == [delivered("t", "m", 0)]
    with pytest.raises(memq.ConnectionError):
        client.receive(timeout=REPLY_TIMEOUT_S)


@pytest.mark.memqd_only
@pytest.mark.memq_decision
@pytest.mark.memq_broker(args=["--max-line-bytes", str(LIMIT)])
def test_a_connection_closed_for_a_too_long_line_leaves_its_topics(connect):
    closed, sender, late = connect(), connect(), connect()
    closed.subscribe("t")
    assert reply_to(closed, b"x" * (LIMIT + 1)) == LINE_TOO_LONG
    with pytest.raises(memq.ConnectionError):
        closed.receive(timeout=REPLY_TIMEOUT_S)
    # With no subscriber left, a "one" message is cached for the next subscriber.
    sender.send("t", "kept", delivery="one")
    late.subscribe("t")
    assert receive_all(late, 1) == [delivered("t", "kept", 0, "one")]


@pytest.mark.memqd_only
@pytest.mark.memq_decision
@pytest.mark.memq_broker(args=["--max-line-bytes", str(LIMIT)])
def test_a_too_long_line_does_not_affect_other_connections(connect):
    offender, subscriber, sender = connect(), connect(), connect()
    subscriber.subscribe("t")
    assert reply_to(offender, b"y" * (LIMIT * 4)) == LINE_TOO_LONG
    sender.send("t", "still here")
    assert receive_all(subscriber, 1) == [delivered("t", "still here", 0)]


@pytest.mark.memqd_only
@pytest.mark.memq_decision
def test_the_default_line_limit_is_one_mebibyte(connect):
    client = connect()
    assert reply_to(client, padded_send_line("t", 1024 * 1024)) == OK
    assert reply_to(client, padded_send_line("t", 1024 * 1024 + 1)) == LINE_TOO_LONG
    with pytest.raises(memq.ConnectionError):
        client.receive(timeout=REPLY_TIMEOUT_S)

