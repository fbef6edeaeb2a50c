"""The kill -9 crash loop (issue 12, item 7): memqd --data-dir is killed with
SIGKILL at a random moment, again and again, under a pipelined publisher and
resuming subscribers, and restarted on the same port and data dir each time.

Who takes part:
- the publisher: a raw connection writing PIPELINE_DEPTH numbered sends at a
  time, round robin over TOPICS; a send is acked when its own reply (replies
  keep request order) is {"success": true}. It never re-sends: after a kill
  it reconnects and goes on with new numbers.
- SUBSCRIBERS memq.Client(reconnect=True), each subscribed to every topic
  before the first send; they resume by themselves after each restart and
  report gaps (take_gaps) and resets (take_resets).
- an observer: a raw connection, opened again after each restart, that
  subscribes with last_seen = the last index it saw (so it sees exactly what
  memqd replays, with no client-side dropping of duplicates by index).

What is checked once the loop ends and everyone has caught up (CausalityCheck):
- under --fsync always, every acked message reaches every subscriber and the
  observer (the cache is large enough that nothing is evicted);
- no index repeats: in each stream of each topic the indices only grow, and
  one (topic, index) never carries two different messages in any stream;
- no message is delivered twice to one subscriber, and none that was never sent;
- each subscriber's stream is gapless except for the gaps the SDK reported,
  and each reported gap is a jump in that stream;
- the incarnation never changes, so no Reset is reported.
Under --fsync interval (a shorter run) acked messages may be lost, but only
as reported gaps, never as a silent jump or a repeated index.
"""

import json
import random
import signal
import socket
import threading
import time
from collections import defaultdict

import memq
import pytest

from durable_memqd import DurableMemqd, memqd_path

pytestmark = pytest.mark.memqd_only

TOPICS = ("crash-a", "crash-b", "crash-c")
SUBSCRIBERS = 2
PIPELINE_DEPTH = 16
# Larger than all the messages a run sends to one topic, so that nothing is
# evicted and every acked message stays replayable.
CACHE_SIZE = 1_000_000
ALWAYS_ITERATIONS = 50
INTERVAL_ITERATIONS = 15
INTERVAL_MS = 20
# Each iteration waits for between 1 and this many new acks before the kill,
# so the kill lands at a random point of the traffic (mid-batch, mid-sync).
ACKS_BEFORE_KILL_MAX = 300
PROGRESS_TIMEOUT_S = 10.0
CATCH_UP_TIMEOUT_S = 15.0
RECEIVE_POLL_S = 0.05


def wait_for(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.002)  # polling a condition against a deadline


class Publisher(threading.Thread):
    """Pipelined numbered sends; records which were acked, refused, or left unanswered by a kill."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.acked = {topic: [] for topic in TOPICS}
        self.acked_count = 0
        self.unanswered = 0
        self.refused = []
        self.connections = 0
        self.next_number = 0

    def run(self):
        while not self.stopping.is_set():
            try:
                connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                time.sleep(0.002)  # memqd is restarting: try again
                continue
            self.connections += 1
            try:
                self._publish_on(connection, connection.makefile("rb"))
            except OSError:
                pass  # killed mid-batch: the sends without a reply are neither acked nor refused
            finally:
                connection.close()

    def _publish_on(self, connection, replies):
        while not self.stopping.is_set():
            batch = []
            for _ in range(PIPELINE_DEPTH):
                topic = TOPICS[self.next_number % len(TOPICS)]
                batch.append((topic, f"{topic}/{self.next_number}"))
                self.next_number += 1
            self.unanswered += len(batch)
            connection.sendall(b"".join(
                (json.dumps({"command": "send", "topic": topic, "msg": msg, "delivery": "all"}) + "\n").encode() for topic, msg in batch))
            for topic, msg in batch:
                line = replies.readline()
                if not line:
                    raise ConnectionResetError("memqd went away")
                self.unanswered -= 1
                reply = json.loads(line)
                with self.lock:
                    if reply == {"success": True}:
                        self.acked[topic].append(msg)
                        self.acked_count += 1
                    else:
                        self.refused.append((topic, msg, reply))


class Subscriber(threading.Thread):
    """A resuming memq.Client on every topic; keeps what it receives, its gaps and its resets."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.client = memq.Client("127.0.0.1", port, reconnect=True)
        for topic in TOPICS:
            self.client.subscribe(topic)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.received = defaultdict(list)  # topic -> [(index, msg)]
        self.gaps = []
        self.resets = []
        self.errors = []

    def run(self):
        while not self.stopping.is_set():
            try:
                message = self.client.receive(timeout=RECEIVE_POLL_S)
            except memq.Error as error:  # a call that noticed the loss while the reconnect was not done yet
                self.errors.append(repr(error))
                continue
            with self.lock:
                if message is not None:
                    self.received[message.topic].append((message.index, message.msg))
                self.gaps.extend(self.client.take_gaps())
                self.resets.extend(self.client.take_resets())

    def holds_all(self, acked):
        with self.lock:
            return all(set(acked[topic]) <= {msg for _, msg in self.received[topic]} for topic in TOPICS)

    def finish(self):
        self.stopping.set()
        self.join()
        self.gaps.extend(self.client.take_gaps())
        self.resets.extend(self.client.take_resets())
        reconnects = self.client.reconnect_count
        self.client.close()
        return reconnects


