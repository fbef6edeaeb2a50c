"""The memq Python package itself: Client, Message, errors and the pytest plugin."""

import builtins
import itertools
import signal

import pytest

import memq
from conftest import BAD_JSON, QUIET_S, REPLY_TIMEOUT_S, delivered, wire

# ---- errors ----------------------------------------------------------------------------


def test_every_error_is_a_memq_error():
    for error in (memq.BrokerError, memq.Timeout, memq.ConnectionError, memq.ProtocolViolation):
        assert issubclass(error, memq.Error)
    assert issubclass(memq.Timeout, builtins.TimeoutError)
    assert issubclass(memq.ConnectionError, builtins.ConnectionError)


def test_a_refused_request_raises_broker_error_with_the_brokers_reason(connect):
    client = connect()
    client.send_raw(b"garbage before ", expect_reply=False)  # the next line starts with it
    with pytest.raises(memq.BrokerError) as refused:
        client.subscribe("t")
    assert refused.value.reason == BAD_JSON["reason"]
    assert BAD_JSON["reason"] in str(refused.value)


def test_the_client_works_after_a_refused_request(connect):
    client = connect()
    client.send_raw(b"garbage before ", expect_reply=False)
    with pytest.raises(memq.BrokerError):
        client.subscribe("t")
    client.subscribe("t")
    client.send("t", "m")
    assert wire(client.receive(timeout=REPLY_TIMEOUT_S)) == delivered("t", "m", 0)


@pytest.mark.memqd_only
@pytest.mark.memq_broker(args=["--max-line-bytes", "1024"])
def test_a_send_past_the_line_limit_raises_broker_error_line_too_long(connect):
    client = connect()
    with pytest.raises(memq.BrokerError) as refused:
        client.send("t", "x" * 2000)
    assert refused.value.reason == "Line too long"


def test_receive_returns_none_when_nothing_arrives_in_time(connect):
    assert connect().receive(timeout=QUIET_S) is None


def test_next_reply_raises_timeout_when_no_reply_comes(connect):
    client = connect()
    with pytest.raises(memq.Timeout):
        client.next_reply(timeout=QUIET_S)


@pytest.mark.memqd_only  # stops the broker process with SIGSTOP
def test_a_request_without_a_reply_in_time_raises_timeout(broker):
    with broker.client() as client:
        broker.process.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(memq.Timeout):
                client.subscribe("t", timeout=0.1)
        finally:
            broker.process.send_signal(signal.SIGCONT)


def test_connecting_where_no_broker_listens_raises_connection_error(make_broker):
    stopped = make_broker()
    port = stopped.port
    stopped.stop()
    with pytest.raises(memq.ConnectionError):
        memq.Client(port=port, timeout=2.0)


def test_a_closed_client_raises_connection_error(connect):
    client = connect()
    client.close()
    assert not client.connected
    with pytest.raises(memq.ConnectionError):
        client.send("t", "m")


# ---- Client ------------------------------------------------------------------------------

def test_the_client_is_a_context_manager_that_closes(broker):
    with broker.client() as client:
        assert client.connected
        client.subscribe("t")
    assert not client.connected


def test_client_options_are_kept(broker):
    with broker.client(timeout=2.5) as client:
        assert client.timeout == 2.5


def test_iterating_a_client_yields_its_messages(connect):
    client = connect()
    client.subscribe("t")
    for i in range(3):
        client.send("t", f"m{i}")
    assert [message.msg for message in itertools.islice(client, 3)] == ["m0", "m1", "m2"]


@pytest.mark.memq_decision  # needs "quit" to close the connection without a reply
def test_iteration_ends_when_the_broker_closes_the_connection(connect):
    client = connect()
    client.subscribe("t")
    client.send("t", "last")
    client.send_raw(b"quit\n", expect_reply=False)
    assert [message.msg for message in client] == ["last"]


def test_publish_buffers_and_flush_waits_for_every_ack(connect):
    subscriber, publisher = connect(), connect()
    subscriber.subscribe("t")
    for i in range(100):
        publisher.publish("t", f"m{i}")
    assert publisher.unacknowledged == 100
    publisher.flush()
    assert publisher.unacknowledged == 0
    assert [subscriber.receive(timeout=REPLY_TIMEOUT_S).index for _ in range(100)] == list(range(100))


def test_flush_raises_broker_error_for_a_refused_publish(connect):
    client = connect()
    client.send_raw(b"garbage before ", expect_reply=False)
    client.publish("t", "refused")
    client.publish("t", "accepted")
    with pytest.raises(memq.BrokerError) as refused:
        client.flush()
    assert refused.value.reason == BAD_JSON["reason"]
    client.flush()  # the tally starts afresh


def test_messages_that_arrive_during_a_request_wait_in_the_inbox(connect):
    client = connect()
    client.subscribe("t")
    client.send("t", "m0")
    client.send("t", "m1")
    assert client.inbox_size == 2
    assert [client.receive(timeout=0).msg for _ in range(2)] == ["m0", "m1"]
    assert client.inbox_size == 0


# ---- Message -----------------------------------------------------------------------------

@pytest.mark.parametrize("cache", [None, True, False], ids=["no-cache-key", "cache-true", "cache-false"])
def test_message_as_dict_is_the_delivered_object(connect, cache):
    client = connect()
    client.subscribe("t")
    client.send("t", "hello", delivery="one", cache=cache)
    message = client.receive(timeout=REPLY_TIMEOUT_S)
    assert message.as_dict() == wire(message) == delivered("t", "hello", 0, "one", cache)


def test_message_attributes(connect):
    client = connect()
    client.subscribe("t")
    client.send("t", "hello", cache=True)
    message = client.receive(timeout=REPLY_TIMEOUT_S)
    assert (message.topic, message.msg, message.index, message.delivery, message.cache) == (
        "t", "hello", 0, "all", True)
    assert "hello" in repr(message)


def test_messages_with_the_same_fields_are_equal(connect):
    first, second = connect(), connect()
    first.subscribe("t")
    second.subscribe("t")
    connect().send("t", "same")
    assert first.receive(timeout=REPLY_TIMEOUT_S) == second.receive(timeout=REPLY_TIMEOUT_S)


# ---- the pytest plugin -----------------------------------------------------------------

def test_the_broker_fixture_runs_a_broker_with_the_default_cache(broker, pytestconfig):
    assert broker.cache_size == 100
    assert broker.port > 0
    assert broker.is_memqd == (pytestconfig.getoption("--server-cmd") is None)
    with broker.client() as client:
        client.subscribe("t")


@pytest.mark.memq_broker(cache_size=3)
def test_the_memq_broker_marker_sets_the_cache_size(broker):
    assert broker.cache_size == 3
    with broker.client() as client:
        for i in range(5):
            client.send("t", f"m{i}")
        client.subscribe("t")
        assert [client.receive(timeout=REPLY_TIMEOUT_S).index for _ in range(3)] == [2, 3, 4]
        assert client.receive(timeout=QUIET_S) is None


def test_make_broker_starts_independent_brokers(make_broker):
    first, second = make_broker(), make_broker(cache_size=1)
    assert first.port != second.port
    assert second.cache_size == 1
    with first.client() as on_first, second.client() as on_second:
        on_first.send("t", "only on the first")
        on_second.subscribe("t")
        assert on_second.receive(timeout=QUIET_S) is None
