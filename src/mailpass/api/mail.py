"""The seed's mail endpoints, ``/send``, ``/send-batch`` and ``/status/{message_id}``, and
``/cancel/{message_id}`` for a scheduled (or still queued) message."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from mailpass.accounts.keys import ApiKey
from mailpass.api.auth import authenticate, authenticate_sender
from mailpass.api.idempotency import respond_idempotently
from mailpass.api.openapi import (
    CANCEL_OPERATION,
    SEND_BATCH_OPERATION,
    SEND_OPERATION,
    STATUS_OPERATION,
)
from mailpass.api.responses import success_response
from mailpass.api.wire import batch_answer, cancel_answer, send_answer, status_answer
from mailpass.errors import NotFound
from mailpass.messages.request import MessageFields, parse_batch, parse_json_body
from mailpass.messages.results import MessageRecord, StatusLookup
from mailpass.services import Services

__all__ = ["DirectRoute", "router"]


class DirectRoute(APIRoute):
    """A route whose endpoint takes the request and its path parameters (as strings) and
    returns a Response itself, called without FastAPI's dependency resolution.

    The endpoints read and validate their bodies themselves; resolving ``request: Request``
    and a ``str`` path parameter through FastAPI's dependency machinery cost ~10 % of a
    /status request. FastAPI still builds the OpenAPI document from the signature.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            response: Response = await endpoint(request, **request.path_params)
            return response

        return handle


router = APIRouter(prefix="/api/v1/mail", route_class=DirectRoute)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@router.post("/send", openapi_extra=SEND_OPERATION)
async def send(request: Request) -> Response:
    services = services_of(request)
    key, account = await authenticate_sender(request, services)
    body = await request.body()

    async def send_message() -> Response:
        fields = parse_json_body(body, MessageFields)
        sent = await services.mail.send_now(key, account, fields)
        return success_response(send_answer(sent))

    return await respond_idempotently(request, services.database, key, body, send_message)


@router.post("/send-batch", openapi_extra=SEND_BATCH_OPERATION)
async def send_batch(request: Request) -> Response:
    services = services_of(request)
    key, account = await authenticate_sender(request, services)
    body = await request.body()

    async def queue_messages() -> Response:
        batch = parse_batch(body)
        return success_response(batch_answer(await services.mail.queue_batch(key, account, batch)))

    return await respond_idempotently(request, services.database, key, body, queue_messages)


@router.get("/status/{message_id:path}", openapi_extra=STATUS_OPERATION)
async def status(request: Request, message_id: str) -> Response:
    message, found = await _find_message(request, message_id)
    return success_response(status_answer(message, found.events))


@router.post("/cancel/{message_id:path}", openapi_extra=CANCEL_OPERATION)
async def cancel(request: Request, message_id: str) -> Response:
    message, _found = await _find_message(request, message_id)
    status = await services_of(request).mail.cancel(message)
    return success_response(cancel_answer(message, status))


async def _find_message(request: Request, message_id: str) -> tuple[MessageRecord, StatusLookup]:
    """The request's key, admitted for ``mail``, and its account's message (NOT_FOUND, as for
    an unknown one, when it is another account's)."""
    services = services_of(request)

    async def lookup(key_hash: str) -> tuple[ApiKey | None, StatusLookup]:
        found = await services.mail.find_status(key_hash, message_id)
        return found.key, found

    # The key is admitted before anything about the message is told.
    _key, found = await authenticate(request, services, lookup, "mail")
    if found.message is None:
        shown = found.message_id
        raise NotFound(f"no message {shown!r}" if "\x00" in shown else f"no message {shown}")
    return found.message, found