class Observer:
    """A raw subscriber opened again after every restart with last_seen: sees every line memqd delivers."""

    def __init__(self):
        self.received = defaultdict(list)
        self.connection = None
        self.reader = None
        self.thread = None

    def attach(self, port):
        self.connection = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = self.connection.makefile("rb")
        for topic in TOPICS:
            subscribe = {"command": "subscribe", "topic": topic, "last_seen": self._last_index(topic)}
            self.connection.sendall((json.dumps(subscribe) + "\n").encode())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _last_index(self, topic):
        return self.received[topic][-1][0] if self.received[topic] else -1

    def _read(self):
        try:
            for line in self.reader:
                delivered = json.loads(line)
                if delivered.get("command") == "send":
                    self.received[delivered["topic"]].append((delivered["index"], delivered["msg"]))
                elif delivered != {"success": True}:
                    raise AssertionError(f"the observer's subscribe was answered {delivered}")
        except OSError:
            pass  # memqd was killed

    def detach(self):
        self.thread.join()  # memqd is gone: the reader ends at EOF
        self.reader.close()
        self.connection.close()


class CausalityCheck:
    """The end-of-run checks over the publisher's record and every stream (see the module docstring)."""

    def __init__(self, publisher, subscribers, observer, policy, kills):
        self.policy = policy
        self.kills = kills
        self.publisher = publisher
        self.subscribers = subscribers
        self.observer = observer
        self.streams = [(f"subscriber {n}", s.received) for n, s in enumerate(subscribers)]
        self.streams.append(("observer", observer.received))

    def indices_only_grow(self):
        for name, received in self.streams:
            for topic in TOPICS:
                indices = [index for index, _ in received[topic]]
                repeats = [(a, b) for a, b in zip(indices, indices[1:]) if b <= a]
                assert not repeats, f"{name}, {topic}: an index did not grow: {repeats[:5]}"

    def one_message_per_index(self):
        by_index = {}
        for name, received in self.streams:
            for topic in TOPICS:
                for index, msg in received[topic]:
                    seen = by_index.setdefault((topic, index), (msg, name))
                    assert seen[0] == msg, f"{topic} index {index}: {seen[1]} got {seen[0]!r}, {name} got {msg!r}"

    def each_message_once_and_only_sent_ones(self):
        sent = {f"{TOPICS[number % len(TOPICS)]}/{number}" for number in range(self.publisher.next_number)}
        sent |= {msg for topic in TOPICS for msg in self.publisher.acked[topic]}
        for name, received in self.streams:
            for topic in TOPICS:
                msgs = [msg for _, msg in received[topic]]
                assert len(msgs) == len(set(msgs)), f"{name}, {topic}: a message was delivered twice"
                assert set(msgs) <= sent, f"{name}, {topic}: a message nobody sent"

    def every_acked_message_received(self):
        for name, received in self.streams:
            for topic in TOPICS:
                missing = set(self.publisher.acked[topic]) - {msg for _, msg in received[topic]}
                assert not missing, f"{name}, {topic}: {len(missing)} acked messages lost, e.g. {sorted(missing)[:5]}"

    def jumps(self, subscriber):
        """(topic, first index skipped, index received next) for every jump in a subscriber's stream."""
        found = set()
        for topic in TOPICS:
            indices = [index for index, _ in subscriber.received[topic]]
            found |= {(topic, a + 1, b) for a, b in zip(indices, indices[1:]) if b != a + 1}
        return found

    def reported_gaps_are_jumps(self):
        for n, subscriber in enumerate(self.subscribers):
            phantom = set(subscriber.gaps) - self.jumps(subscriber)
            assert not phantom, f"subscriber {n}: gaps reported where its stream has none: {sorted(phantom)[:5]}"

    def nothing_missed_silently(self):
        """A message any stream received at (topic, index) reached each subscriber, or a reported gap covers it."""
        held = {(topic, index) for _, received in self.streams for topic in TOPICS for index, _ in received[topic]}
        for n, subscriber in enumerate(self.subscribers):
            mine = {(topic, index) for topic in TOPICS for index, _ in subscriber.received[topic]}
            silent = [(topic, index) for topic, index in held - mine
                      if not any(t == topic and first <= index < upto for t, first, upto in subscriber.gaps)]
            if silent:
                topic, index = min(silent)
                holders = [name for name, received in self.streams if any(i == index for i, _ in received[topic])]
                around = [i for i, _ in subscriber.received[topic] if index - 2 <= i][:3]
                raise AssertionError(
                    f"subscriber {n} missed {len(silent)} messages without a gap, e.g. {topic} index {index} "
                    f"(received by {holders}; the subscriber's stream goes on {around}; its gaps on {topic}: "
                    f"{[g for g in subscriber.gaps if g[0] == topic]})")

    def unreported_jumps(self):
        """Jumps no Gap reported: index ranges no message of any stream ever held (see the report)."""
        return sum(len(self.jumps(subscriber) - set(subscriber.gaps)) for subscriber in self.subscribers)

    def lost_acked(self):
        """Acked messages no subscriber received (interval may lose them after a crash)."""
        received = set()
        for _, stream in self.streams:
            for topic in TOPICS:
                received |= {msg for _, msg in stream[topic]}
        return sum(1 for topic in TOPICS for msg in self.publisher.acked[topic] if msg not in received)


