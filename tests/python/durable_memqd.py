"""durable_memqd: memqd with --data-dir as the durable-topic tests run it.

Owns what test_data_dir.py and test_crash_loop.py share: starting memqd on a
data dir (port 0 first, then the same port again after each restart, since
the SDK reconnects to the port it was given), ending it by pid with a chosen
signal, its stderr in a file, a raw line connection that sees every byte
memqd sends, and a reader of the log's records (the format of
broker/storage/log_format.hpp, written down in its header comment).
"""

import json
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import memq.testing

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
REPLY_TIMEOUT_S = 5.0
# How often a restart on the same port is tried while the old socket lingers.
RESTART_ATTEMPTS_MAX = 20

LOG_NAME = "memq.log"
LOG_HEADER_BYTES = 24
RECORD_PREFIX_BYTES = 8
RECORD_KIND_MESSAGE = 5         # [index][flags][msg literal]: what memqd writes
RECORD_KIND_FRAMED_MESSAGE = 1  # log version 1's: [index][delivery][frame]
MESSAGE_FLAG_DELIVERY_ONE = 1
MESSAGE_FLAG_CACHE_TRUE = 2


def memqd_path(config=None):
    chosen = config.getoption("--memqd") if config is not None else None
    return chosen or memq.testing.find_memqd()


def run_memqd(binary, args, timeout_s=START_TIMEOUT_S):
    """Runs memqd to its exit (it must exit by itself); returns the CompletedProcess."""
    return subprocess.run([binary, *map(str, args)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout_s)


class DurableMemqd:
    """One memqd process on `data_dir`; restart() starts the next on the same port."""

    def __init__(self, binary, data_dir, workdir, args=(), cache_size=100, preexec_fn=None, env=None):
        self.binary = binary
        self.data_dir = Path(data_dir)
        self.workdir = Path(workdir)
        self.args = [str(a) for a in args]
        self.cache_size = cache_size
        self.preexec_fn = preexec_fn
        self.env = env  # None: this process's environment
        self.port = 0
        self.starts = 0
        self.process = None
        self._launch()

    @property
    def pid(self):
        return self.process.pid

    def stderr_path(self, start=None):
        return self.workdir / f"memqd-{self.starts if start is None else start}.stderr"

    def stderr_text(self, start=None):
        return self.stderr_path(start).read_text(errors="replace")

    def _launch(self):
        port_file = self.workdir / "port"
        for attempt in range(RESTART_ATTEMPTS_MAX):
            self.starts += 1
            port_file.unlink(missing_ok=True)
            command = [self.binary, "--port", str(self.port), "--port-file", str(port_file),
                       "--cache-size", str(self.cache_size), "--data-dir", str(self.data_dir), *self.args]
            with open(self.stderr_path(), "wb") as stderr:
                self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                stderr=stderr, preexec_fn=self.preexec_fn, env=self.env)
            if self._wait_listening(port_file):
                self.port = int(port_file.read_text())
                return
            text = self.stderr_text()
            if self.port == 0 or "in use" not in text.lower():
                raise RuntimeError(f"memqd exited with {self.process.returncode} before listening: {text}")
            time.sleep(0.01 * (attempt + 1))  # the old listener's port is still held: back off, then retry
        raise RuntimeError(f"memqd could not listen on port {self.port} again: {self.stderr_text()}")

    def _wait_listening(self, port_file):
        deadline = time.monotonic() + START_TIMEOUT_S
        delay = 0.001
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None:
                return False
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(f"memqd did not listen within {START_TIMEOUT_S} s: {self.stderr_text()}")
            time.sleep(delay)  # polling a condition against a deadline
            delay = min(delay * 2, 0.02)
        return True

    def end(self, signum=signal.SIGTERM):
        """Sends `signum` to the running memqd and waits; returns its exit code (-signal when killed)."""
        return memq.testing.end_process(self.process, signum, STOP_TIMEOUT_S)

    def restart(self, signum=signal.SIGTERM):
        """Ends memqd with `signum` and starts it again on the same port and data dir; returns the exit code."""
        code = self.end(signum)
        self._launch()
        return code

    def connect(self):
        return LineConnection(self.port)


