"""A TCP forwarder in front of a real server, to take the network away and give it back.

Two ways to take it away:

- ``cut()`` resets every live connection and closes the port, so a client sees exactly what a
  dead database host looks like (connection reset, then connection refused); ``restore()``
  listens on the same port again. The server behind it never notices anything but clients
  going away.
- ``blackhole(direction)`` is a network partition: the connections open at that moment go
  silent in ``direction`` (``"to_client"``: the server's bytes and its closing of the connection
  never reach the client; ``"to_server"``: the other way; ``"both"``), and nothing is reset or
  closed, so neither side learns anything from the proxy. New connections are forwarded as usual
  (the partition has healed for them), unless ``new_connections=False`` (they are accepted and
  stay silent too, as a connection attempt into a partition does).

Where it must differ from a real partition: the proxy's own kernel acknowledges the bytes it
receives, so a sender into the silence sees its data accepted until the proxy's socket buffers
are full (then a zero window), where a real partition acknowledges nothing and retransmits.
Either way the application gets no answer and no error; TCP keepalives and
``tcp_user_timeout`` on the client side see a peer that acknowledges but never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

DIRECTIONS = ("to_client", "to_server", "both")


class _Link:
    """One forwarded connection: a flow gate per direction (set: bytes flow)."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client, self.server = client, server
        self.flowing = {"to_client": asyncio.Event(), "to_server": asyncio.Event()}
        for gate in self.flowing.values():
            gate.set()

    def silence(self, direction: str) -> None:
        for name, gate in self.flowing.items():
            if direction in (name, "both"):
                gate.clear()

    @property
    def upstream_port(self) -> int:
        """The local port of the connection to the server (``client_port`` in pg_stat_activity)."""
        return self.server.get_extra_info("sockname")[1]


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._silence_new: str | None = None

    @classmethod
    def to(cls, dsn: str) -> CuttableProxy:
        """A proxy in front of the server of ``dsn`` (a PostgreSQL URI); ``dsn_through`` to connect through it."""
        url = urlsplit(dsn)
        return cls(url.hostname or "127.0.0.1", url.port or 5432)

    def dsn_through(self, dsn: str) -> str:
        """``dsn``, pointed at the proxy (started) instead of the server."""
        url = urlsplit(dsn)
        userinfo = url.netloc.rpartition("@")[0]
        return urlunsplit(url._replace(netloc=f"{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"))

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for link in list(self._links):
            for writer in (link.client, link.server):
                writer.transport.abort()  # RST, as from a host that went away
        self._links.clear()
        # Since Python 3.12.1 this waits for every accepted connection to close: abort them first.
        await self._server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    def blackhole(self, direction: str = "both", *, new_connections: bool = True) -> list[int]:
        """Silence every open connection in ``direction``; the upstream ports of the silenced connections."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self._silence_new = None if new_connections else direction
        for link in self._links:
            link.silence(direction)
        return sorted(link.upstream_port for link in self._links)

    async def stop(self) -> None:
        if self._server is not None and self._server.is_serving():
            await self.cut()
        for link in list(self._links):
            for writer in (link.client, link.server):
                writer.transport.abort()
        self._links.clear()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        link = _Link(client_writer, server_writer)
        if self._silence_new is not None:
            link.silence(self._silence_new)
        self._links.add(link)
        for reader, writer, direction in (
            (client_reader, server_writer, "to_server"),
            (server_reader, client_writer, "to_client"),
        ):
            task = asyncio.create_task(self._pipe(reader, writer, link.flowing[direction]))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event) -> None:
        with contextlib.suppress(OSError):
            while True:
                await flowing.wait()  # silenced: read nothing more, forward nothing, close nothing
                data = await reader.read(65536)
                if not flowing.is_set():
                    await asyncio.Event().wait()  # what arrived as the silence began is lost too
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
