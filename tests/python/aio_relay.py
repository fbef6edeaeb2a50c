"""A TCP relay for the memq.aio tests, run in the test's own event loop: it
listens on a free loopback port (with TLS if given an ssl.SSLContext) and
relays every connection to a broker's port, byte for byte.

The tests use it to stand where memqd cannot: as a TLS endpoint in front of
it, and as a network that breaks (cut() closes every relayed connection;
while `gate` is cleared, new connections are accepted but not relayed yet).
"""

import asyncio
import ssl


class Relay:
    def __init__(self, target_port, ssl_context=None):
        self.target_port = target_port
        self.ssl_context = ssl_context
        self.gate = asyncio.Event()
        self.gate.set()
        self.port = None
        self._server = None
        self._writers = set()

    async def start(self):
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self):
        """Closes every relayed connection, both ways."""
        for writer in list(self._writers):
            writer.close()

    async def stop(self):
        self.cut()
        self._server.close()
        await self._server.wait_closed()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc_info):
        await self.stop()

    async def _on_client(self, client_reader, client_writer):
        self._writers.add(client_writer)
        await self.gate.wait()
        broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.add(broker_writer)
        await asyncio.gather(self._pipe(client_reader, broker_writer), self._pipe(broker_reader, client_writer))

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
