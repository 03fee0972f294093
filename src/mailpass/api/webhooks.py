"""``/api/v1/webhooks``: where an account's messages' events are POSTed, for keys with the
``webhooks`` permission. A new endpoint's signing secret is in the answer that creates it, and
never again."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailpass.api.auth import authenticate
from mailpass.api.mail import DirectRoute, services_of
from mailpass.api.openapi import (
    CREATE_WEBHOOK_OPERATION,
    DELETE_WEBHOOK_OPERATION,
    ENABLE_WEBHOOK_OPERATION,
    LIST_WEBHOOK_DELIVERIES_OPERATION,
    LIST_WEBHOOKS_OPERATION,
    TEST_WEBHOOK_OPERATION,
)
from mailpass.api.params import path_id, query_integer
from mailpass.api.responses import success_response
from mailpass.clock import isoformat
from mailpass.errors import NotFound, ValidationError
from mailpass.messages.request import parse_json_body
from mailpass.services import Services
from mailpass.webhooks.models import Delivery, Endpoint
from mailpass.webhooks.request import EndpointFields
from mailpass.webhooks.service import TooManyEndpoints

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/webhooks", route_class=DirectRoute)

PERMISSION = "webhooks"
WHAT = "webhook endpoint"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def endpoint_answer(endpoint: Endpoint) -> dict[str, object]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "failing_since": isoformat(endpoint.failing_since) if endpoint.failing_since else None,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": isoformat(endpoint.created_at),
    }


def delivery_answer(delivery: Delivery) -> dict[str, object]:
    return {
        "webhook_id": delivery.webhook_id,
        "event_type": delivery.event_type,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "next_attempt_at": isoformat(delivery.next_attempt_at)
        if delivery.next_attempt_at and delivery.state == "pending"
        else None,
        "delivered_at": isoformat(delivery.delivered_at) if delivery.delivered_at else None,
        "created_at": isoformat(delivery.created_at),
    }


@router.get("", openapi_extra=LIST_WEBHOOKS_OPERATION)
async def list_endpoints(request: Request) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.webhooks.find_key, PERMISSION)
    found = await services.webhooks.endpoints(key.user_id)
    return success_response({"webhooks": [endpoint_answer(e) for e in found]})


@router.post("", openapi_extra=CREATE_WEBHOOK_OPERATION)
async def create_endpoint(request: Request) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.webhooks.find_key, PERMISSION)
    fields = parse_json_body(await request.body(), EndpointFields)
    try:
        endpoint, secret = await services.webhooks.create(
            key.user_id, fields.url, fields.event_types
        )
    except TooManyEndpoints as exc:
        raise ValidationError(str(exc)) from None
    return success_response({**endpoint_answer(endpoint), "secret": secret})


@router.delete("/{endpoint_id}", openapi_extra=DELETE_WEBHOOK_OPERATION)
async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.webhooks.find_key, PERMISSION)
    number = path_id(endpoint_id, WHAT)
    if not await services.webhooks.delete(key.user_id, number):
        raise NotFound(f"no {WHAT} {endpoint_id}")
    return success_response({"id": number, "deleted": True})


@router.post("/{endpoint_id}/test", openapi_extra=TEST_WEBHOOK_OPERATION)
async def send_test_event(request: Request, endpoint_id: str) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.webhooks.find_key, PERMISSION)
    number = path_id(endpoint_id, WHAT)
    if not await services.webhooks.send_test(key.user_id, number):
        raise NotFound(f"no {WHAT} {endpoint_id}")
    return success_response({"id": number, "queued": True})


@router.post("/{endpoint_id}/enable", openapi_extra=ENABLE_WEBHOOK_OPERATION)
async def enable_endpoint(request: Request, endpoint_id: str) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.webhooks.find_key, PERMISSION)
    number = path_id(endpoint_id, WHAT)
    if not await services.webhooks.enable(key.user_id, number):
        raise NotFound(f"no {WHAT} {endpoint_id}")
    return success_response(endpoint_answer(await _own_endpoint(services, key.user_id, number)))


@router.get("/{endpoint_id}/deliveries", openapi_extra=LIST_WEBHOOK_DELIVERIES_OPERATION)
async def list_deliveries(request: Request, endpoint_id: str) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.webhooks.find_key, PERMISSION)
    number = path_id(endpoint_id, WHAT)
    limit = query_integer(request, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT
    await _own_endpoint(services, key.user_id, number)
    found = await services.webhooks.deliveries(key.user_id, number, limit)
    return success_response({"deliveries": [delivery_answer(d) for d in found]})


async def _own_endpoint(services: Services, user_id: int, endpoint_id: int) -> Endpoint:
    for endpoint in await services.webhooks.endpoints(user_id):
        if endpoint.id == endpoint_id:
            return endpoint
    raise NotFound(f"no {WHAT} {endpoint_id}")
