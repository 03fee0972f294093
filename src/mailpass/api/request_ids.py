"""``X-Request-Id``: each request's id, the client's own when it sent a sane one, else a new
one; answered back in the same header, and on every log line written while it is answered
(``runtime.logs``), so that a client's report and the server's log meet."""

from __future__ import annotations

import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailpass.runtime.logs import REQUEST_ID

__all__ = ["RequestIds"]

HEADER = b"x-request-id"
MAX_LENGTH = 128


def _given(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == HEADER:
            # Printable ASCII without spaces, so that it cannot forge a log line or a header.
            if 0 < len(value) <= MAX_LENGTH and all(33 <= byte <= 126 for byte in value):
                return str(value.decode("ascii"))
            return None
    return None


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _given(scope) or os.urandom(12).hex()
        token = REQUEST_ID.set(request_id)
        encoded = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (HEADER, encoded)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
