"""The inbox bound of memq.Client and memq.aio.Client (max_inbox_messages):
at the bound the client reads nothing more from the broker, a call that needs
to read further raises memq.InboxFull at once, taking a message lets the next
one in; and, against memqd with a small --max-pending-bytes, a full inbox ends
in a slow-consumer close, a resume and a counted gap, never a silent loss.

Each test has N messages queued for a subscriber ahead of the reply to its
own request, with a bound of BOUND: N = BOUND - 1, BOUND and BOUND + 1.
"""

import time

import pytest

import memq
import memq.aio
from conftest import REPLY_TIMEOUT_S

BOUND = 4
# As tests/client/resume_test.cpp: a flood far past the kernel's socket
# buffers, a pending-bytes limit far past the publisher's acks.
FLOOD_MESSAGES = 100_000
FLOOD_PAYLOAD = "p" * 200
SLOW_CONSUMER_ARGS = ("--max-pending-bytes", str(2 * 1024 * 1024))
FLOOD_CACHE_SIZE = 100


def send_ahead(broker, count, topic="t"):
    """`count` messages on `topic`, each acknowledged (so queued for every subscriber first)."""
    with broker.client() as sender:
        for n in range(count):
            sender.send(topic, str(n))


def flood(broker, topic):
    with broker.client() as publisher:
        for _ in range(FLOOD_MESSAGES):
            publisher.publish(topic, FLOOD_PAYLOAD)
        publisher.flush(timeout=60)


def check_one_gap_and_nothing_else(indices, gaps):
    """indices run 0 .. the end with exactly the reported gap missing."""
    assert len(gaps) == 1, gaps
    _topic, expected, got = gaps[0]
    assert got == FLOOD_MESSAGES - FLOOD_CACHE_SIZE, "resumed at the oldest message still cached"
    assert indices == list(range(expected)) + list(range(got, FLOOD_MESSAGES))


# ---- memq.Client ------------------------------------------------------------------

def test_blocking_one_below_the_bound_the_reply_behind_the_messages_is_read(broker):
    with broker.client(max_inbox_messages=BOUND) as subscriber:
        subscriber.subscribe("t")
        send_ahead(broker, BOUND - 1)
        subscriber.send("u", "x")
        assert subscriber.inbox_size == BOUND - 1


def test_blocking_exactly_the_bound_fills_the_inbox_and_the_reply_behind_it_fails_fast(broker):
    with broker.client(max_inbox_messages=BOUND) as subscriber:
        subscriber.subscribe("t")
        send_ahead(broker, BOUND)
        start = time.monotonic()
        with pytest.raises(memq.InboxFull):
            subscriber.send("u", "x", timeout=REPLY_TIMEOUT_S)
        assert time.monotonic() - start < REPLY_TIMEOUT_S / 5, "at once, not at the timeout"
        assert subscriber.inbox_size == BOUND
        assert [subscriber.receive(timeout=REPLY_TIMEOUT_S).index for _ in range(BOUND)] == list(range(BOUND))


def test_blocking_one_above_the_bound_the_last_message_waits_until_one_is_taken(broker):
    with broker.client(max_inbox_messages=BOUND) as subscriber:
        subscriber.subscribe("t")
        send_ahead(broker, BOUND + 1)
        with pytest.raises(memq.InboxFull):
            subscriber.send("u", "x")
        assert subscriber.inbox_size == BOUND
        assert subscriber.receive(timeout=REPLY_TIMEOUT_S).index == 0
        assert subscriber.inbox_size == BOUND, "taking one let the last one in"
        assert [subscriber.receive(timeout=REPLY_TIMEOUT_S).index for _ in range(BOUND)] == list(range(1, BOUND + 1))


def test_blocking_publish_while_full_raises_inbox_full_naming_the_bound(broker):
    with broker.client(max_inbox_messages=BOUND) as subscriber:
        subscriber.subscribe("t")
        send_ahead(broker, BOUND)
        with pytest.raises(memq.InboxFull):
            subscriber.send("u", "x")
        with pytest.raises(memq.InboxFull, match=rf"max_inbox_messages={BOUND}\).*drain it with receive\(\)"):
            subscriber.publish("u", "y")
        assert subscriber.unacknowledged == 0, "the refused publish was not sent"


def test_blocking_inbox_full_is_a_memq_error():
    assert issubclass(memq.InboxFull, memq.Error)


def test_blocking_a_bound_below_one_is_refused(broker):
    with pytest.raises(ValueError, match="max_inbox_messages"):
        broker.client(max_inbox_messages=0)


@pytest.mark.memqd_only
@pytest.mark.memq_broker(cache_size=FLOOD_CACHE_SIZE, args=SLOW_CONSUMER_ARGS)
def test_blocking_a_full_inbox_ends_in_a_slow_consumer_close_and_a_counted_gap(broker):
    with broker.client(max_inbox_messages=2, reconnect=True) as subscriber:
        subscriber.subscribe("flood")
        flood(broker, "flood")
        with pytest.raises(memq.InboxFull):
            subscriber.send("other", "x")
        indices = []
        while not indices or indices[-1] < FLOOD_MESSAGES - 1:
            message = subscriber.receive(timeout=REPLY_TIMEOUT_S)
            assert message is not None, f"stalled after {len(indices)} messages"
            indices.append(message.index)
        assert subscriber.reconnect_count >= 1, "the broker never closed the subscriber"
        check_one_gap_and_nothing_else(indices, subscriber.take_gaps())


