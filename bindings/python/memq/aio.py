"""memq.aio: an asyncio client for memq (and any aiomemq-protocol server).

    import asyncio
    import memq.aio

    async def main():
        async with memq.aio.Client(port=7000) as client:
            await client.subscribe("orders")
            await client.send("orders", "42")           # waits for the broker's ack
            print(await client.receive(timeout=1.0))    # a memq.Message, or None
            for n in range(1000):
                await client.publish("orders", str(n))  # pipelined; waits only for room
            await client.flush()
            async for message in client:                # until the connection ends
                ...

    asyncio.run(main())

It runs on asyncio's own transports (loop.create_connection with an
asyncio.Protocol); the protocol engine is the C++ ClientCore that the blocking
memq.Client uses too (memq._memq.ClientCore): bytes from the transport go in,
messages come out in one list per read, the bytes it encodes go to
transport.write(). No thread is involved.

Messages go to one inbox per client (receive(), ``async for``), as with the
blocking client, except those of a topic subscribed with ``cb=``: a coroutine
function (or a plain function) that a task of that subscription calls with
each message, in order, one at a time (as nats.py does).

Every awaitable call may be cancelled (asyncio.timeout, wait_for, task
cancel) and the client stays usable: a request whose wait was cancelled is
forgotten, its reply ignored when it comes; a cancelled receive() takes no
message.

The inbox is bounded: ``max_inbox_messages`` (default MAX_INBOX_MESSAGES)
messages received and not yet taken, counting those waiting for a ``cb=``
callback. At the bound the client calls the transport's pause_reading(), so
the broker queues for it instead (and past its --max-pending-bytes closes it
as a slow consumer; with reconnect=True the client resumes with last_seen and
counts a gap for what the broker's cache no longer has: nothing is dropped
silently). Taking a message (receive(), ``async for``, a callback) below the
bound calls resume_reading(). While reading is paused, a call that awaits
what only reading brings (a request's reply, publish()'s acks, flush(),
next_reply(), broker_incarnation()) raises memq.InboxFull at once: a request
not yet sent is not sent, one already sent is forgotten as a cancelled one is.
"""

import asyncio
import collections
import inspect
import json
import random
import ssl

from . import _errors
from ._errors import BrokerError, ConnectionError, Error, InboxFull, ProtocolViolation, Timeout
from ._memq import ClientCore, Message, Reset

__all__ = ["Client", "connect", "tls_context", "Message", "Reset",
           "Error", "BrokerError", "Timeout", "ConnectionError", "ProtocolViolation", "InboxFull"]

DEFAULT_TIMEOUT_S = 10.0
# publish() hands the output to the transport once this much is queued (else
# at the end of the event loop's iteration), and then lets the loop run once.
WRITE_BATCH_BYTES = 64 * 1024
# Publishes not yet acknowledged before publish() waits for acks, as the
# blocking client: it bounds what the broker queues for us (acks are ~19 bytes).
PUBLISH_WINDOW = 256 * 1024
# The transport's write buffer limits: past the high mark, pause_writing()
# makes publish() wait until the buffer drains to the low mark.
WRITE_BUFFER_HIGH_BYTES = 1024 * 1024
WRITE_BUFFER_LOW_BYTES = 256 * 1024
# How long publish() waits for room (window, write buffer, a reconnect).
PUBLISH_TIMEOUT_S = 30.0
# Reconnect backoff: attempt k waits a random time in [d/2, d], d = min(MAX, MIN * 2^k).
BACKOFF_MIN_S = 0.02
BACKOFF_MAX_S = 2.0
# How long close() waits for the transport to report the socket closed.
CLOSE_TIMEOUT_S = 1.0
# The inbox bound's default, as memq.Client's (client/client_core.hpp says why 65536).
MAX_INBOX_MESSAGES = 65536

