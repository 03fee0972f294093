"""The seed's mail endpoints: ``/send``, ``/send-batch`` and ``/status/{message_id}``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailpass.api.auth import authenticate
from mailpass.api.responses import success_response
from mailpass.messages.request import BatchFields, MessageFields, parse_json_body
from mailpass.services import Services

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/mail")


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


@router.post("/send")
async def send(request: Request) -> Response:
    services = services_of(request)
    key = await authenticate(request, services, "mail")
    fields = parse_json_body(await request.body(), MessageFields)
    sent = await services.mail.send_now(key, fields)
    return success_response(sent.as_wire())


@router.post("/send-batch")
async def send_batch(request: Request) -> Response:
    services = services_of(request)
    key = await authenticate(request, services, "mail")
    batch = parse_json_body(await request.body(), BatchFields)
    return success_response(await services.mail.queue_batch(key, batch))


@router.get("/status/{message_id:path}")
async def status(request: Request, message_id: str) -> Response:
    services = services_of(request)
    key = await authenticate(request, services, "mail")
    return success_response(await services.mail.status(key, message_id))
