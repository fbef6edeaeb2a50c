"""Delivery (PROTOCOL.md, "State", "Semantics", "Delivered message").

send delivers to every subscriber ("all") or to exactly one, chosen at random
("one"), before the sender's ack; every send takes the topic's next index;
unsubscribe and disconnect take a connection out of topics. Covers the
reference suite's simple send, concurrent clients (all / one) and the
delivery half of its delivery semantics test.
"""

import pytest

from conftest import OK, QUIET_S, REPLY_TIMEOUT_S, delivered, receive_all, reply_to, wire


def test_a_subscriber_receives_a_message_sent_to_its_topic(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    sender.send("t", "hello")
    assert receive_all(subscriber, 1) == [delivered("t", "hello", 0)]
    assert subscriber.receive(timeout=QUIET_S) is None


def test_delivery_all_reaches_every_subscriber(connect):
    subscribers = [connect() for _ in range(3)]
    for subscriber in subscribers:
        subscriber.subscribe("t")
    connect().send("t", "test message", delivery="all")
    for subscriber in subscribers:
        assert receive_all(subscriber, 1) == [delivered("t", "test message", 0, "all")]
        assert subscriber.receive(timeout=QUIET_S) is None


def test_delivery_one_reaches_exactly_one_subscriber(connect):
    subscribers = [connect() for _ in range(3)]
    for subscriber in subscribers:
        subscriber.subscribe("t")
    connect().send("t", "test message", delivery="one")
    received = [subscriber.receive(timeout=QUIET_S) for subscriber in subscribers]
    assert [wire(message) for message in received if message is not None] == [
        delivered("t", "test message", 0, "one")]


def test_delivery_one_chooses_among_all_subscribers_at_random(connect):
    subscribers = [connect() for _ in range(3)]
    for subscriber in subscribers:
        subscriber.subscribe("t")
    sender = connect()
    for i in range(300):
        sender.publish("t", f"m{i}", delivery="one")
    sender.flush()
    indices = []
    for subscriber in subscribers:
        mine = []
        while (message := subscriber.receive(timeout=QUIET_S)) is not None:
            mine.append(message.index)
        assert mine == sorted(mine)
        # Uniform: about 100 each; below 50 or above 150 is a 1 in 10^8 event.
        assert 50 <= len(mine) <= 150, f"{len(mine)} of 300 went to one of 3 subscribers"
        indices += mine
    assert sorted(indices) == list(range(300))


def test_delivery_one_to_a_topic_with_one_subscriber_always_reaches_it(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    for i in range(20):
        sender.publish("t", f"m{i}", delivery="one")
    sender.flush()
    assert receive_all(subscriber, 20) == [delivered("t", f"m{i}", i, "one") for i in range(20)]


def test_the_sender_receives_its_own_message_when_subscribed(connect):
    client = connect()
    client.subscribe("t")
    client.send("t", "to myself")
    assert receive_all(client, 1) == [delivered("t", "to myself", 0)]


def test_the_sender_can_be_the_one_chosen_for_delivery_one(connect):
    client = connect()
    client.subscribe("t")
    client.send("t", "to myself", delivery="one")
    assert receive_all(client, 1) == [delivered("t", "to myself", 0, "one")]


def test_the_sender_does_not_receive_its_message_when_not_subscribed(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    sender.send("t", "m")
    assert sender.receive(timeout=QUIET_S) is None


def test_a_message_reaches_only_subscribers_of_its_topic(connect):
    on_t, on_u, sender = connect(), connect(), connect()
    on_t.subscribe("t")
    on_u.subscribe("u")
    sender.send("t", "for t")
    assert receive_all(on_t, 1) == [delivered("t", "for t", 0)]
    assert on_u.receive(timeout=QUIET_S) is None


def test_messages_from_one_sender_arrive_in_the_order_sent(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    for i in range(500):
        sender.publish("t", str(i))
    sender.flush()
    assert [message["msg"] for message in receive_all(subscriber, 500)] == [str(i) for i in range(500)]


# ---- the delivered message ----------------------------------------------------------

@pytest.mark.parametrize("delivery", ["all", "one"])
@pytest.mark.parametrize("cache", [None, True, False], ids=["no-cache-key", "cache-true", "cache-false"])
def test_a_delivered_message_is_the_senders_fields_plus_index(connect, delivery, cache):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    sender.send("t", "hello", delivery=delivery, cache=cache)
    message = subscriber.receive(timeout=REPLY_TIMEOUT_S)
    assert wire(message) == delivered("t", "hello", 0, delivery, cache)
    assert (message.topic, message.msg, message.index, message.delivery, message.cache) == (
        "t", "hello", 0, delivery, cache)


def test_deliveries_come_before_the_senders_ack(connect):
    subscribers = [connect() for _ in range(3)]
    for subscriber in subscribers:
        subscriber.subscribe("t")
    sender = connect()
    sender.send("t", "m")
    # The ack is back, so every delivery was written already: it has arrived (timeout 0).
    for subscriber in subscribers:
        message = subscriber.receive(timeout=0)
        assert message is not None and wire(message) == delivered("t", "m", 0)


def test_a_subscribed_sender_has_its_message_by_the_time_of_its_ack(connect):
    client = connect()
    client.subscribe("t")
    client.send("t", "m")
    assert client.inbox_size == 1


# ---- indices ---------------------------------------------------------------------------

def test_indices_start_at_zero_and_grow_by_one_per_send(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    for i in range(5):
        sender.send("t", f"m{i}")
    assert [message["index"] for message in receive_all(subscriber, 5)] == [0, 1, 2, 3, 4]


def test_each_topic_has_its_own_index(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    subscriber.subscribe("u")
    sender.send("t", "t0")
    sender.send("t", "t1")
    sender.send("u", "u0")
    sender.send("t", "t2")
    assert receive_all(subscriber, 4) == [
        delivered("t", "t0", 0), delivered("t", "t1", 1), delivered("u", "u0", 0), delivered("t", "t2", 2)]


def test_every_send_takes_an_index_whatever_its_delivery_cache_or_subscribers(connect):
    sender, subscriber = connect(), connect()
    sender.send("t", "all, nobody subscribed")                          # 0
    sender.send("t", "one, nobody subscribed", delivery="one")          # 1
    sender.send("t", "all, not cached", cache=False)                    # 2
    sender.send("t", "one, not cached", delivery="one", cache=False)    # 3
    subscriber.subscribe("t", cache=False)
    sender.send("t", "all, one subscriber")                             # 4
    sender.send("t", "one, one subscriber", delivery="one")             # 5
    sender.send("t", "one, not cached", delivery="one", cache=False)    # 6
    assert [message["index"] for message in receive_all(subscriber, 3)] == [4, 5, 6]


def test_the_index_never_goes_back_when_everyone_leaves(connect):
    first = connect()
    first.subscribe("t")
    first.send("t", "m0")
    first.send("t", "m1")
    first.close()
    second = connect()
    second.subscribe("t", cache=False)
    second.send("t", "m2")
    assert receive_all(second, 1) == [delivered("t", "m2", 2)]


# ---- unsubscribe, subscribing twice, disconnect -----------------------------------------

def test_after_unsubscribe_no_more_messages_arrive(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    sender.send("t", "before")
    subscriber.unsubscribe("t")
    sender.send("t", "after")
    assert receive_all(subscriber, 1) == [delivered("t", "before", 0)]
    assert subscriber.receive(timeout=QUIET_S) is None


def test_unsubscribe_leaves_only_that_topic(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    subscriber.subscribe("u")
    subscriber.unsubscribe("t")
    sender.send("t", "for t")
    sender.send("u", "for u")
    assert receive_all(subscriber, 1) == [delivered("u", "for u", 0)]
    assert subscriber.receive(timeout=QUIET_S) is None


@pytest.mark.memq_decision
def test_unsubscribe_from_a_topic_never_subscribed_succeeds(connect):
    assert reply_to(connect(), {"command": "unsubscribe", "topic": "never-seen"}) == OK


@pytest.mark.memq_decision
def test_unsubscribe_from_a_topic_others_use_but_not_this_connection_succeeds(connect):
    other, client = connect(), connect()
    other.subscribe("t")
    client.unsubscribe("t")


@pytest.mark.memq_decision
def test_unsubscribe_twice_succeeds(connect):
    client = connect()
    client.subscribe("t")
    client.unsubscribe("t")
    client.unsubscribe("t")


def test_subscribing_twice_is_the_same_as_once(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t", cache=False)
    subscriber.subscribe("t", cache=False)
    sender.send("t", "m")
    assert receive_all(subscriber, 1) == [delivered("t", "m", 0)]
    assert subscriber.receive(timeout=QUIET_S) is None


def test_one_unsubscribe_undoes_subscribing_twice(connect):
    subscriber, sender = connect(), connect()
    subscriber.subscribe("t")
    subscriber.subscribe("t")
    subscriber.unsubscribe("t")
    sender.send("t", "m")
    assert subscriber.receive(timeout=QUIET_S) is None


def test_a_disconnected_subscriber_leaves_every_topic(connect):
    leaver, sender, late = connect(), connect(), connect()
    leaver.subscribe("t")
    leaver.subscribe("u")
    leaver.close()
    # With no subscriber left, a "one" message is cached instead of delivered.
    sender.send("t", "kept for t", delivery="one")
    sender.send("u", "kept for u", delivery="one")
    late.subscribe("t")
    late.subscribe("u")
    assert receive_all(late, 2) == [delivered("t", "kept for t", 0, "one"), delivered("u", "kept for u", 0, "one")]


def test_delivery_one_skips_a_disconnected_subscriber(connect):
    leaver, stayer, sender = connect(), connect(), connect()
    leaver.subscribe("t")
    stayer.subscribe("t")
    leaver.close()
    # A round trip after the close: the broker handles the leaver's EOF in the
    # same turn as this request or before it, so before the sends below.
    sender.send("elsewhere", "after the close")
    for i in range(20):
        sender.publish("t", f"m{i}", delivery="one")
    sender.flush()
    assert receive_all(stayer, 20) == [delivered("t", f"m{i}", i, "one") for i in range(20)]


def test_a_disconnect_changes_nothing_else(connect):
    leaver, sender, late = connect(), connect(), connect()
    leaver.subscribe("t")
    sender.send("t", "m0")
    leaver.close()
    sender.send("t", "m1")
    late.subscribe("t")
    assert receive_all(late, 2) == [delivered("t", "m0", 0), delivered("t", "m1", 1)]

