"""The cache (PROTOCOL.md, "State" and "Semantics").

Each topic keeps its last `cache_size` messages; a subscribe replays them
after its ack, oldest first, unless it says "cache": false. A send with
"cache": false is not kept. A "one" message is kept only when nobody is
subscribed, and a replay hands it to one subscriber only. Covers the
reference suite's cache behaviour, cache size and delivery semantics tests
(its broker ran with a cache of 2).
"""

import pytest

from conftest import QUIET_S, delivered, receive_all


@pytest.mark.memq_broker(cache_size=2)
def test_subscribe_with_cache_false_replays_nothing_and_with_cache_true_everything(connect):
    sender = connect()
    for i in range(2):
        sender.send("t", f"test message {i}")
    sender.close()
    without_cache = connect()
    without_cache.subscribe("t", cache=False)
    assert without_cache.receive(timeout=QUIET_S) is None
    with_cache = connect()
    with_cache.subscribe("t", cache=True)
    assert receive_all(with_cache, 2) == [delivered("t", f"test message {i}", i) for i in range(2)]
    assert with_cache.receive(timeout=QUIET_S) is None


def test_subscribe_replays_the_cache_by_default(connect):
    sender, late = connect(), connect()
    for i in range(3):
        sender.send("t", f"m{i}")
    late.subscribe("t")
    assert receive_all(late, 3) == [delivered("t", f"m{i}", i) for i in range(3)]
    assert late.receive(timeout=QUIET_S) is None


def test_a_subscribe_without_replay_still_gets_new_messages(connect):
    sender, subscriber = connect(), connect()
    sender.send("t", "old")
    subscriber.subscribe("t", cache=False)
    sender.send("t", "new")
    assert receive_all(subscriber, 1) == [delivered("t", "new", 1)]


@pytest.mark.memq_broker(cache_size=2)
def test_only_the_last_cache_size_messages_are_replayed(connect):
    sender = connect()
    for i in range(5):
        sender.send("t", f"hello{i}")
    late = connect()
    late.subscribe("t", cache=True)
    assert receive_all(late, 2) == [delivered("t", "hello3", 3), delivered("t", "hello4", 4)]
    assert late.receive(timeout=QUIET_S) is None


@pytest.mark.parametrize("cache_size", [1, 3, 10])
def test_the_cache_keeps_the_last_cache_size_messages(make_broker, cache_size):
    broker = make_broker(cache_size=cache_size)
    with broker.client() as sender, broker.client() as late:
        for i in range(cache_size * 2 + 1):
            sender.publish("t", f"m{i}")
        sender.flush()
        late.subscribe("t")
        first = cache_size + 1
        assert receive_all(late, cache_size) == [delivered("t", f"m{i}", i) for i in range(first, first + cache_size)]
        assert late.receive(timeout=QUIET_S) is None


@pytest.mark.memq_broker(cache_size=0)
def test_a_cache_size_of_zero_disables_caching(connect):
    sender, late = connect(), connect()
    sender.send("t", "m0")
    sender.send("t", "m1", delivery="one")
    late.subscribe("t")
    assert late.receive(timeout=QUIET_S) is None
    sender.send("t", "m2")
    assert receive_all(late, 1) == [delivered("t", "m2", 2)]


def test_each_topic_has_its_own_cache(connect):
    sender, late = connect(), connect()
    sender.send("t", "for t")
    sender.send("u", "for u")
    late.subscribe("u")
    assert receive_all(late, 1) == [delivered("u", "for u", 0)]
    assert late.receive(timeout=QUIET_S) is None


@pytest.mark.memq_broker(cache_size=2)
def test_caches_of_different_topics_do_not_evict_each_other(connect):
    sender, late = connect(), connect()
    sender.send("t", "t0")
    sender.send("t", "t1")
    for i in range(5):
        sender.send("u", f"u{i}")
    late.subscribe("t")
    assert receive_all(late, 2) == [delivered("t", "t0", 0), delivered("t", "t1", 1)]


def test_a_send_with_cache_false_is_delivered_but_not_cached(connect):
    subscriber, sender, late = connect(), connect(), connect()
    subscriber.subscribe("t")
    sender.send("t", "live only", cache=False)
    sender.send("t", "kept")
    assert receive_all(subscriber, 2) == [delivered("t", "live only", 0, cache=False), delivered("t", "kept", 1)]
    late.subscribe("t")
    assert receive_all(late, 1) == [delivered("t", "kept", 1)]
    assert late.receive(timeout=QUIET_S) is None


def test_a_send_with_cache_true_is_cached_and_replayed_with_its_cache_key(connect):
    sender, late = connect(), connect()
    sender.send("t", "kept", cache=True)
    late.subscribe("t")
    assert receive_all(late, 1) == [delivered("t", "kept", 0, cache=True)]


