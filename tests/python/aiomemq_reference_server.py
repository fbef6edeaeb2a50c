"""A small asyncio server of the aiomemq line protocol, for tests only.

    python3 aiomemq_reference_server.py [port] [cache_size]

It implements PROTOCOL.md (/work/shared/PROTOCOL.md; docs/protocol.md): the
framing, the error replies in their order, the subscribe / unsubscribe / send
templates, per-topic indices and a cache of the last cache_size messages
replayed after last_seen. It knows no memq extension: {"command": "hello"} is
an unknown command, answered "Malformed json message", like an aiomemq server.
The memq suite uses it where it needs a server without identities (the SDK's
resume fallback, tests/python/test_resume_restart.py); it also runs as
--server-cmd. It is not a broker to deploy: no limits on slow consumers.
"""

import asyncio
import collections
import json
import random
import signal
import sys

LINE_BYTES_MAX = 1024 * 1024

OK = {"success": True}
BAD_UTF8 = {"success": False, "reason": "Could not decode input as UTF-8"}
BAD_JSON = {"success": False, "reason": "Could not parse json"}
MALFORMED = {"success": False, "reason": "Malformed json message"}
LINE_TOO_LONG = {"success": False, "reason": "Line too long"}

# command -> (required keys and their checks, optional keys and their checks)
_STRING = lambda value: isinstance(value, str)  # noqa: E731
_INTEGER = lambda value: isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63  # noqa: E731
_BOOLEAN = lambda value: isinstance(value, bool)  # noqa: E731
_DELIVERY = lambda value: value in ("all", "one")  # noqa: E731
TEMPLATES = {
    "subscribe": ({"command": _STRING, "topic": _STRING}, {"last_seen": _INTEGER, "cache": _BOOLEAN}),
    "unsubscribe": ({"command": _STRING, "topic": _STRING}, {}),
    "send": ({"command": _STRING, "topic": _STRING, "msg": _STRING, "delivery": _DELIVERY}, {"cache": _BOOLEAN}),
}


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse(raw):
    """The command object of one line, or the error reply it gets."""
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return None, BAD_UTF8
    try:
        command = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return None, BAD_JSON
    if not isinstance(command, dict) or not isinstance(command.get("command"), str):
        return None, MALFORMED
    template = TEMPLATES.get(command["command"])
    if template is None:
        return None, MALFORMED
    required, optional = template
    if any(key not in command or not check(command[key]) for key, check in required.items()):
        return None, MALFORMED
    if any(key not in required and (key not in optional or not optional[key](value))
           for key, value in command.items()):
        return None, MALFORMED
    return command, None


class Topic:
    def __init__(self, cache_size):
        self.subscribers = set()
        self.next_index = 0
        self.cache = collections.deque(maxlen=cache_size) if cache_size > 0 else None


class Server:
    def __init__(self, cache_size):
        self.cache_size = cache_size
        self.topics = {}
        self.connections = {}  # writer -> the task serving it

    def topic(self, name):
        if name not in self.topics:
            self.topics[name] = Topic(self.cache_size)
        return self.topics[name]

    @staticmethod
    def write(writer, obj):
        writer.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\r\n")

    def execute(self, writer, command):
        topic = self.topic(command["topic"])
        kind = command["command"]
        if kind == "send":
            message = {**command, "index": topic.next_index}
            topic.next_index += 1
            cache = command.get("cache", True)
            if command["delivery"] == "all":
                for subscriber in topic.subscribers:
                    self.write(subscriber, message)
                if cache and topic.cache is not None:
                    topic.cache.append(message)
            elif topic.subscribers:
                self.write(random.choice(list(topic.subscribers)), message)
            elif cache and topic.cache is not None:
                topic.cache.append(message)
            self.write(writer, OK)
        elif kind == "subscribe":
            topic.subscribers.add(writer)
            self.write(writer, OK)
            if command.get("cache", True) and topic.cache is not None:
                last_seen = command.get("last_seen", -1)
                replayed = [message for message in topic.cache if message["index"] > last_seen]
                for message in replayed:
                    self.write(writer, message)
                kept = [m for m in topic.cache if not (m["delivery"] == "one" and m in replayed)]
                topic.cache.clear()
                topic.cache.extend(kept)
        else:
            topic.subscribers.discard(writer)
            self.write(writer, OK)

    async def serve(self, reader, writer):
        self.connections[writer] = asyncio.current_task()
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return  # the client went away (a partial last line is dropped)
                except asyncio.LimitOverrunError:
                    self.write(writer, LINE_TOO_LONG)
                    await writer.drain()
                    return
                line = raw.strip()  # ASCII whitespace, the \r\n included
                if not line:
                    continue
                if line == b"quit":
                    return
                command, error = parse(line)
                if error is not None:
                    self.write(writer, error)
                else:
                    self.execute(writer, command)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            for topic in self.topics.values():
                topic.subscribers.discard(writer)
            self.connections.pop(writer, None)
            writer.close()


async def main(port, cache_size):
    server = Server(cache_size)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", port, limit=LINE_BYTES_MAX + 2)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    listener.close()
    serving = list(server.connections.items())
    for writer, _ in serving:  # a stop closes every connection, as a process exit would
        writer.close()
    await asyncio.gather(*(task for _, task in serving), return_exceptions=True)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    asyncio.run(main(int(arguments[0]) if arguments else 7000, int(arguments[1]) if len(arguments) > 1 else 100))
