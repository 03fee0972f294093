"""uvicorn's HTTP protocol, with a connection's writes coalesced into one send a loop step."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

__all__ = ["CoalescedWrites", "http_protocol"]


class CoalescedWrites:
    """A connection's transport whose writes made in one step of the event loop go out
    together, in one ``send``, at the end of that step.

    uvicorn writes a response's head and its body separately, so every response cost two
    sends; on loopback each send also wakes the reader. Those writes were the largest single
    cost of a /status request (21 % of its samples). Joined they are 18 %: one send costs
    nearly what two did. Everything but writing and closing is the transport's own.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def http_protocol() -> type[asyncio.Protocol] | str:
    """httptools' protocol with coalesced writes, or uvicorn's choice without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    # Only connection_made is overridden, and it uses nothing of uvicorn's but the method itself
    # (the loop is the running one, as it is for every protocol callback).
    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            coalesced = CoalescedWrites(transport, asyncio.get_running_loop())
            super().connection_made(cast(asyncio.Transport, coalesced))

    return CoalescingHttpToolsProtocol
