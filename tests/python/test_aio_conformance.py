"""The conformance suite through memq.aio: a representative part of it, at least
one test per protocol area (framing, errors, delivery "all" and "one", the
cache and last_seen, subscribe / unsubscribe, hello), written with the async
fixtures of memq.testing (aio_connect, aio_client) and pytest-asyncio.

Like the blocking suite it runs against memqd, and against any aiomemq-protocol
server with --server-cmd (scripts/test-python.sh runs it against
aiomemq_reference_server.py); memqd_only and memq_decision mean the same here.
"""

import json

import pytest

import memq.aio
from conftest import BAD_JSON, BAD_UTF8, MALFORMED, OK, QUIET_S, REPLY_TIMEOUT_S, delivered, line, wire

pytestmark = pytest.mark.asyncio


async def reply_to(client, command):
    """Sends one line (see conftest.line) and returns the broker's reply as a dict."""
    await client.send_raw(line(command), expect_reply=True)
    return await client.next_reply(timeout=REPLY_TIMEOUT_S)


async def receive_all(client, count):
    """The next `count` messages (each must come within REPLY_TIMEOUT_S), as wire objects."""
    received = []
    for _ in range(count):
        message = await client.receive(timeout=REPLY_TIMEOUT_S)
        assert message is not None, f"only {len(received)} of {count} messages arrived: {received}"
        received.append(wire(message))
    return received


def send_line(topic, msg, delivery="all"):
    return line({"command": "send", "topic": topic, "msg": msg, "delivery": delivery})


# ---- framing ---------------------------------------------------------------------

async def test_pipelined_commands_in_one_write_are_answered_in_order(aio_client):
    data = b"".join([
        line({"command": "subscribe", "topic": "t"}),
        send_line("t", "first"),
        b"not json\n",
        line({"command": "unsubscribe", "topic": "t"}),
    ])
    for _ in range(3):  # reserve the first three reply slots; all of data goes in the last write
        await aio_client.send_raw(b"", expect_reply=True)
    await aio_client.send_raw(data, expect_reply=True)
    assert [await aio_client.next_reply(timeout=REPLY_TIMEOUT_S) for _ in range(4)] == [OK, OK, BAD_JSON, OK]
    assert await receive_all(aio_client, 1) == [delivered("t", "first", 0)]


async def test_one_line_split_over_many_writes_is_one_command(aio_connect):
    client, other = await aio_connect(), await aio_connect()
    whole = line({"command": "subscribe", "topic": "split"})
    pieces = [whole[:5], whole[5:17], whole[17:]]
    for number, piece in enumerate(pieces, start=1):
        await client.send_raw(piece, expect_reply=number == len(pieces))
        await other.subscribe("framing-sync")  # a round trip: the broker reads each piece on its own
    assert await client.next_reply(timeout=REPLY_TIMEOUT_S) == OK


async def test_empty_and_blank_lines_get_no_reply(aio_client):
    await aio_client.send_raw(b"\n \n\t\r\n", expect_reply=False)
    assert await reply_to(aio_client, {"command": "subscribe", "topic": "t"}) == OK


# ---- errors ----------------------------------------------------------------------

async def test_invalid_utf8_is_refused(aio_client):
    assert await reply_to(aio_client, b"\xff\xfe") == BAD_UTF8


async def test_invalid_json_is_refused(aio_client):
    assert await reply_to(aio_client, b"{nope") == BAD_JSON


@pytest.mark.parametrize("raw", [b"[]", b'"send"', b'{"command": "send"}', b'{"command": "publish", "topic": "t"}'])
async def test_json_that_is_not_a_command_object_is_malformed(aio_client, raw):
    assert await reply_to(aio_client, raw) == MALFORMED


async def test_errors_do_not_close_the_connection(aio_client):
    assert await reply_to(aio_client, b"{nope") == BAD_JSON
    await aio_client.subscribe("t")
    await aio_client.send("t", "still here")
    assert await receive_all(aio_client, 1) == [delivered("t", "still here", 0)]


# ---- delivery --------------------------------------------------------------------

async def test_a_subscriber_receives_a_message_sent_to_its_topic(aio_connect):
    subscriber, sender = await aio_connect(), await aio_connect()
    await subscriber.subscribe("t")
    await sender.send("t", "hello")
    assert await receive_all(subscriber, 1) == [delivered("t", "hello", 0)]


async def subscribers_and_a_sender(aio_connect, topic, count):
    """`count` clients subscribed to `topic`, and one more to send."""
    subscribers = [await aio_connect() for _ in range(count)]
    for subscriber in subscribers:
        await subscriber.subscribe(topic)
    return subscribers, await aio_connect()


async def test_delivery_all_reaches_every_subscriber(aio_connect):
    subscribers, sender = await subscribers_and_a_sender(aio_connect, "t", 3)
    await sender.send("t", "to all")
    for subscriber in subscribers:
        assert await receive_all(subscriber, 1) == [delivered("t", "to all", 0)]


