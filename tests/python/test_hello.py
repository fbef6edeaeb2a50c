"""The hello command, a memq extension (docs/protocol.md, "memq extensions").

{"command": "hello"} asks the broker who it is. memqd answers with its name
and its incarnation, drawn at each start; an aiomemq server answers it like
any unknown command, "Malformed json message", which is how a memq client
tells the two apart. The memqd answers are marked memqd_only.
"""

import re

import pytest

from conftest import MALFORMED, OK, receive_all, delivered, reply_to

HELLO = {"command": "hello"}


@pytest.mark.memqd_only
def test_hello_is_answered_with_the_broker_and_its_incarnation(connect):
    reply = reply_to(connect(), HELLO)
    assert set(reply) == {"success", "broker", "incarnation"}
    assert reply["success"] is True and reply["broker"] == "memqd"
    assert re.fullmatch(r"[0-9a-f]{16}", reply["incarnation"])


@pytest.mark.memqd_only
def test_every_connection_hears_the_same_incarnation(connect):
    assert reply_to(connect(), HELLO)["incarnation"] == reply_to(connect(), HELLO)["incarnation"]


@pytest.mark.memqd_only
def test_hello_changes_nothing_a_later_command_sees(connect):
    client, sender = connect(), connect()
    assert reply_to(client, HELLO)["success"] is True
    client.subscribe("hello-topic")
    sender.send("hello-topic", "m")
    assert receive_all(client, 1) == [delivered("hello-topic", "m", 0)]


@pytest.mark.parametrize("extra", [{"topic": "t"}, {"last_seen": 1}, {"cache": True}, {"version": 1}])
def test_hello_with_another_key_is_malformed(connect, extra):
    assert reply_to(connect(), {**HELLO, **extra}) == MALFORMED


def test_a_broker_that_answered_hello_still_answers_the_aiomemq_commands(connect):
    client = connect()
    reply_to(client, HELLO)  # memqd: its identity; aiomemq: Malformed json message
    assert reply_to(client, {"command": "subscribe", "topic": "t"}) == OK