def run_crash_loop(memqd_binary, tmp_path, policy_args, iterations, seed):
    rng = random.Random(seed)
    memqd = DurableMemqd(memqd_binary, tmp_path / "data", tmp_path, policy_args, cache_size=CACHE_SIZE)
    # A clean restart first, so the log and its incarnation are on disk before the first kill (a fresh
    # data dir killed before its first write is durable may come back under a new incarnation).
    memqd.restart(signal.SIGTERM)
    started = time.monotonic()
    subscribers = [Subscriber(memqd.port) for _ in range(SUBSCRIBERS)]
    observer = Observer()
    observer.attach(memqd.port)
    publisher = Publisher(memqd.port)
    try:
        with memqd.connect() as connection:
            incarnation = connection.incarnation()
        for subscriber in subscribers:
            subscriber.start()
        publisher.start()
        kills = 0
        for _ in range(iterations):
            target = publisher.acked_count + rng.randint(1, ACKS_BEFORE_KILL_MAX)
            wait_for(lambda: publisher.acked_count >= target, PROGRESS_TIMEOUT_S, f"{target} acks")
            assert memqd.restart(signal.SIGKILL) == -signal.SIGKILL
            kills += 1
            observer.detach()
            observer.attach(memqd.port)
        publisher.stopping.set()
        publisher.join()
        with memqd.connect() as connection:
            assert connection.incarnation() == incarnation
        return memqd, publisher, subscribers, observer, kills, started
    except BaseException:
        publisher.stopping.set()
        for subscriber in subscribers:
            subscriber.stopping.set()
        memqd.end(signal.SIGKILL)
        raise


