"""The tracking routes: the open pixel and the click redirect.

``GET|HEAD /t/o/{token}.gif`` answers a 1x1 GIF that no cache may keep, ``GET|HEAD /t/c/{token}``
a 302 to the link's original URL. Only the token counts: the query string is never read, so no
parameter can send anyone elsewhere. A token that is malformed, altered or not ours answers 404
in the API's error envelope and records nothing.
"""

from __future__ import annotations

import base64
import contextlib

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailpass.clock import utcnow
from mailpass.errors import NotFound
from mailpass.services import Services
from mailpass.tracking.client_ip import IPNetwork, client_address
from mailpass.tracking.recorder import Hit
from mailpass.tracking.rewrite import location_header
from mailpass.tracking.sending import CLICK_PATH, OPEN_PATH

__all__ = ["PIXEL_GIF", "router"]

# A transparent 1x1 GIF89a (42 bytes).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

# Every open must reach us: no browser, proxy or image cache may answer it from a copy.
_NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}

router = APIRouter()


def _hit(request: Request, trusted: tuple[IPNetwork, ...]) -> Hit:
    peer = request.client.host if request.client else None
    return Hit(
        method=request.method,
        ip_address=client_address(peer, request.headers.getlist("x-forwarded-for"), trusted),
        user_agent=request.headers.get("user-agent"),
        at=utcnow(),
    )


async def open_pixel(request: Request) -> Response:
    services: Services = request.app.state.services
    token = services.tracking.verify(request.path_params["token"])
    if token is None or token.kind != "open":
        raise NotFound("unknown tracking link")
    hit = _hit(request, services.tracking.trusted_proxies)
    # A failure to record is logged by the recorder; the image must load regardless.
    with contextlib.suppress(Exception):
        await services.tracking.record_open(token, hit)
    return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_CACHE)


async def click(request: Request) -> Response:
    services: Services = request.app.state.services
    token = services.tracking.verify(request.path_params["token"])
    if token is None or token.kind != "click":
        raise NotFound("unknown tracking link")
    hit = _hit(request, services.tracking.trusted_proxies)
    url = await services.tracking.record_click(token, hit)
    if url is None:
        raise NotFound("unknown tracking link")
    return Response(
        status_code=302,
        headers={"Location": location_header(url), "Cache-Control": "no-store"},
    )


# Plain routes: no body or parameters to validate, so FastAPI's request handling is skipped.
router.add_route(OPEN_PATH, open_pixel, methods=["GET", "HEAD"], include_in_schema=False)
router.add_route(CLICK_PATH, click, methods=["GET", "HEAD"], include_in_schema=False)
