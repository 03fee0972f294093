"""TCP between a test and a server it wants to misbehave: bytes piped one way, a proxy
the test can cut and restore (the database going away and coming back, as a restart or a
failover looks from MailPass), and one that loses answers (a client's view of a dropped
connection after its request was done)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["CuttableProxy", "DroppingProxy", "pipe"]


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until either end closes; then abort ``writer``."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.transport.abort()


class CuttableProxy:
    """Forwards 127.0.0.1:``port`` to a target until ``cut()``: then every connection through it
    is reset and new ones are refused, until ``restore()``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._forward, "127.0.0.1", self.port or None, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._open |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await pipe(reader, writer)
        finally:
            self._open.discard(writer)


class DroppingProxy:
    """A TCP proxy in front of the server that, for its first ``drop`` connections, lets the
    request through, waits until the server has answered, and then cuts the client off
    without passing the answer on: the request was done, the client cannot know."""

    def __init__(self, upstream_port: int, *, drop: int) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        dropping = self.drop > 0
        self.drop -= int(dropping)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                target.write(data)
                await target.drain()

        to_server = asyncio.create_task(pump(reader, up_writer))
        try:
            if dropping:
                await up_reader.read(1)  # the server has answered
                writer.transport.abort()
            else:
                await pump(up_reader, writer)
        except ConnectionError:
            pass
        finally:
            to_server.cancel()
            up_writer.close()
            writer.close()
