"""memq.aio.Client as its users meet it: connecting and closing, requests and
their errors, pipelined publish with its backpressure and flush, receive and
``async for``, per-topic callbacks, cancellation, resume across a broker
restart (Reset), TLS options, and the engine's own limits (memq._memq.ClientCore).

Where a test needs a server that misbehaves on purpose (one that never reads,
never answers, or hangs up), it runs a small asyncio server in the test's own
event loop, on a free loopback port.
"""

import ast
import asyncio
import inspect
import pydoc
import signal
import socket
import ssl
import sys
from pathlib import Path

import pytest

import memq
import memq.aio
from memq._memq import ClientCore
from memq.testing import start_broker

from aio_relay import Relay
from conftest import QUIET_S, REPLY_TIMEOUT_S, delivered, wire

REFERENCE_SERVER = Path(__file__).with_name("aiomemq_reference_server.py")
ACK = b'{"success": true}\n'
MALFORMED_LINE = b'{"success": false, "reason": "Malformed json message"}\n'


async def start_fake_server(handler):
    """An asyncio server on a free loopback port running handler(reader, writer); returns (server, port)."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def receive_texts(client, count):
    texts = []
    for _ in range(count):
        message = await client.receive(timeout=REPLY_TIMEOUT_S)
        assert message is not None, f"only {len(texts)} of {count} messages arrived: {texts}"
        texts.append(message.msg)
    return texts


# ---- connecting and closing ------------------------------------------------------

@pytest.mark.asyncio
async def test_connecting_where_no_broker_listens_raises_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(memq.ConnectionError, match=f"cannot connect to 127.0.0.1:{port}"):
        await memq.aio.connect(port=port)


@pytest.mark.asyncio
async def test_async_with_connects_and_closes(broker):
    async with memq.aio.Client(port=broker.port) as client:
        assert client.connected
    assert not client.connected


@pytest.mark.asyncio
async def test_a_closed_client_raises_connection_error_and_keeps_its_messages(aio_connect):
    client, sender = await aio_connect(), await aio_connect()
    await client.subscribe("t")
    await sender.send("t", "kept")
    await client.send("sync", "x")  # the delivery came before this ack
    await client.close()
    assert (await client.receive(timeout=0)).msg == "kept"
    with pytest.raises(memq.ConnectionError):
        await client.receive(timeout=0)
    with pytest.raises(memq.ConnectionError):
        await client.send("t", "after close")


@pytest.mark.asyncio
async def test_closing_twice_is_harmless(aio_client):
    await aio_client.close()
    await aio_client.close()
    assert not aio_client.connected


@pytest.mark.asyncio
async def test_connecting_twice_raises_error(aio_client):
    with pytest.raises(memq.Error, match="already connected"):
        await aio_client.connect()


@pytest.mark.asyncio
async def test_client_options_are_kept_and_shown(broker):
    client = memq.aio.Client(port=broker.port, timeout=2.5)
    assert client.timeout == 2.5
    assert repr(client) == f"<memq.aio.Client host='127.0.0.1' port={broker.port} timeout=2.5>"


@pytest.mark.asyncio
@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf"), "1"])
async def test_a_timeout_that_is_not_a_finite_number_of_seconds_is_refused(timeout):
    with pytest.raises(ValueError, match="timeout must be a finite number >= 0"):
        memq.aio.Client(timeout=timeout)


@pytest.mark.asyncio
async def test_a_call_before_connect_raises_connection_error():
    with pytest.raises(memq.ConnectionError, match="await connect"):
        await memq.aio.Client().send("t", "m")


# ---- requests and their errors ---------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.memqd_only
@pytest.mark.memq_broker(args=("--max-topic-bytes", "8"))
async def test_a_refused_request_raises_broker_error_with_the_brokers_reason(aio_client):
    with pytest.raises(memq.BrokerError) as refused:
        await aio_client.send("a-topic-too-long", "m")
    assert refused.value.reason == "Topic too long"
    await aio_client.send("short", "the client works after a refusal")


@pytest.mark.asyncio
async def test_a_request_without_a_reply_in_time_raises_timeout_and_the_client_stays_usable():
    answer = asyncio.Event()

    async def late_server(reader, writer):
        await reader.readline()  # hello, answered as an aiomemq server does
        writer.write(MALFORMED_LINE)
        await reader.readline()  # the send that times out
        await answer.wait()
        writer.write(ACK)  # its late reply, then the reply of the next request
        await reader.readline()
        writer.write(ACK)
        await writer.drain()
        await reader.read()
        writer.close()

    server, port = await start_fake_server(late_server)
    async with server, memq.aio.Client(port=port, timeout=QUIET_S) as client:
        with pytest.raises(memq.Timeout, match="send: no reply"):
            await client.send("t", "m")
        answer.set()
        await client.send("t", "next", timeout=REPLY_TIMEOUT_S)  # its own reply, not the late one
        assert client.unacknowledged == 0


@pytest.mark.asyncio
async def test_receive_returns_none_when_nothing_arrives_in_time(aio_client):
    assert await aio_client.receive(timeout=QUIET_S) is None
    assert await aio_client.receive(timeout=0) is None


# ---- cancellation ----------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_cancelled_receive_takes_no_message(aio_connect):
    client, sender = await aio_connect(), await aio_connect()
    await client.subscribe("t")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.receive(timeout=None), QUIET_S)
    await sender.send("t", "for the next receive")
    assert await receive_texts(client, 1) == ["for the next receive"]


@pytest.mark.asyncio
async def test_a_request_cancelled_while_waiting_for_its_reply_leaves_the_client_usable(aio_connect):
    client, sender = await aio_connect(), await aio_connect()
    request = asyncio.ensure_future(client.subscribe("t"))
    await asyncio.sleep(0)  # one loop step: the subscribe is written and waits for its ack
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await client.send("t", "mine")  # its ack is its own, not the subscribe's late one
    await sender.send("t", "from the sender")
    assert await receive_texts(client, 2) == ["mine", "from the sender"]


@pytest.mark.asyncio
async def test_a_cancelled_async_for_leaves_the_client_usable(aio_connect):
    client, sender = await aio_connect(), await aio_connect()
    await client.subscribe("t")

    async def first_message():
        async for message in client:
            return message.msg

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(first_message(), QUIET_S)
    await sender.send("t", "later")
    assert await asyncio.wait_for(first_message(), REPLY_TIMEOUT_S) == "later"


# ---- async for -------------------------------------------------------------------

@pytest.mark.asyncio
async def test_async_for_yields_messages_in_order_and_ends_when_the_broker_closes(broker):
    client = await broker.aio_client()
    await client.subscribe("t")
    async with await broker.aio_client() as sender:
        for i in range(3):
            await sender.send("t", f"m{i}")
        await client.send("sync", "x")  # every delivery came before this ack
    broker.stop()
    assert [message.msg async for message in client] == ["m0", "m1", "m2"]
    await client.close()


# ---- publish, backpressure, flush ------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.memqd_only
@pytest.mark.memq_broker(args=("--max-topic-bytes", "8"))
async def test_flush_raises_broker_error_for_a_refused_publish(aio_client):
    await aio_client.publish("ok", "m")
    await aio_client.publish("a-topic-too-long", "m")
    with pytest.raises(memq.BrokerError) as refused:
        await aio_client.flush()
    assert refused.value.reason == "Topic too long"
    await aio_client.flush()  # reported once


@pytest.mark.asyncio
async def test_flush_raises_connection_error_for_publishes_lost_with_the_connection():
    async def hanging_up_server(reader, writer):
        await reader.readline()  # hello
        await reader.readline()  # the first publish: then hang up, answering nothing
        writer.close()

    server, port = await start_fake_server(hanging_up_server)
    async with server:
        client = await memq.aio.connect(port=port)
        for i in range(3):
            await client.publish("t", f"m{i}")
        with pytest.raises(memq.ConnectionError, match="3 publishes were lost"):
            await client.flush(timeout=REPLY_TIMEOUT_S)
        await client.close()


class StalledPublisher:
    """A client publishing 1000-byte messages to a server that reads nothing
    until start_reading is set, stepped until its publish waits for room."""

    COUNT = 40_000  # 40 MB: more than the kernel's socket buffers and the high mark together

    def __init__(self):
        self.start_reading = asyncio.Event()
        self.published = 0
        self.client = self.task = self._server = self._served = None

    async def __aenter__(self):
        served = self._served = asyncio.get_running_loop().create_future()

        async def slow_server(reader, writer):
            await self.start_reading.wait()
            while await reader.read(1 << 20):
                pass
            writer.close()
            served.set_result(None)

        self._server, port = await start_fake_server(slow_server)
        self.client = await memq.aio.connect(port=port)
        self.task = asyncio.ensure_future(self._publish_all())
        while not self.client.writing_paused and not self.task.done():
            await asyncio.sleep(0)  # each step lets the publisher run to its next wait
        assert self.client.writing_paused and not self.task.done()
        for _ in range(10):  # the publish that filled the buffer returns; the next one waits
            await asyncio.sleep(0)
        return self

    async def _publish_all(self):
        for _ in range(self.COUNT):
            await self.client.publish("t", "x" * 1000)
            self.published += 1

    async def __aexit__(self, *exc_info):
        self.task.cancel()
        await self.client.close()
        self.start_reading.set()
        await asyncio.wait_for(self._served, REPLY_TIMEOUT_S)  # the server read to the end
        self._server.close()
        await self._server.wait_closed()


@pytest.mark.asyncio
async def test_publish_waits_while_the_write_buffer_is_past_its_high_mark():
    async with StalledPublisher() as stalled:
        stalled_at = stalled.published
        for _ in range(100):
            await asyncio.sleep(0)
        assert stalled.published == stalled_at
        stalled.start_reading.set()
        await asyncio.wait_for(stalled.task, REPLY_TIMEOUT_S)
        assert stalled.published == StalledPublisher.COUNT and not stalled.client.writing_paused


@pytest.mark.asyncio
async def test_a_publish_cancelled_while_waiting_for_room_sends_nothing_and_leaves_the_client_usable():
    async with StalledPublisher() as stalled:
        stalled.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stalled.task
        stalled.start_reading.set()
        await asyncio.wait_for(stalled.client.publish("t", "after"), REPLY_TIMEOUT_S)
        assert stalled.client.unacknowledged == stalled.published + 1


@pytest.mark.asyncio
async def test_a_publish_that_finds_no_room_within_the_publish_timeout_raises_timeout(monkeypatch):
    async with StalledPublisher() as stalled:
        monkeypatch.setattr(memq.aio, "PUBLISH_TIMEOUT_S", QUIET_S)
        with pytest.raises(memq.Timeout, match="publish: no room"):
            await stalled.client.publish("t", "no room")


# ---- per-topic callbacks ---------------------------------------------------------

@pytest.mark.asyncio
async def test_a_coroutine_callback_gets_its_topics_messages_in_order_and_the_inbox_the_rest(aio_connect):
    client, sender = await aio_connect(), await aio_connect()
    heard, all_heard = [], asyncio.Event()

    async def on_message(message):
        heard.append(message.msg)
        if len(heard) == 3:
            all_heard.set()

    await client.subscribe("called", cb=on_message)
    await client.subscribe("inboxed")
    for i in range(3):
        await sender.send("called", f"c{i}")
    await sender.send("inboxed", "i0")
    await asyncio.wait_for(all_heard.wait(), REPLY_TIMEOUT_S)
    assert heard == ["c0", "c1", "c2"]
    assert await receive_texts(client, 1) == ["i0"]


@pytest.mark.asyncio
async def test_a_callback_that_raises_is_reported_to_the_loop_and_keeps_its_subscription(aio_connect):
    client, sender = await aio_connect(), await aio_connect()
    loop = asyncio.get_running_loop()
    reported, heard = [], asyncio.Event()
    loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))

    def on_message(message):
        if message.msg == "bad":
            raise RuntimeError("callback failed")
        heard.set()

    await client.subscribe("t", cb=on_message)
    await sender.send("t", "bad")
    await sender.send("t", "good")
    await asyncio.wait_for(heard.wait(), REPLY_TIMEOUT_S)
    assert [str(error) for error in reported] == ["callback failed"]


@pytest.mark.asyncio
async def test_after_unsubscribe_the_callback_is_not_called(aio_connect):
    client, sender = await aio_connect(), await aio_connect()
    heard = []
    await client.subscribe("t", cb=heard.append)
    await client.unsubscribe("t")
    await sender.send("t", "unheard")
    await client.subscribe("sync")
    await sender.send("sync", "x")
    assert await receive_texts(client, 1) == ["x"]
    assert heard == []


# ---- resume across a restart -----------------------------------------------------

SERVERS = {
    "memqd": None,
    "aiomemq": f"{sys.executable} {REFERENCE_SERVER} {{port}} {{cache_size}}",
}


@pytest.mark.asyncio
@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
async def test_a_resuming_subscriber_gets_every_message_sent_after_a_restart_and_a_reset(server, signum):
    broker = start_broker(server_cmd=SERVERS[server])
    try:
        resets_called = []

        async def on_reset(reset):
            resets_called.append(reset)

        subscriber = await broker.aio_client(reconnect=True, timeout=REPLY_TIMEOUT_S, on_reset=on_reset)
        await subscriber.subscribe("t")
        async with await broker.aio_client() as sender:
            for i in range(5):
                await sender.send("t", f"before{i}")
        assert await receive_texts(subscriber, 5) == [f"before{i}" for i in range(5)]
        broker.restart(signum)
        while subscriber.reconnect_count == 0 or subscriber.connected is False:
            assert await subscriber.receive(timeout=QUIET_S) is None  # waiting for the resume
        await subscriber.subscribe("sync")  # answered after the resubscribes: the resume is done
        async with await broker.aio_client() as sender:
            for i in range(3):
                await sender.send("t", f"after{i}")
        assert await receive_texts(subscriber, 3) == [f"after{i}" for i in range(3)]
        assert subscriber.take_resets() == [memq.Reset("t", 4)]
        assert subscriber.reset_count == 1 and resets_called == [memq.Reset("t", 4)]
        assert subscriber.gap_count == 0
        await subscriber.close()
    finally:
        broker.stop()


@pytest.mark.asyncio
@pytest.mark.memq_broker(cache_size=2)
async def test_a_subscriber_resumed_by_the_same_broker_reports_what_its_cache_no_longer_had_as_a_gap(broker):
    async with Relay(broker.port) as relay, await broker.aio_client() as sender:
        subscriber = await memq.aio.connect(port=relay.port, reconnect=True, timeout=REPLY_TIMEOUT_S)
        await subscriber.subscribe("t")
        await sender.send("t", "m0")
        assert await receive_texts(subscriber, 1) == ["m0"]
        relay.gate.clear()  # the reconnect waits at the relay until the messages below are sent
        relay.cut()
        for i in range(1, 6):
            await sender.send("t", f"m{i}")  # the cache keeps m4 and m5
        relay.gate.set()
        assert await receive_texts(subscriber, 2) == ["m4", "m5"]
        assert subscriber.take_gaps() == [("t", 1, 4)]
        assert (subscriber.gap_count, subscriber.reset_count, subscriber.reconnect_count) == (1, 0, 1)
        await subscriber.close()


@pytest.mark.asyncio
async def test_on_reset_must_be_callable():
    with pytest.raises(TypeError, match="on_reset must be callable"):
        memq.aio.Client(on_reset="not callable")


# ---- TLS options -----------------------------------------------------------------

def test_without_tls_there_is_no_ssl_context():
    assert memq.aio.tls_context() is None


def test_tls_true_verifies_the_brokers_certificate_and_name():
    context = memq.aio.tls_context(tls=True)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_ready_ssl_context_is_used_as_it_is():
    context = ssl.create_default_context()
    assert memq.aio.tls_context(tls=context) is context


@pytest.mark.parametrize("options", [{"tls_ca": "ca.pem"}, {"tls_cert": "c.pem"}, {"tls_key": "k.pem"}])
def test_tls_files_without_tls_are_refused(options):
    with pytest.raises(ValueError, match="need tls=True"):
        memq.aio.tls_context(**options)


def test_tls_options_are_keyword_only():
    with pytest.raises(TypeError):
        memq.aio.Client("127.0.0.1", 7000, 10.0, False, None, True)


def test_a_key_without_a_certificate_is_refused():
    with pytest.raises(ValueError, match="tls_key needs tls_cert"):
        memq.aio.tls_context(tls=True, tls_key="k.pem")


def test_a_missing_ca_file_is_an_error_at_once(tmp_path):
    with pytest.raises(FileNotFoundError):
        memq.aio.Client(tls=True, tls_ca=str(tmp_path / "missing.pem"))


def test_a_server_name_without_tls_is_refused():
    with pytest.raises(ValueError, match="tls_server_name need tls=True"):
        memq.aio.Client(tls_server_name="broker.example")


def test_tls_must_be_a_bool_or_a_context():
    with pytest.raises(TypeError, match="tls must be"):
        memq.aio.tls_context(tls="yes")


@pytest.mark.asyncio
async def test_a_tls_client_cannot_connect_to_a_plain_text_broker(broker):
    with pytest.raises(memq.ConnectionError, match="cannot connect"):
        await memq.aio.connect(port=broker.port, tls=True, timeout=REPLY_TIMEOUT_S)


# ---- the engine's limits (memq._memq.ClientCore) ---------------------------------

WRITE_NOW, WINDOW_FULL = 1, 2


def test_publish_says_window_full_at_the_window_and_not_one_below():
    core = ClientCore(publish_window=3)
    assert [core.publish("t", "m", "all", None) & WINDOW_FULL for _ in range(3)] == [0, 0, WINDOW_FULL]
    assert core.window_full and core.publishes_outstanding == 3


def test_an_ack_below_the_window_makes_room():
    core = ClientCore(publish_window=3)
    for _ in range(4):  # one above the window
        core.publish("t", "m", "all", None)
    core.feed(ACK * 1)
    assert core.window_full  # 3 unanswered: still at the window
    core.feed(ACK)
    assert not core.window_full and core.publishes_outstanding == 2


def test_publish_says_write_now_once_the_output_reaches_the_batch():
    line_bytes = len(b'{"command": "send", "topic": "t", "msg": "m", "delivery": "all"}\n')
    core = ClientCore(write_batch_bytes=3 * line_bytes)
    assert [core.publish("t", "m", "all", None) & WRITE_NOW for _ in range(4)] == [0, 0, WRITE_NOW, WRITE_NOW]
    assert len(core.take_output()) == 4 * line_bytes
    assert core.publish("t", "m", "all", None) & WRITE_NOW == 0


def test_feed_decodes_every_message_of_a_chunk_in_one_list_and_keeps_the_replies_as_events():
    core = ClientCore()
    subscribe_id = core.subscribe("t")
    sent = [delivered("t", f"m{i}", i) for i in range(3)]
    chunk = ACK + b"".join(memq.Message("t", f"m{i}", i).raw.encode() + b"\n" for i in range(3))
    messages = core.feed(chunk[:7]) + core.feed(chunk[7:])  # cut anywhere
    assert [wire(message) for message in messages] == sent
    assert core.take_events() == [("ack", subscribe_id, "subscribe", "")]


def test_a_publish_lost_with_the_connection_is_counted_not_returned():
    core = ClientCore()
    core.publish("t", "m", "all", None)
    send_id = core.send("t", "awaited")
    assert core.reset() == [(send_id, "send")]
    assert core.take_publish_problems() == (1, None)
    assert core.publishes_outstanding == 0


def test_the_first_refused_publish_is_kept_for_flush():
    core = ClientCore()
    for _ in range(2):
        core.publish("t", "m", "all", None)
    core.feed(b'{"success": false, "reason": "first"}\n{"success": false, "reason": "second"}\n')
    assert core.take_publish_problems() == (0, ("failure", "first"))
    assert core.take_publish_problems() == (0, None)


@pytest.mark.parametrize("bad", [{"delivery": "some"}, {"cache": "yes"}, {"topic": 5}])
def test_publish_refuses_bad_arguments(bad):
    arguments = {"topic": "t", "msg": "m", "delivery": "all", "cache": None, **bad}
    with pytest.raises((ValueError, TypeError)):
        ClientCore().publish(arguments["topic"], arguments["msg"], arguments["delivery"], arguments["cache"])


# ---- documentation and stubs -----------------------------------------------------

def test_help_shows_the_docstrings():
    text = pydoc.render_doc(memq.aio.Client, renderer=pydoc.plaintext)
    assert "Sends one message without waiting for its ack (pipelined)." in text
    assert "receive(self, timeout=None)" in text and "The next message (a memq.Message), or None" in text
    assert "The memq protocol engine without IO" in pydoc.render_doc(ClientCore, renderer=pydoc.plaintext)


def test_the_stubs_name_every_public_method_with_its_parameters():
    stubs = ast.parse(Path(memq.aio.__file__).with_suffix(".pyi").read_text())
    stub_client = next(node for node in stubs.body if isinstance(node, ast.ClassDef) and node.name == "Client")
    stubbed = {node.name: [argument.arg for argument in node.args.args + node.args.kwonlyargs]
               for node in stub_client.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    actual = {name: list(inspect.signature(member).parameters)
              for name, member in vars(memq.aio.Client).items()
              if callable(member) and (not name.startswith("_") or name in ("__init__", "__aenter__", "__aexit__",
                                                                              "__aiter__", "__anext__"))}
    actual.update({name: ["self"] for name, member in vars(memq.aio.Client).items() if isinstance(member, property)})
    assert stubbed == actual
