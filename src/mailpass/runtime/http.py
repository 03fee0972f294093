"""uvicorn's HTTP protocol, with a connection's writes coalesced into one send a loop step, and
a cap on what a request's head may take before it is complete.

httptools keeps every byte of a request's head until its blank line: a client sending header
fields without end made the server hold them all (50 MB in 1.7 s, answered 431 only once the
head was complete, by the API's middleware). The protocol counts what arrives while the head
is incomplete and, past the cap and a margin for the request line, answers 431
HEADERS_TOO_LARGE in the API's envelope and closes the connection. A head that completes
within the cap goes on as before; the middleware then checks the header fields exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any, cast

from mailpass.errors import HeadersTooLarge

__all__ = ["REQUEST_LINE_MARGIN", "CoalescedWrites", "head_too_large_response", "http_protocol"]

REQUEST_LINE_MARGIN = 16 * 1024  # bytes past the header cap for the request line itself


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


def head_too_large_response(max_header_bytes: int) -> bytes:
    """The whole HTTP answer to a head over the cap, in the API's envelope."""
    error = HeadersTooLarge.over(max_header_bytes)
    body = json.dumps(error.envelope(), separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def http_protocol(max_header_bytes: int | None = None) -> type[asyncio.Protocol] | str:
    """httptools' protocol with coalesced writes and, given ``max_header_bytes``, the cap on an
    incomplete head; or uvicorn's choice without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "auto"

    too_large = head_too_large_response(max_header_bytes) if max_header_bytes else b""
    most = (max_header_bytes or 0) + REQUEST_LINE_MARGIN

    # connection_made uses nothing of uvicorn's but the method itself (the loop is the running
    # one, as it is for every protocol callback); the parser's callbacks are uvicorn's, called
    # first, with a note of where the head is.
    class CoalescingHttpToolsProtocol(HttpToolsProtocol):
        head_bytes = 0  # received since the message began, while its head was incomplete
        in_head = True

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            coalesced = CoalescedWrites(transport, asyncio.get_running_loop())
            super().connection_made(cast(asyncio.Transport, coalesced))

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.head_bytes, self.in_head = 0, True

        def on_headers_complete(self) -> None:
            self.in_head = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            counting = bool(too_large) and self.in_head
            if counting:
                self.head_bytes += len(data)
            super().data_received(data)
            over = counting and self.in_head and self.head_bytes > most
            if over and not self.transport.is_closing():
                self.transport.write(too_large)
                self.transport.close()

    return CoalescingHttpToolsProtocol
