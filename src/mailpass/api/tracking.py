"""The tracking routes: the open pixel and the click redirect.

``GET|HEAD /t/o/{token}.gif`` answers a 1x1 GIF that no cache may keep, ``GET|HEAD /t/c/{token}``
a 302 to the link's original URL. Only the token counts: the query string is never read, so no
parameter can send anyone elsewhere. A token that is malformed, altered or not ours answers 404
in the API's error envelope and records nothing.
"""

from __future__ import annotations

import base64
import contextlib

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mailpass.api.responses import error_response
from mailpass.clock import utcnow
from mailpass.core.client_ip import IPNetwork, request_client_address
from mailpass.core.statuses import EventType
from mailpass.errors import NotFound
from mailpass.services import Services
from mailpass.tracking.recorder import Hit
from mailpass.tracking.rewrite import location_header
from mailpass.tracking.sending import CLICK_PATH, OPEN_PATH

__all__ = ["PIXEL_GIF", "OpenPixel", "PixelInFront", "install"]

# A transparent 1x1 GIF89a (42 bytes).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

# Every open must reach us: no browser, proxy or image cache may answer it from a copy.
_PIXEL_HEADERS = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(PIXEL_GIF)).encode()),
    (b"cache-control", b"no-store, no-cache, must-revalidate, private, max-age=0"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
]


def _hit(scope: Scope, trusted: tuple[IPNetwork, ...]) -> Hit:
    headers = Headers(scope=scope)
    return Hit(
        method=scope["method"],
        ip_address=request_client_address(scope, trusted),
        user_agent=headers.get("user-agent"),
        at=utcnow(),
    )


class OpenPixel:
    """``GET|HEAD /t/o/{token}.gif`` as a bare ASGI app: the route's endpoint, and answered in
    front of the framework by ``PixelInFront``.

    The pixel is the route a popular mail makes busiest, and it needs nothing of the framework:
    no body, no parameters, no dependencies. Through FastAPI's middleware and router a hit cost
    about twice the CPU of what it does itself (checking the token, taking the hit).
    """

    prefix, suffix = OPEN_PATH.split("{token}")

    def __init__(self, app: Starlette) -> None:
        self.app = app

    @classmethod
    def token_in_path(cls, scope: Scope) -> str | None:
        """The token of a GET or HEAD of a pixel's path, else None."""
        path: str = scope["path"]
        if scope["method"] not in ("GET", "HEAD") or not path.startswith(cls.prefix):
            return None
        token = path[len(cls.prefix) :]
        if not token.endswith(cls.suffix) or "/" in token:
            return None
        return token[: -len(cls.suffix)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As the route's endpoint, for an app without ``PixelInFront`` in front of it."""
        await self.answer(scope, receive, send, scope["path_params"]["token"])

    async def answer(self, scope: Scope, receive: Receive, send: Send, raw_token: str) -> None:
        services: Services = self.app.state.services
        token = services.tracking.verify(raw_token)
        if token is None or token.kind != EventType.OPEN:
            await error_response(NotFound("unknown tracking link"))(scope, receive, send)
            return
        hit = _hit(scope, services.tracking.trusted_proxies)
        # A failure to record is logged by the recorder; the image must load regardless.
        with contextlib.suppress(Exception):
            await services.tracking.record_open(token, hit)
        await send({"type": "http.response.start", "status": 200, "headers": _PIXEL_HEADERS})
        await send({"type": "http.response.body", "body": PIXEL_GIF})


class PixelInFront:
    """A middleware that answers open pixels itself, before any other middleware runs."""

    def __init__(self, app: ASGIApp, *, pixel: OpenPixel) -> None:
        self.app = app
        self.pixel = pixel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = self.pixel.token_in_path(scope) if scope["type"] == "http" else None
        if token is None:
            await self.app(scope, receive, send)
        else:
            await self.pixel.answer(scope, receive, send, token)


async def click(request: Request) -> Response:
    services: Services = request.app.state.services
    token = services.tracking.verify(request.path_params["token"])
    if token is None or token.kind != EventType.CLICK:
        raise NotFound("unknown tracking link")
    hit = _hit(request.scope, services.tracking.trusted_proxies)
    url = await services.tracking.record_click(token, hit)
    if url is None:
        raise NotFound("unknown tracking link")
    return Response(
        status_code=302,
        headers={"Location": location_header(url), "Cache-Control": "no-store"},
    )


def install(app: FastAPI) -> None:
    """The tracking routes; call it after the app's other middleware is added, so that open
    pixels are answered in front of all of it."""
    pixel = OpenPixel(app)
    # Plain routes: no body or parameters to validate, so FastAPI's request handling is skipped.
    app.router.routes.append(
        Route(OPEN_PATH, pixel, methods=["GET", "HEAD"], include_in_schema=False)
    )
    app.router.add_route(CLICK_PATH, click, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_middleware(PixelInFront, pixel=pixel)
