"""Many connections: the reference suite's stress test, 10 to 10k clients.

Every client subscribes to a topic of its own, then sends K messages, each
to the topic of another client chosen at random; every client must receive
exactly the messages addressed to it, each once, and nothing else.

Sends are pipelined (publish, then flush). After every flush has returned,
each client sends a last message to its own topic: it is queued behind every
delivery owed to that client, so receiving up to it shows that nothing is
missing and nothing extra came, without waiting for silence.

A memq.Client holds a few file descriptors; when the clients do not fit under
one process's open-file limit, they are shared out to forked processes that
meet at a barrier between the steps (subscribe / send / check).
"""

import multiprocessing
import os
import random
import resource
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest

import memq

SIZES = {
    "10x1": (10, 1), "10x10": (10, 10), "10x100": (10, 100),
    "100x1": (100, 1), "100x10": (100, 10), "100x100": (100, 100),
    "1kx1": (1000, 1), "1kx10": (1000, 10), "1kx100": (1000, 100),
    "10kx1": (10_000, 1), "10kx10": (10_000, 10),
}
END = "end"
MUST_ARRIVE_S = 30.0
BARRIER_S = 60.0
CONNECTING_THREADS = 8  # connects overlap: each one waits on a round trip


def topic(client_id):
    return f"client-{client_id}"


def text(sender, recipient, k):
    return f"message {k} from {sender} to {recipient}"


def plan(num_clients, num_messages):
    """recipients[s]: whom sender s writes to, in order; expected[r]: what r must get."""
    rng = random.Random(f"many connections {num_clients} x {num_messages}")
    recipients, expected = [], [[] for _ in range(num_clients)]
    for sender in range(num_clients):
        chosen = []
        for k in range(num_messages):
            other = rng.randrange(num_clients - 1)
            recipient = other + (other >= sender)  # anyone but the sender
            chosen.append(recipient)
            expected[recipient].append(text(sender, recipient, k))
        recipients.append(chosen)
    return recipients, expected


def run_clients(port, ids, recipients, expected, everyone_here):
    """Takes clients `ids` through the test; returns how many messages they received.

    everyone_here() returns once every client of the test (in every process) got there.
    """
    def connect_and_subscribe(client_id):
        client = memq.Client(port=port)
        client.subscribe(topic(client_id))
        return client

    with ThreadPoolExecutor(CONNECTING_THREADS) as pool:
        clients = dict(zip(ids, pool.map(connect_and_subscribe, ids)))
    try:
        everyone_here()  # every client is subscribed
        for sender, client in clients.items():
            for k, recipient in enumerate(recipients[sender]):
                client.publish(topic(recipient), text(sender, recipient, k))
            client.flush()
        everyone_here()  # every send is acknowledged, so every delivery is queued before END
        received = 0
        for client_id, client in clients.items():
            client.send(topic(client_id), END)
            got = []
            while True:
                message = client.receive(timeout=MUST_ARRIVE_S)
                assert message is not None, f"client {client_id}: END did not arrive after {len(got)} messages"
                assert (message.topic, message.delivery, message.cache) == (topic(client_id), "all", None)
                assert message.index == len(got), f"client {client_id}: index {message.index} after {len(got)}"
                if message.msg == END:
                    break
                got.append(message.msg)
            assert sorted(got) == sorted(expected[client_id]), f"client {client_id}"
            received += len(got)
        return received
    finally:
        for client in clients.values():
            client.close()


_fds_per_client = None


def clients_per_process(broker):
    """How many memq.Clients fit under this process's open-file limit."""
    global _fds_per_client
    if _fds_per_client is None:
        before = len(os.listdir("/proc/self/fd"))
        probe = broker.client()
        _fds_per_client = len(os.listdir("/proc/self/fd")) - before
        probe.close()
        del probe
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    spare = soft - len(os.listdir("/proc/self/fd")) - 200
    return max(1, spare // max(1, _fds_per_client))


def run_many_connections(broker, num_clients, num_messages):
    recipients, expected = plan(num_clients, num_messages)
    processes_needed = -(-num_clients // clients_per_process(broker))
    if processes_needed == 1:
        return run_clients(broker.port, range(num_clients), recipients, expected, lambda: None)

    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes_needed)
    results = context.Queue()

    def shard(ids):
        try:
            results.put(run_clients(broker.port, ids, recipients, expected, lambda: barrier.wait(BARRIER_S)))
        except BaseException:
            barrier.abort()
            results.put(traceback.format_exc())

    workers = [context.Process(target=shard, args=(range(first, num_clients, processes_needed),))
               for first in range(processes_needed)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=BARRIER_S * 3) for _ in workers]
    for worker in workers:
        worker.join(timeout=BARRIER_S)
    failures = sorted((outcome for outcome in outcomes if isinstance(outcome, str)), key=lambda t: "Broken" in t)
    assert not failures, failures[0]
    return sum(outcomes)


@pytest.mark.parametrize("num_clients, num_messages", SIZES.values(), ids=SIZES.keys())
def test_many_clients_each_receive_exactly_the_messages_sent_to_them(broker, num_clients, num_messages):
    assert run_many_connections(broker, num_clients, num_messages) == num_clients * num_messages