class LineConnection:
    """A raw connection to memqd: JSON lines out, lines in, exactly as sent."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT_S)
        self.reader = self.sock.makefile("rb")

    def write(self, request):
        self.sock.sendall((json.dumps(request) + "\n").encode())

    def read_line(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("memqd closed the connection")
        return line

    def read(self):
        return json.loads(self.read_line())

    def request(self, request):
        self.write(request)
        return self.read()

    def send(self, topic, msg):
        return self.request({"command": "send", "topic": topic, "msg": msg, "delivery": "all"})

    def incarnation(self):
        return self.request({"command": "hello"})["incarnation"]

    def close(self):
        self.reader.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def replay_lines(port, topic, count):
    """The first `count` lines memqd replays to a subscribe with last_seen -1 (the whole cache), as bytes."""
    with LineConnection(port) as connection:
        assert connection.request({"command": "subscribe", "topic": topic, "last_seen": -1}) == {"success": True}
        return [connection.read_line() for _ in range(count)]


def next_index(port, topic):
    """Sends one message to `topic` and returns the index a subscriber receives it under
    (past the cache replayed to the subscribe)."""
    probe = f"probe of the next index {time.monotonic_ns()}"
    with LineConnection(port) as subscriber, LineConnection(port) as sender:
        assert subscriber.request({"command": "subscribe", "topic": topic}) == {"success": True}
        assert sender.send(topic, probe) == {"success": True}
        while True:
            delivered = json.loads(subscriber.read_line())
            if delivered["msg"] == probe:
                return delivered["index"]


class LogRecord:
    def __init__(self, offset, size, kind, topic, index, flags=0, value=b""):
        self.offset = offset  # of its crc field in the file
        self.size = size      # crc, length and body
        self.kind = kind
        self.topic = topic
        self.index = index    # a message's index, a take's index or a reserve's next index
        self.flags = flags    # a message's flags, a framed message's delivery
        self.value = value    # a message's msg literal, a framed message's frame; b"" for other kinds

    @property
    def msg(self):
        assert self.kind == RECORD_KIND_MESSAGE
        return json.loads(self.value)

    def frame(self):
        """The line memqd sends for this message, rebuilt here from the record's fields."""
        if self.kind == RECORD_KIND_FRAMED_MESSAGE:
            return self.value
        assert self.kind == RECORD_KIND_MESSAGE
        delivery = b"one" if self.flags & MESSAGE_FLAG_DELIVERY_ONE else b"all"
        cache = b', "cache": true' if self.flags & MESSAGE_FLAG_CACHE_TRUE else b""
        topic = json.dumps(self.topic, ensure_ascii=False).encode()
        return (b'{"command": "send", "topic": ' + topic + b', "msg": ' + self.value + b', "delivery": "' +
                delivery + b'"' + cache + b', "index": ' + str(self.index).encode() + b"}\r\n")


def read_log_records(log_bytes):
    """The records of a log after its header; asserts each is whole (no checksum check)."""
    records = []
    offset = LOG_HEADER_BYTES
    while offset < len(log_bytes):
        _crc, body_length = struct.unpack_from("<II", log_bytes, offset)
        body = log_bytes[offset + RECORD_PREFIX_BYTES: offset + RECORD_PREFIX_BYTES + body_length]
        assert len(body) == body_length, f"the record at {offset} runs past the end of the log"
        kind = body[0]
        (topic_length,) = struct.unpack_from("<I", body, 1)
        topic = body[5:5 + topic_length].decode()
        (index,) = struct.unpack_from("<q", body, 5 + topic_length)
        flags, value = 0, b""
        if kind in (RECORD_KIND_MESSAGE, RECORD_KIND_FRAMED_MESSAGE):
            flags = body[5 + topic_length + 8]
            (value_length,) = struct.unpack_from("<I", body, 5 + topic_length + 8 + 1)
            value_start = 5 + topic_length + 8 + 1 + 4
            value = body[value_start:value_start + value_length]
        records.append(LogRecord(offset, RECORD_PREFIX_BYTES + body_length, kind, topic, index, flags, value))
        offset += RECORD_PREFIX_BYTES + body_length
    return records


def ignore_file_size_signal_and_limit(limit_bytes):
    """A preexec_fn: files memqd writes may not grow past `limit_bytes`; writes past it fail with EFBIG."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an ignored signal stays ignored across exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return limit