def test_the_replay_is_oldest_first_after_the_subscribe_succeeds(connect):
    sender, late = connect(), connect()
    for i in range(10):
        sender.publish("t", f"m{i}")
    sender.flush()
    late.subscribe("t")  # returns on the ack; the replay follows it
    assert [message["index"] for message in receive_all(late, 10)] == list(range(10))


def test_subscribing_again_replays_the_cache_again(connect):
    sender, subscriber = connect(), connect()
    sender.send("t", "m0")
    subscriber.subscribe("t")
    assert receive_all(subscriber, 1) == [delivered("t", "m0", 0)]
    subscriber.subscribe("t")
    assert receive_all(subscriber, 1) == [delivered("t", "m0", 0)]
    sender.send("t", "m1")
    assert receive_all(subscriber, 1) == [delivered("t", "m1", 1)]
    assert subscriber.receive(timeout=QUIET_S) is None


def test_a_replay_of_all_messages_leaves_them_for_the_next_subscriber(connect):
    sender = connect()
    sender.send("t", "m0")
    for _ in range(3):
        late = connect()
        late.subscribe("t")
        assert receive_all(late, 1) == [delivered("t", "m0", 0)]


# ---- delivery "one" and the cache -----------------------------------------------------

def test_a_one_message_without_subscribers_is_cached_for_the_first_subscriber(connect):
    sender, first = connect(), connect()
    sender.send("t", "for whoever comes", delivery="one")
    first.subscribe("t")
    assert receive_all(first, 1) == [delivered("t", "for whoever comes", 0, "one")]


def test_a_replayed_one_message_is_removed_from_the_cache(connect):
    sender, first, second = connect(), connect(), connect()
    sender.send("t", "only once", delivery="one")
    first.subscribe("t")
    assert receive_all(first, 1) == [delivered("t", "only once", 0, "one")]
    second.subscribe("t")
    assert second.receive(timeout=QUIET_S) is None
    first.unsubscribe("t")
    first.subscribe("t")
    assert first.receive(timeout=QUIET_S) is None


def test_a_one_message_delivered_to_a_subscriber_is_not_cached(connect):
    subscriber, sender, late = connect(), connect(), connect()
    subscriber.subscribe("t")
    sender.send("t", "delivered", delivery="one")
    assert receive_all(subscriber, 1) == [delivered("t", "delivered", 0, "one")]
    late.subscribe("t")
    assert late.receive(timeout=QUIET_S) is None


def test_a_one_message_with_cache_false_and_no_subscribers_is_dropped(connect):
    sender, late = connect(), connect()
    sender.send("t", "lost", delivery="one", cache=False)
    late.subscribe("t")
    assert late.receive(timeout=QUIET_S) is None


def test_a_subscribe_without_replay_leaves_one_messages_cached(connect):
    sender, no_replay, late = connect(), connect(), connect()
    sender.send("t", "waiting", delivery="one")
    no_replay.subscribe("t", cache=False)
    assert no_replay.receive(timeout=QUIET_S) is None
    no_replay.unsubscribe("t")
    late.subscribe("t")
    assert receive_all(late, 1) == [delivered("t", "waiting", 0, "one")]


def test_one_and_all_messages_are_replayed_together_in_index_order(connect):
    sender, first, second = connect(), connect(), connect()
    sender.send("t", "a0")
    sender.send("t", "o1", delivery="one")
    sender.send("t", "a2")
    sender.send("t", "o3", delivery="one")
    first.subscribe("t")
    assert receive_all(first, 4) == [delivered("t", "a0", 0), delivered("t", "o1", 1, "one"),
                                     delivered("t", "a2", 2), delivered("t", "o3", 3, "one")]
    second.subscribe("t")
    assert receive_all(second, 2) == [delivered("t", "a0", 0), delivered("t", "a2", 2)]
    assert second.receive(timeout=QUIET_S) is None


@pytest.mark.memq_broker(cache_size=2)
def test_delivery_semantics_one_messages_share_the_cache_and_are_replayed_once(connect):
    with connect() as sender:
        for i in range(5):
            sender.send("t", f"hello{i}", delivery="one" if i < 4 else "all")
    second = connect()
    second.subscribe("t", cache=True)
    assert receive_all(second, 2) == [delivered("t", "hello3", 3, "one"), delivered("t", "hello4", 4, "all")]
    assert second.receive(timeout=QUIET_S) is None
    third = connect()
    third.subscribe("t", cache=True)
    assert receive_all(third, 1) == [delivered("t", "hello4", 4, "all")]
    assert third.receive(timeout=QUIET_S) is None
