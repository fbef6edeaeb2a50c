"""memq.testing: start a real broker for tests; also a pytest plugin.

In a test suite (the plugin is registered when the memq package is installed)::

    def test_round_trip(broker):
        with broker.client() as client:
            client.subscribe("t")
            client.send("t", "hi")
            assert client.receive(timeout=1).msg == "hi"

``broker`` starts memqd on a free port for the test and stops it (by pid)
afterwards, failing the test if memqd did not exit cleanly. Choose its cache
size with ``@pytest.mark.memq_broker(cache_size=3)`` or start more with the
``make_broker`` fixture. ``--memqd PATH`` picks the binary; ``--server-cmd
"COMMAND {port} {cache_size}"`` runs any aiomemq-protocol server instead.

With pytest-asyncio installed, the asyncio side (memq.aio) has fixtures too::

    @pytest.mark.asyncio
    async def test_round_trip(aio_client):      # connected to `broker`
        await aio_client.subscribe("t")
        await aio_client.send("t", "hi")
        assert (await aio_client.receive(timeout=1)).msg == "hi"

``aio_connect`` is the factory: ``await aio_connect(**options)`` gives one
more connected memq.aio.Client of the ``broker`` fixture; every client it
made is closed after the test.
"""

import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import memq

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


def find_memqd():
    """The memqd to run: $MEMQD, else the one shipped in this package, else PATH."""
    candidates = [os.environ.get("MEMQD"), str(Path(__file__).parent / "_bin" / "memqd"), shutil.which("memqd")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("memqd not found: set $MEMQD or pass --memqd PATH")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def end_process(process, signum=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
    """Sends `signum` to a running `process` and waits (SIGKILL after `timeout`); returns its exit code."""
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class Broker:
    """A running broker process on 127.0.0.1."""

    def __init__(self, process, port, cache_size, is_memqd, workdir, relaunch):
        self.process = process
        self.host = "127.0.0.1"
        self.port = port
        self.cache_size = cache_size
        self.is_memqd = is_memqd
        self._workdir = workdir
        self._relaunch = relaunch  # port -> a new process, listening on it

    @property
    def pid(self):
        return self.process.pid

    def client(self, **options):
        """A connected memq.Client for this broker."""
        return memq.Client(self.host, self.port, **options)

    async def aio_client(self, **options):
        """A connected memq.aio.Client for this broker (await it; close it with ``await client.close()``)."""
        import memq.aio

        return await memq.aio.connect(self.host, self.port, **options)

    def _end(self, signum):
        return end_process(self.process, signum)

    def stop(self):
        """SIGTERM, wait; returns the exit code (SIGKILL after STOP_TIMEOUT_S)."""
        code = self._end(signal.SIGTERM)
        self._workdir.cleanup()
        return code

    def restart(self, signum=signal.SIGTERM):
        """Ends the broker with `signum` (SIGTERM, SIGKILL), waits for it, and starts
        the same command again on the same port; returns once the new one
        listens, with the old one's exit code. Its state (indices, caches) is gone."""
        code = self._end(signum)
        self.process = self._relaunch(self.port)
        return code

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def _wait_until(condition, process, what):
    deadline = time.monotonic() + START_TIMEOUT_S
    delay = 0.001
    while not condition():
        if process.poll() is not None:
            raise RuntimeError(f"the broker exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the broker did not get to {what} within {START_TIMEOUT_S} s")
        time.sleep(delay)  # polling a condition with a deadline, not a fixed wait
        delay = min(delay * 2, 0.05)


def _accepts_connections(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def start_broker(cache_size=100, args=(), memqd=None, server_cmd=None):
    """Starts a broker on a free loopback port and returns it once it listens.

    With ``server_cmd`` (a template with {port} and {cache_size}) any server
    of the protocol is started instead of memqd.
    """
    workdir = tempfile.TemporaryDirectory(prefix="memq-test-")
    if server_cmd:
        def launch_server(port):
            command = shlex.split(server_cmd.format(port=port, cache_size=cache_size))
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
            _wait_until(lambda: _accepts_connections(port), process, "accepting connections")
            return process

        port = _free_port()
        return Broker(launch_server(port), port, cache_size, False, workdir, launch_server)

    port_file = Path(workdir.name) / "port"

    def launch_memqd(port):
        port_file.unlink(missing_ok=True)  # a restart must not read the last run's
        command = [memqd or find_memqd(), "--port", str(port), "--port-file", str(port_file),
                   "--cache-size", str(cache_size), "--log-level", "warn", *map(str, args)]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        _wait_until(lambda: port_file.exists() and port_file.read_text().strip() != "", process, "listening")
        return process

    process = launch_memqd(0)
    return Broker(process, int(port_file.read_text()), cache_size, True, workdir, launch_memqd)


# ---- the pytest plugin -------------------------------------------------------

def pytest_addoption(parser):
    group = parser.getgroup("memq")
    group.addoption("--memqd", default=None, help="path of the memqd binary the broker fixture starts")
    group.addoption("--server-cmd", default=None,
                    help='run tests against another server: "COMMAND {port} {cache_size}"')


def pytest_configure(config):
    config.addinivalue_line("markers", "memq_broker(cache_size=100, args=()): options of the broker fixture")


def _pytest_fixtures():
    import pytest

    @pytest.fixture
    def make_broker(request):
        """Factory: make_broker(cache_size=100, args=()) -> Broker, stopped after the test."""
        started = []

        def make(cache_size=100, args=()):
            broker = start_broker(cache_size, args, memqd=request.config.getoption("--memqd"),
                                  server_cmd=request.config.getoption("--server-cmd"))
            started.append(broker)
            return broker

        yield make
        for broker in started:
            code = broker.stop()
            if broker.is_memqd:
                assert code == 0, f"memqd (pid {broker.pid}) exited with {code}"

    @pytest.fixture
    def broker(request, make_broker):
        """A fresh broker for this test (see the memq_broker marker)."""
        marker = request.node.get_closest_marker("memq_broker")
        return make_broker(**(marker.kwargs if marker else {}))

    return make_broker, broker


def _pytest_asyncio_fixtures():
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def aio_connect(broker):
        """Factory: await aio_connect(**options) -> a connected memq.aio.Client of `broker`, closed after the test."""
        clients = []

        async def make(**options):
            client = await broker.aio_client(**options)
            clients.append(client)
            return client

        yield make
        for client in clients:
            await client.close()

    @pytest_asyncio.fixture
    async def aio_client(aio_connect):
        """A memq.aio.Client connected to `broker`, closed after the test."""
        return await aio_connect()

    return aio_connect, aio_client


try:
    make_broker, broker = _pytest_fixtures()
except ImportError:  # pytest is optional: start_broker() works without it
    pass

try:
    aio_connect, aio_client = _pytest_asyncio_fixtures()
except ImportError:  # pytest-asyncio is optional: the async fixtures need it
    pass
