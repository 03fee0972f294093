"""What the SDK's tests share: a proxy that loses answers."""

from __future__ import annotations

import asyncio

__all__ = ["DroppingProxy"]


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