async def test_delivery_one_reaches_exactly_one_subscriber(aio_connect):
    subscribers, sender = await subscribers_and_a_sender(aio_connect, "t", 3)
    await sender.send("t", "to one", delivery="one")
    received = [await subscriber.receive(timeout=QUIET_S) for subscriber in subscribers]
    assert [wire(message) for message in received if message is not None] == [delivered("t", "to one", 0, "one")]


async def test_pipelined_publishes_arrive_in_the_order_sent_with_growing_indices(aio_connect):
    subscriber, sender = await aio_connect(), await aio_connect()
    await subscriber.subscribe("t")
    for i in range(1000):
        await sender.publish("t", f"m{i}")
    await sender.flush(timeout=REPLY_TIMEOUT_S)
    assert sender.unacknowledged == 0
    assert await receive_all(subscriber, 1000) == [delivered("t", f"m{i}", i) for i in range(1000)]


# ---- the cache and last_seen ----------------------------------------------------

async def test_subscribe_replays_the_cache_by_default(aio_connect):
    sender, late = await aio_connect(), await aio_connect()
    for i in range(3):
        await sender.send("t", f"m{i}")
    await late.subscribe("t")
    assert await receive_all(late, 3) == [delivered("t", f"m{i}", i) for i in range(3)]
    assert await late.receive(timeout=QUIET_S) is None


async def test_subscribe_with_cache_false_replays_nothing(aio_connect):
    sender, late = await aio_connect(), await aio_connect()
    await sender.send("t", "old")
    await late.subscribe("t", cache=False)
    assert await late.receive(timeout=QUIET_S) is None


@pytest.mark.memq_broker(cache_size=2)
async def test_only_the_last_cache_size_messages_are_replayed(aio_connect):
    sender, late = await aio_connect(), await aio_connect()
    for i in range(5):
        await sender.send("t", f"m{i}")
    await late.subscribe("t")
    assert await receive_all(late, 2) == [delivered("t", "m3", 3), delivered("t", "m4", 4)]
    assert await late.receive(timeout=QUIET_S) is None


async def test_a_send_with_cache_false_is_delivered_but_not_cached(aio_connect):
    subscriber, sender, late = await aio_connect(), await aio_connect(), await aio_connect()
    await subscriber.subscribe("t")
    await sender.send("t", "fleeting", cache=False)
    assert await receive_all(subscriber, 1) == [delivered("t", "fleeting", 0, cache=False)]
    await late.subscribe("t")
    assert await late.receive(timeout=QUIET_S) is None


async def test_only_messages_after_last_seen_are_replayed(aio_connect):
    sender, late = await aio_connect(), await aio_connect()
    for i in range(5):
        await sender.send("t", f"m{i}")
    await late.subscribe("t", last_seen=2)
    assert await receive_all(late, 2) == [delivered("t", "m3", 3), delivered("t", "m4", 4)]
    assert await late.receive(timeout=QUIET_S) is None


# ---- subscribe / unsubscribe -----------------------------------------------------

async def test_after_unsubscribe_nothing_more_arrives(aio_connect):
    subscriber, sender = await aio_connect(), await aio_connect()
    await subscriber.subscribe("t")
    await subscriber.unsubscribe("t")
    await sender.send("t", "unheard")
    assert await subscriber.receive(timeout=QUIET_S) is None


async def test_a_message_reaches_only_subscribers_of_its_topic(aio_connect):
    subscriber, sender = await aio_connect(), await aio_connect()
    await subscriber.subscribe("mine")
    await sender.send("other", "not mine")
    await sender.send("mine", "mine")
    assert await receive_all(subscriber, 1) == [delivered("mine", "mine", 0)]
    assert await subscriber.receive(timeout=QUIET_S) is None


# ---- hello (a memq extension) ----------------------------------------------------

@pytest.mark.memqd_only
async def test_hello_is_answered_with_the_broker_and_its_incarnation(aio_client):
    reply = await reply_to(aio_client, {"command": "hello"})
    assert reply["success"] is True and reply["broker"] == "memqd"
    assert reply["incarnation"] == await aio_client.broker_incarnation()


async def test_the_client_learns_an_incarnation_from_memqd_and_none_from_aiomemq(aio_client, broker):
    incarnation = await aio_client.broker_incarnation(timeout=REPLY_TIMEOUT_S)
    if broker.is_memqd:
        assert len(incarnation) == 16 and int(incarnation, 16) >= 0
    else:
        assert incarnation is None


async def test_hello_with_another_key_is_malformed(aio_client):
    assert await reply_to(aio_client, {"command": "hello", "topic": "t"}) == MALFORMED


async def test_a_delivered_message_is_json_of_the_senders_fields_plus_index(aio_connect):
    subscriber, sender = await aio_connect(), await aio_connect()
    await subscriber.subscribe("t")
    await sender.send("t", "ünïcødé \"quoted\"\n", delivery="one", cache=True)
    message = await subscriber.receive(timeout=REPLY_TIMEOUT_S)
    assert json.loads(message.raw) == delivered("t", "ünïcødé \"quoted\"\n", 0, "one", True)
    assert isinstance(message, memq.aio.Message)