def finish(memqd, publisher, subscribers, observer, catch_up):
    if catch_up:
        for subscriber in subscribers:
            wait_for(lambda: subscriber.holds_all(publisher.acked), CATCH_UP_TIMEOUT_S, "a subscriber to catch up")
        wait_for(lambda: all(set(publisher.acked[t]) <= {m for _, m in observer.received[t]} for t in TOPICS),
                 CATCH_UP_TIMEOUT_S, "the observer to catch up")
    reconnects = [subscriber.finish() for subscriber in subscribers]
    assert memqd.end(signal.SIGTERM) == 0, memqd.stderr_text()
    observer.detach()
    return reconnects


def report(label, publisher, subscribers, kills, started, reconnects, check):
    delivered = sum(len(s.received[t]) for s in subscribers for t in TOPICS)
    print(f"\ncrash loop, --fsync {label}: {kills} kills, {publisher.next_number} sends ({publisher.acked_count} acked, "
          f"{len(publisher.refused)} refused), {delivered} deliveries to {len(subscribers)} subscribers, "
          f"gaps {[len(s.gaps) for s in subscribers]}, unreported jumps {check.unreported_jumps()}, "
          f"reconnects {reconnects}, acked but received by nobody {check.lost_acked()}, "
          f"{time.monotonic() - started:.1f} s")


POLICIES = {
    "always": (["--fsync", "always"], ALWAYS_ITERATIONS),
    "interval": (["--fsync", "interval", "--fsync-interval-ms", INTERVAL_MS], INTERVAL_ITERATIONS),
}


@pytest.fixture(scope="module", params=sorted(POLICIES))
def crash_loop(request, tmp_path_factory):
    """One crash loop per policy, settled, then checked by the tests below: its CausalityCheck.

    Settling: once the publisher stopped, one more acked send per topic that
    every subscriber must receive live; under always, every subscriber and the
    observer must also have caught up with every acked message."""
    policy = request.param
    args, iterations = POLICIES[policy]
    seed = random.randrange(2**32)
    print(f"\ncrash loop, --fsync {policy}: seed {seed}")
    memqd, publisher, subscribers, observer, kills, started = run_crash_loop(
        memqd_path(request.config), tmp_path_factory.mktemp(f"crash-loop-{policy}"), args, iterations, seed)
    with memqd.connect() as connection:
        last = {topic: f"{topic}/settle" for topic in TOPICS}
        for topic, msg in last.items():
            assert connection.send(topic, msg) == {"success": True}
            publisher.acked[topic].append(msg)
    for subscriber in subscribers:
        wait_for(lambda: all(any(m == last[t] for _, m in subscriber.received[t]) for t in TOPICS),
                 CATCH_UP_TIMEOUT_S, "a subscriber to get the settling sends")
    reconnects = finish(memqd, publisher, subscribers, observer, catch_up=policy == "always")
    check = CausalityCheck(publisher, subscribers, observer, policy, kills)
    report(policy, publisher, subscribers, kills, started, reconnects, check)
    return check


def test_the_loop_kills_memqd_as_often_as_asked(crash_loop):
    assert crash_loop.kills == POLICIES[crash_loop.policy][1]
    assert crash_loop.kills >= INTERVAL_ITERATIONS


# --fsync interval may lose the last interval's acked sends: these hold under always only.
@pytest.mark.parametrize("crash_loop", ["always"], indirect=True)
def test_under_always_every_acked_message_reaches_every_subscriber(crash_loop):
    crash_loop.every_acked_message_received()


@pytest.mark.parametrize("crash_loop", ["always"], indirect=True)
def test_under_always_no_send_is_refused(crash_loop):
    assert crash_loop.publisher.refused == []


def test_no_index_goes_backwards_or_repeats_in_any_stream(crash_loop):
    crash_loop.indices_only_grow()


def test_one_index_never_carries_two_messages(crash_loop):
    crash_loop.one_message_per_index()


def test_each_message_is_delivered_at_most_once_and_only_if_sent(crash_loop):
    crash_loop.each_message_once_and_only_sent_ones()


def test_every_gap_the_sdk_reports_is_a_jump_in_the_stream(crash_loop):
    crash_loop.reported_gaps_are_jumps()


def test_memqd_keeps_its_incarnation_so_no_reset_is_reported(crash_loop):
    assert [subscriber.resets for subscriber in crash_loop.subscribers] == [[]] * SUBSCRIBERS


def test_a_subscriber_misses_nothing_without_a_gap(crash_loop):
    crash_loop.nothing_missed_silently()