_TIMED_OUT = object()
_TLS_OPTIONS_NEED_TLS = "tls_ca, tls_cert, tls_key and tls_server_name need tls=True"  # as memq.Client says
# memq.TlsError (a ConnectionError) where the package has it, for TLS failures; else ConnectionError.
TlsError = getattr(_errors, "TlsError", ConnectionError)


def tls_context(tls=False, tls_ca=None, tls_cert=None, tls_key=None):
    """The ssl.SSLContext a client with these options connects with, or None without TLS.

    ``tls`` is True (a context that verifies the broker's certificate against
    ``tls_ca``, a PEM file, or else the system's CAs, and its name) or an
    ssl.SSLContext of your own (then the other options must be None).
    ``tls_cert`` and ``tls_key`` (PEM files) are the client's certificate for
    brokers that ask for one; ``tls_key`` may be None when the key is in
    ``tls_cert``. Raises ValueError for options that contradict each other.
    """
    if isinstance(tls, ssl.SSLContext):
        if tls_ca is not None or tls_cert is not None or tls_key is not None:
            raise ValueError("tls_ca, tls_cert and tls_key cannot be combined with a ready ssl.SSLContext")
        return tls
    if tls is not True and tls is not False:
        raise TypeError("tls must be True, False or an ssl.SSLContext")
    if not tls:
        if tls_ca is not None or tls_cert is not None or tls_key is not None:
            raise ValueError(_TLS_OPTIONS_NEED_TLS)
        return None
    if tls_key is not None and tls_cert is None:
        raise ValueError("tls_key needs tls_cert")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=tls_ca)
    if tls_cert is not None:
        context.load_cert_chain(tls_cert, tls_key)
    return context


def _check_timeout(timeout, name="timeout"):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0 \
            or timeout == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0")
    return float(timeout)


def _reply_object(error, raw):
    """A send_raw reply as the dict the broker sent."""
    if raw:
        return json.loads(raw)
    if error is None:
        return {"success": True}
    return {"success": False, "reason": error.reason}


def _report(loop, what, exception):
    loop.call_exception_handler({"message": f"memq.aio: {what} raised", "exception": exception})


class _Connection(asyncio.Protocol):
    """One transport's protocol: hands every transport event to its client.
    A connection the client has let go of (after a loss or close) is ignored."""

    def __init__(self, client):
        self.client = client
        self.transport = None
        self.closed = client._loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.client._connection_made(self)

    def data_received(self, data):
        self.client._data_received(self, data)

    def eof_received(self):
        return False  # close the transport: the broker has nothing more to say

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(None)
        self.client._connection_lost(self, exc)

    def pause_writing(self):
        self.client._pause_writing(self)

    def resume_writing(self):
        self.client._resume_writing(self)


class _Callback:
    """A topic subscribed with cb=: its messages, and the task that feeds them to cb in order."""

    def __init__(self, client, topic, callback):
        self.queue = collections.deque()
        self.ready = None  # a future the task awaits while the queue is empty
        self.callback = callback
        self.topic = topic
        self.task = client._loop.create_task(self._run(client))

    def push(self, messages):
        self.queue.extend(messages)
        if self.ready is not None and not self.ready.done():
            self.ready.set_result(None)

    async def _run(self, client):
        loop = client._loop
        while True:
            if not self.queue:
                self.ready = loop.create_future()
                await self.ready
                continue
            message = self.queue.popleft()
            if client._reading_paused:
                client._tell_taken()
            try:
                result = self.callback(message)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception as exception:  # the subscription lives on, as nats.py's does
                _report(loop, f"the callback of topic {self.topic!r}", exception)