# ---- memq.aio.Client --------------------------------------------------------------

@pytest.mark.asyncio
async def test_aio_one_below_the_bound_reading_goes_on(broker, aio_connect):
    subscriber = await aio_connect(max_inbox_messages=BOUND)
    await subscriber.subscribe("t")
    send_ahead(broker, BOUND - 1)
    await subscriber.send("u", "x")
    assert subscriber.inbox_size == BOUND - 1
    assert not subscriber.reading_paused


@pytest.mark.asyncio
async def test_aio_exactly_the_bound_pauses_reading_and_the_awaited_reply_fails_fast(broker, aio_connect):
    subscriber = await aio_connect(max_inbox_messages=BOUND)
    await subscriber.subscribe("t")
    send_ahead(broker, BOUND)
    start = time.monotonic()
    with pytest.raises(memq.InboxFull):
        await subscriber.send("u", "x", timeout=REPLY_TIMEOUT_S)
    assert time.monotonic() - start < REPLY_TIMEOUT_S / 5, "at once, not at the timeout"
    assert subscriber.reading_paused
    assert subscriber.inbox_size == BOUND


@pytest.mark.asyncio
async def test_aio_one_above_the_bound_the_last_message_waits_until_one_is_taken(broker, aio_connect):
    subscriber = await aio_connect(max_inbox_messages=BOUND)
    await subscriber.subscribe("t")
    send_ahead(broker, BOUND + 1)
    with pytest.raises(memq.InboxFull):
        await subscriber.send("u", "x")
    assert subscriber.inbox_size == BOUND
    assert (await subscriber.receive(timeout=REPLY_TIMEOUT_S)).index == 0
    assert subscriber.inbox_size == BOUND, "taking one let the last one in"
    indices = [(await subscriber.receive(timeout=REPLY_TIMEOUT_S)).index for _ in range(BOUND)]
    assert indices == list(range(1, BOUND + 1))


@pytest.mark.asyncio
async def test_aio_draining_resumes_reading_and_the_forgotten_reply_is_ignored(broker, aio_connect):
    subscriber = await aio_connect(max_inbox_messages=BOUND)
    await subscriber.subscribe("t")
    send_ahead(broker, BOUND)
    with pytest.raises(memq.InboxFull):
        await subscriber.send("u", "x")
    for _ in range(BOUND):
        await subscriber.receive(timeout=REPLY_TIMEOUT_S)
    assert not subscriber.reading_paused
    await subscriber.send("u", "again")  # answered by its own ack, not the forgotten one
    await subscriber.flush()


@pytest.mark.asyncio
async def test_aio_calls_that_would_read_further_raise_inbox_full_while_paused(broker, aio_connect):
    subscriber = await aio_connect(max_inbox_messages=BOUND)
    await subscriber.subscribe("t")
    send_ahead(broker, BOUND)
    with pytest.raises(memq.InboxFull):
        await subscriber.send("u", "x")  # fills it
    with pytest.raises(memq.InboxFull, match=rf"max_inbox_messages={BOUND}\).*drain it with receive\(\)"):
        await subscriber.publish("u", "y")
    with pytest.raises(memq.InboxFull):
        await subscriber.subscribe("v")
    with pytest.raises(memq.InboxFull):
        await subscriber.flush()
    assert subscriber.unacknowledged == 0, "the refused publish was not sent"


@pytest.mark.asyncio
async def test_aio_messages_waiting_for_a_callback_count_toward_the_bound(broker, aio_connect):
    subscriber = await aio_connect(max_inbox_messages=BOUND)
    taken = []
    release = None

    async def slow(message):
        taken.append(message.index)
        await release

    import asyncio
    release = asyncio.get_running_loop().create_future()
    await subscriber.subscribe("t", cb=slow)
    send_ahead(broker, BOUND + 2)  # one held by the callback, BOUND queued for it, one unread
    with pytest.raises(memq.InboxFull):
        await subscriber.send("u", "x")
    assert taken == [0]
    release.set_result(None)
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while len(taken) < BOUND + 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert taken == list(range(BOUND + 2))


def test_aio_a_bound_below_one_is_refused():
    with pytest.raises(ValueError, match="max_inbox_messages"):
        memq.aio.Client(max_inbox_messages=0)


@pytest.mark.asyncio
@pytest.mark.memqd_only
@pytest.mark.memq_broker(cache_size=FLOOD_CACHE_SIZE, args=SLOW_CONSUMER_ARGS)
async def test_aio_a_full_inbox_ends_in_a_slow_consumer_close_and_a_counted_gap(broker, aio_connect):
    subscriber = await aio_connect(max_inbox_messages=2, reconnect=True)
    await subscriber.subscribe("flood")
    flood(broker, "flood")
    with pytest.raises(memq.InboxFull):
        await subscriber.send("other", "x")
    indices = []
    while not indices or indices[-1] < FLOOD_MESSAGES - 1:
        message = await subscriber.receive(timeout=REPLY_TIMEOUT_S)
        assert message is not None, f"stalled after {len(indices)} messages"
        indices.append(message.index)
    assert subscriber.reconnect_count >= 1, "the broker never closed the subscriber"
    check_one_gap_and_nothing_else(indices, subscriber.take_gaps())