class Client:
    """A memq connection driven by asyncio; see the module's help.

    Client(host="127.0.0.1", port=7000, timeout=10.0, reconnect=False,
    on_reset=None, *, tls=False, tls_ca=None, tls_cert=None, tls_key=None,
    tls_server_name=None, max_inbox_messages=MAX_INBOX_MESSAGES), as
    memq.Client; then ``await client.connect()``, or
    ``async with Client(...) as client``, or ``client = await memq.aio.connect(...)``.

    timeout is the default of every call that waits for the broker (seconds).
    With reconnect=True a lost connection is opened again in the background
    (backoff BACKOFF_MIN_S..BACKOFF_MAX_S), every subscription resumed as the
    blocking client does (client/README.md, Resume): duplicates dropped,
    gaps counted (take_gaps()), a broker that lost its state reported as a
    memq.Reset (take_resets(), reset_count, on_reset). on_reset is a function
    or a coroutine function, called with each Reset. TLS: see tls_context();
    tls_server_name is the name the broker's certificate must carry (default:
    host). max_inbox_messages: the inbox bound (see the module's help), at
    least 1. A connection, not a value: == and hash are identity.
    """

    def __init__(self, host="127.0.0.1", port=7000, timeout=DEFAULT_TIMEOUT_S, reconnect=False, on_reset=None, *,
                 tls=False, tls_ca=None, tls_cert=None, tls_key=None, tls_server_name=None,
                 max_inbox_messages=MAX_INBOX_MESSAGES):
        if on_reset is not None and not callable(on_reset):
            raise TypeError("on_reset must be callable or None")
        if isinstance(max_inbox_messages, bool) or not isinstance(max_inbox_messages, int) \
                or max_inbox_messages < 1:
            raise ValueError("max_inbox_messages must be an integer >= 1")
        self._max_inbox_messages = max_inbox_messages
        self._host = host
        self._port = int(port)
        self._timeout = _check_timeout(timeout)
        self._reconnect = bool(reconnect)
        self._on_reset = on_reset
        if tls is False and tls_server_name is not None:
            raise ValueError(_TLS_OPTIONS_NEED_TLS)
        self._ssl = tls_context(tls, tls_ca, tls_cert, tls_key)
        self._server_hostname = (tls_server_name or host) if self._ssl is not None else None
        self._loop = None
        self._callbacks = {}  # topic -> _Callback
        self._connection = None  # the current _Connection while connected
        self._state = "disconnected"  # connecting, connected, reconnecting, disconnected
        self._closed = False
        self._disconnect_reason = "not connected"
        self._writing_paused = False
        self._write_scheduled = False
        self._inbox = collections.deque()
        self._reading_paused = False
        self._waiters = []  # futures woken by any change: message, reply, state, room
        self._awaited = {}  # request id -> future of its (error or None, raw)
        self._replies = collections.deque()  # answers to send_raw lines: (error or None, raw)
        self._deferred = collections.deque()  # errors nobody waited for: raised by the next call
        self._background = set()  # on_reset coroutines running
        self._reconnect_task = None
        self._gaps = []
        self._gap_count = 0
        self._resets = []
        self._reset_count = 0
        self._reconnects = 0
        self._core = self._new_core()

    def _new_core(self):
        core = ClientCore(drop_duplicates=self._reconnect, write_batch_bytes=WRITE_BATCH_BYTES,
                          publish_window=PUBLISH_WINDOW, max_inbox_messages=self._max_inbox_messages)
        # A fresh session under an inbox that kept its messages: they are still undelivered.
        core.count_undelivered(len(self._inbox) + sum(len(cb.queue) for cb in self._callbacks.values()))
        return core

    def _where(self):
        return f"{self._host}:{self._port}"

    def __repr__(self):
        return f"<memq.aio.Client host={self._host!r} port={self._port} timeout={self._timeout!r}>"

    # ------------------------------------------------------------ connection

    async def connect(self):
        """Connects (once; with reconnect=True later losses are repaired by the client).

        Raises ConnectionError when the broker cannot be reached, Timeout
        past the client's timeout, Error when already connected."""
        if self._state != "disconnected":
            raise Error(f"connect: already connected to {self._where()}")
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._core = self._new_core()  # a fresh session: nothing to resume
        self._replies.clear()
        self._state = "connecting"
        try:
            await self._open()
        except BaseException:
            if self._state == "connecting":
                self._state = "disconnected"
            raise

    async def _open(self):
        connection = _Connection(self)
        try:
            await asyncio.wait_for(
                self._loop.create_connection(lambda: connection, self._host, self._port, ssl=self._ssl,
                                             server_hostname=self._server_hostname),
                self._timeout)
        except asyncio.TimeoutError:
            self._disconnect_reason = f"cannot connect to {self._where()}: timed out"
            raise Timeout(self._disconnect_reason) from None
        except (ssl.SSLError, ssl.CertificateError) as error:
            self._disconnect_reason = f"cannot connect to {self._where()} over TLS: {error}"
            raise TlsError(self._disconnect_reason) from None
        except OSError as error:
            self._disconnect_reason = f"cannot connect to {self._where()}: {error.strerror or error}"
            raise ConnectionError(self._disconnect_reason) from None

    def _connection_made(self, connection):
        if self._closed or self._state not in ("connecting", "reconnecting"):
            connection.transport.close()  # closed while it was connecting
            return
        if self._state == "reconnecting":
            self._reconnects += 1
        self._connection = connection
        self._state = "connected"
        self._writing_paused = False
        self._reading_paused = False
        connection.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH_BYTES, low=WRITE_BUFFER_LOW_BYTES)
        self._core.start_session()  # hello first; the core resumes the subscriptions once it is answered
        self._write_out()
        self._tell_taken()
        if self._core.inbox_full:  # still full from the last connection: this one waits too
            self._pause_reading()
        self._notify()

    def _connection_lost(self, connection, exc):
        if connection is not self._connection:
            return
        if exc is None:
            why = f"connection closed by the broker at {self._where()}"
        else:
            why = f"connection to {self._where()} lost: {exc}"
        self._drop(why)
        if self._reconnect and not self._closed:
            self._state = "reconnecting"
            self._reconnect_task = self._loop.create_task(self._reconnect_loop())
        self._notify()

    def _drop(self, why):
        """Lets go of the current connection; every request in flight is lost."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.transport.close()
        self._state = "disconnected"
        self._disconnect_reason = why
        self._writing_paused = False
        self._reading_paused = False
        for request_id, kind in self._core.reset():
            self._settle(request_id, kind, ConnectionError(why), "")

    async def _reconnect_loop(self):
        attempt = 0
        while not self._closed:
            ceiling = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** min(attempt, 32))
            await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
            attempt += 1
            try:
                await self._open()
                return
            except Error:
                if self._state == "disconnected":  # the connection made it, and was lost again
                    return
                self._state = "reconnecting"

    async def close(self):
        """Closes the connection (and stops reconnecting). Requests still
        waiting fail with ConnectionError; messages already received stay
        readable with receive(). Closing twice is harmless."""
        self._closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            self._reconnect_task = None
        for callback in self._callbacks.values():
            callback.task.cancel()
        self._callbacks.clear()
        connection = self._connection
        if self._state != "disconnected" or connection is not None:
            self._drop("connection closed by the client")
        self._notify()
        if connection is not None:
            try:
                await asyncio.wait_for(asyncio.shield(connection.closed), CLOSE_TIMEOUT_S)
            except asyncio.TimeoutError:
                connection.transport.abort()

    async def __aenter__(self):
        if self._state == "disconnected":
            await self.connect()
        return self

    async def __aexit__(self, exc_type, exc, tb):
        await self.close()

    # ------------------------------------------------------------ transport events

    def _data_received(self, connection, data):
        if connection is not self._connection:
            return
        core = self._core
        self._tell_taken()
        self._take_in(core.feed(data))
        if core.inbox_full and not self._reading_paused:
            self._pause_reading()
        if core.input_spent:
            self._drop(f"protocol violation from {self._where()}: a line longer than the client accepts")
            if self._reconnect and not self._closed:
                self._state = "reconnecting"
                self._reconnect_task = self._loop.create_task(self._reconnect_loop())
        elif core.output_bytes:
            self._write_out()  # the core's own requests (resubscribes after the hello)
        if self._waiters:
            self._notify()

    def _tell_taken(self):
        """Tells the core how many of the messages it handed out the
        application took (they are no longer in the inbox or a callback's
        queue); below the bound, the input it held comes in and reading resumes.
        Counted here, not per message: receive() stays as cheap as it was."""
        core = self._core
        kept = len(self._inbox)
        for callback in self._callbacks.values():
            kept += len(callback.queue)
        taken = core.undelivered_messages - kept
        if not taken:
            return
        self._take_in(core.mark_delivered(taken))
        if core.output_bytes:
            self._write_out()
        if self._reading_paused and not core.inbox_full:
            self._reading_paused = False
            self._connection.transport.resume_reading()
            self._notify()

    def _take_in(self, messages):
        """Hands the messages the core just gave out to their callbacks or the
        inbox, then acts on the core's events (replies, gaps, resets)."""
        if messages:
            if self._callbacks:
                self._route(messages)
            else:
                self._inbox.extend(messages)
        if self._core.events_pending:
            self._handle_events()

    def _pause_reading(self):
        """The inbox is full: read nothing more; what awaits a reply cannot get it."""
        self._reading_paused = True
        self._connection.transport.pause_reading()
        for future in self._awaited.values():
            if not future.done():
                future.set_result((self._inbox_full("request"), ""))
        self._notify()

    def _inbox_full(self, what):
        return InboxFull(f"{what}: the inbox holds {self._core.undelivered_messages} undelivered messages "
                         f"(max_inbox_messages={self._max_inbox_messages}), so nothing more is read from "
                         f"{self._where()}; drain it with receive()")

    def _route(self, messages):
        callbacks = self._callbacks
        batches = {}
        for message in messages:
            callback = callbacks.get(message.topic)
            if callback is None:
                self._inbox.append(message)
            else:
                batches.setdefault(callback, []).append(message)
        for callback, batch in batches.items():
            callback.push(batch)

    def _pause_writing(self, connection):
        if connection is self._connection:
            self._writing_paused = True

    def _resume_writing(self, connection):
        if connection is self._connection:
            self._writing_paused = False
            self._notify()

    def _notify(self):
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _write_out(self):
        self._write_scheduled = False
        if self._connection is not None and self._core.output_bytes:
            self._connection.transport.write(self._core.take_output())

    def _schedule_write(self):
        if not self._write_scheduled:
            self._write_scheduled = True
            self._loop.call_soon(self._write_out)

    # ------------------------------------------------------------ events

    def _handle_events(self):
        for event in self._core.take_events():
            tag = event[0]
            if tag == "ack":
                self._settle(event[1], event[2], None, event[3])
            elif tag == "failure":
                _, request_id, kind, reason, raw = event
                self._settle(request_id, kind, BrokerError(f"broker refused the request: {reason}", reason), raw)
            elif tag == "violation":
                _, request_id, kind, description, raw = event
                text = f"protocol violation from {self._where()}: {description}" + (f": {raw}" if raw else "")
                if request_id is None:
                    self._deferred.append(ProtocolViolation(text))
                else:
                    self._settle(request_id, kind, ProtocolViolation(text), "")
            elif tag == "gap":
                self._gap_count += 1
                self._gaps.append(event[1:])
            elif tag == "reset":
                self._reset_count += 1
                self._resets.append(event[1])
                if self._on_reset is not None:
                    self._call_on_reset(event[1])

    def _call_on_reset(self, reset):
        try:
            result = self._on_reset(reset)
        except Exception as exception:
            _report(self._loop, "on_reset", exception)
            return
        if inspect.isawaitable(result):
            task = self._loop.create_task(result)
            self._background.add(task)
            task.add_done_callback(self._background_done)

    def _background_done(self, task):
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _report(self._loop, "on_reset", task.exception())

    def _settle(self, request_id, kind, error, raw):
        """Routes the answer to a request to whoever is owed it."""
        future = self._awaited.pop(request_id, None)
        if future is not None:
            if not future.done():
                future.set_result((error, raw))
            return
        if kind == "raw":
            self._replies.append((error, raw))
        elif kind in ("hello", "resubscribe") and isinstance(error, (BrokerError, ProtocolViolation)):
            self._deferred.append(error)
        # anything else: a request whose caller stopped waiting (cancelled, timed out)

    # ------------------------------------------------------------ waiting

    async def _wait_change(self, deadline):
        """Waits for the next change (message, reply, state, room); False once past deadline (None: never)."""
        remaining = None if deadline is None else deadline - self._loop.time()
        if remaining is not None and remaining <= 0:
            return False
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        if remaining is None:
            await waiter
            return True
        expiry = self._loop.call_later(remaining, _expire, waiter)
        try:
            return await waiter is not _TIMED_OUT
        finally:
            expiry.cancel()

    def _deadline(self, timeout):
        return self._loop.time() + (self._timeout if timeout is None else _check_timeout(timeout))

    def _raise_deferred(self):
        if self._deferred:
            raise self._deferred.popleft()

    async def _ensure_connected(self, deadline):
        while self._state != "connected":
            if self._state == "disconnected":
                raise ConnectionError(self._disconnect_reason)
            if not await self._wait_change(deadline):
                raise Timeout(f"no connection to {self._where()} within the timeout (reconnecting)")

    def _require_loop(self):
        if self._loop is None:
            raise ConnectionError("not connected: await connect() first")

    async def _request(self, make, timeout, what):
        self._require_loop()
        self._raise_deferred()
        deadline = self._deadline(timeout)
        await self._ensure_connected(deadline)
        if self._reading_paused:
            raise self._inbox_full(what)  # not sent
        request_id = make()
        future = self._loop.create_future()
        self._awaited[request_id] = future
        self._write_out()
        remaining = deadline - self._loop.time()
        expiry = self._loop.call_later(max(remaining, 0), _expire, future)
        try:
            outcome = await future
        finally:
            expiry.cancel()
            self._awaited.pop(request_id, None)
        if outcome is _TIMED_OUT:
            raise Timeout(f"{what}: no reply from {self._where()} within the timeout")
        error, _raw = outcome
        if isinstance(error, InboxFull):
            raise self._inbox_full(what)  # sent: its reply, read later, is ignored
        if error is not None:
            raise error

    # ------------------------------------------------------------ requests

    async def subscribe(self, topic, last_seen=None, cache=None, timeout=None, cb=None):
        """Subscribes to `topic` and waits for the broker's ack.

        last_seen: replay the cached messages after this index (the broker's
        cache; without it, the whole cache). cache: the subscriber's "cache"
        flag (PROTOCOL.md). cb: a coroutine function (or function) given
        each message of the topic, in order, one at a time, instead of the
        client's inbox; what it raises goes to the loop's exception handler.
        Raises BrokerError if refused, Timeout, ConnectionError."""
        if cb is not None and not callable(cb):
            raise TypeError("cb must be callable or None")
        self._require_loop()
        if cb is not None:
            previous = self._callbacks.pop(topic, None)
            if previous is not None:
                previous.task.cancel()
            self._callbacks[topic] = _Callback(self, topic, cb)  # before the ack: the replay goes to it
        try:
            await self._request(lambda: self._core.subscribe(topic, last_seen, cache), timeout, "subscribe")
        except BrokerError:
            self._forget_callback(topic)
            raise

    async def unsubscribe(self, topic, timeout=None):
        """Unsubscribes from `topic` (ends its cb) and waits for the broker's ack."""
        self._forget_callback(topic)
        await self._request(lambda: self._core.unsubscribe(topic), timeout, "unsubscribe")

    def _forget_callback(self, topic):
        callback = self._callbacks.pop(topic, None)
        if callback is not None:
            callback.task.cancel()

    async def send(self, topic, msg, delivery="all", cache=None, timeout=None):
        """Sends one message and waits for the broker's ack (BrokerError if refused).
        delivery: "all" (every subscriber) or "one" (one of them); cache=False:
        not kept in the broker's cache."""
        await self._request(lambda: self._core.send(topic, msg, delivery, cache), timeout, "send")

    async def publish(self, topic, msg, delivery="all", cache=None):
        """Sends one message without waiting for its ack (pipelined).

        Waits only for room: while PUBLISH_WINDOW publishes are unanswered,
        while the transport's write buffer is past WRITE_BUFFER_HIGH_BYTES,
        or while reconnecting (up to PUBLISH_TIMEOUT_S, then Timeout).
        Raises InboxFull while reading is paused (its ack could not be read).
        Refusals and losses are reported by flush()."""
        core = self._core
        if self._state != "connected" or self._writing_paused or core.window_full or self._reading_paused:
            await self._wait_for_room()
            core = self._core
        if core.publish(topic, msg, delivery, cache):  # the batch is full (or the window): write it now
            self._write_out()
            await asyncio.sleep(0)  # and let the loop read the acks and run other tasks
        elif not self._write_scheduled:
            self._write_scheduled = True
            self._loop.call_soon(self._write_out)

    async def _wait_for_room(self):
        self._require_loop()
        deadline = self._loop.time() + PUBLISH_TIMEOUT_S
        while True:
            if self._reading_paused:
                raise self._inbox_full("publish")
            if self._state == "connected" and not self._writing_paused and not self._core.window_full:
                return
            if self._state == "disconnected":
                raise ConnectionError(self._disconnect_reason)
            if self._state == "connected" and self._core.output_bytes:
                self._write_out()  # the acks owed come only for what is written
            if not await self._wait_change(deadline):
                raise Timeout(f"publish: no room to publish to {self._where()} within {PUBLISH_TIMEOUT_S} s "
                              f"({self._core.publishes_outstanding} publishes unanswered)")

    async def flush(self, timeout=None):
        """Waits until every request so far is answered. Then raises
        ConnectionError if publishes were lost with a connection, or the
        first refusal (BrokerError) or ProtocolViolation of a publish."""
        self._require_loop()
        self._raise_deferred()
        deadline = self._deadline(timeout)
        self._write_out()
        while self._state == "connected" and self._core.pending_requests:
            if self._reading_paused:
                raise self._inbox_full("flush")
            if not await self._wait_change(deadline):
                raise Timeout(f"flush: {self._core.pending_requests} requests to {self._where()} "
                              "unanswered at the timeout")
        lost, problem = self._core.take_publish_problems()
        if lost:
            raise ConnectionError(f"{lost} publishes were lost with the connection: {self._disconnect_reason}")
        if problem is not None:
            kind, text = problem
            if kind == "failure":
                raise BrokerError(f"broker refused the request: {text}", text)
            raise ProtocolViolation(f"protocol violation from {self._where()}: {text}")

    async def receive(self, timeout=None):
        """The next message (a memq.Message), or None if none comes within
        `timeout` seconds (default: the client's). Raises ConnectionError
        once the connection is gone (and not being reopened) and the inbox
        is empty."""
        if not self._inbox:
            self._require_loop()
            self._raise_deferred()
            deadline = self._deadline(timeout)
            while not self._inbox:
                if self._state == "disconnected":
                    raise ConnectionError(self._disconnect_reason)
                if not await self._wait_change(deadline) and not self._inbox:
                    return None
        message = self._inbox.popleft()
        if self._reading_paused:
            self._tell_taken()
        return message

    def __aiter__(self):
        return self

    async def __anext__(self):
        """The next message; the iteration ends when the connection is gone."""
        if not self._inbox:
            self._require_loop()
            while not self._inbox:
                if self._state == "disconnected":
                    raise StopAsyncIteration
                await self._wait_change(None)
        message = self._inbox.popleft()
        if self._reading_paused:
            self._tell_taken()
        return message

    async def send_raw(self, data, expect_reply=True):
        """For tests of bad input: `data` (bytes or str; add the "\\n") goes out
        as it is. With expect_reply, one reply is owed: read it with next_reply()."""
        self._require_loop()
        await self._ensure_connected(self._deadline(None))
        self._core.send_raw(data, expect_reply)
        self._write_out()

    async def next_reply(self, timeout=None):
        """The broker's reply to a send_raw line, as the whole JSON object (a dict)."""
        self._require_loop()
        deadline = self._deadline(timeout)
        while not self._replies:
            if self._state == "disconnected":
                raise ConnectionError(self._disconnect_reason)
            if self._reading_paused:
                raise self._inbox_full("next_reply")
            if not await self._wait_change(deadline):
                raise Timeout(f"next_reply: no reply from {self._where()} within the timeout")
        error, raw = self._replies.popleft()
        if isinstance(error, (ConnectionError, ProtocolViolation)):
            raise error
        return _reply_object(error, raw)

    async def broker_incarnation(self, timeout=None):
        """memqd's incarnation (16 hex digits) from this connection's hello,
        waiting for its answer if due; None for an aiomemq server."""
        self._require_loop()
        deadline = self._deadline(timeout)
        await self._ensure_connected(deadline)
        while self._state == "connected" and self._core.hello_pending:
            if self._reading_paused:
                raise self._inbox_full("broker_incarnation")
            if not await self._wait_change(deadline):
                raise Timeout(f"broker_incarnation: no answer to hello from {self._where()} within the timeout")
        if self._state != "connected":
            raise ConnectionError(self._disconnect_reason)
        return self._core.broker_incarnation

    # ------------------------------------------------------------ state

    def take_gaps(self):
        """The gaps seen since the last call, as (topic, expected_index, got_index)."""
        gaps, self._gaps = self._gaps, []
        return gaps

    def take_resets(self):
        """The memq.Reset events since the last call."""
        resets, self._resets = self._resets, []
        return resets

    @property
    def gap_count(self):
        """Gaps seen since connect()."""
        return self._gap_count

    @property
    def reset_count(self):
        """Resets seen since connect()."""
        return self._reset_count

    @property
    def reconnect_count(self):
        """Connections reopened after a loss."""
        return self._reconnects

    @property
    def connected(self):
        """True while a connection is up."""
        return self._state == "connected"

    @property
    def unacknowledged(self):
        """Publishes not yet answered by the broker."""
        return self._core.publishes_outstanding

    @property
    def writing_paused(self):
        """True while the transport's write buffer is past WRITE_BUFFER_HIGH_BYTES
        (pause_writing() was called): publish() waits until it drains."""
        return self._writing_paused

    @property
    def reading_paused(self):
        """True while the inbox is at max_inbox_messages (pause_reading() was
        called): taking a message with receive() resumes reading."""
        return self._reading_paused

    @property
    def inbox_size(self):
        """Messages received and not yet taken by receive() or async for."""
        return len(self._inbox)

    @property
    def timeout(self):
        """The default timeout of the calls that wait, in seconds."""
        return self._timeout


def _expire(future):
    if not future.done():
        future.set_result(_TIMED_OUT)


async def connect(host="127.0.0.1", port=7000, **options):
    """A connected Client: ``client = await memq.aio.connect(port=7000)``;
    the options are Client's. Close it with ``await client.close()``."""
    client = Client(host, port, **options)
    await client.connect()
    return client
