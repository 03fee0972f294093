"""``/api/v1/suppressions``: an account's suppression list, for keys with the
``suppressions`` permission. Addresses are matched whatever their case."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailpass.api.auth import authenticate
from mailpass.api.mail import DirectRoute, services_of
from mailpass.api.openapi import (
    ADD_SUPPRESSION_OPERATION,
    LIST_SUPPRESSIONS_OPERATION,
    REMOVE_SUPPRESSION_OPERATION,
)
from mailpass.api.params import query_integer
from mailpass.api.responses import success_response
from mailpass.clock import isoformat
from mailpass.core.addresses import AddressError
from mailpass.errors import NotFound, ValidationError
from mailpass.messages.request import parse_json_body
from mailpass.suppressions.models import Suppression
from mailpass.suppressions.request import SuppressionFields, address_to_suppress

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/suppressions", route_class=DirectRoute)

PERMISSION = "suppressions"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
LIST_PARAMETERS = frozenset({"limit", "cursor", "search"})


def suppression_answer(suppression: Suppression) -> dict[str, object]:
    return {
        "email": suppression.email,
        "reason": suppression.reason,
        "message_id": suppression.message_id,
        "created_at": isoformat(suppression.created_at),
    }


@router.get("", openapi_extra=LIST_SUPPRESSIONS_OPERATION)
async def list_suppressions(request: Request) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.suppressions.find_key, PERMISSION)
    unknown = sorted(set(request.query_params) - LIST_PARAMETERS)
    if unknown:  # a typo (`serach`) would list everything: said, not ignored
        raise ValidationError(
            "unknown query parameters",
            details=[
                {"field": name, "message": "is not a parameter of this list"} for name in unknown
            ],
        )
    limit = query_integer(request, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT
    after = query_integer(request, "cursor", 1, None)
    searches = request.query_params.getlist("search")
    if len(searches) > 1:
        raise ValidationError(
            "invalid search", details=[{"field": "search", "message": "is given more than once"}]
        )
    search = searches[0] if searches else None
    found, cursor = await services.suppressions.page(
        key.user_id, search=search, limit=limit, after=after
    )
    return success_response(
        {
            "suppressions": [suppression_answer(item) for item in found],
            "next_cursor": str(cursor) if cursor is not None else None,
        }
    )


@router.post("", openapi_extra=ADD_SUPPRESSION_OPERATION)
async def add_suppression(request: Request) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.suppressions.find_key, PERMISSION)
    fields = parse_json_body(await request.body(), SuppressionFields)
    email = _address(fields.email)
    added = await services.suppressions.add(key.user_id, email, fields.reason)
    return success_response({"email": email.lower(), "reason": fields.reason, "added": added})


@router.delete("/{email:path}", openapi_extra=REMOVE_SUPPRESSION_OPERATION)
async def remove_suppression(request: Request, email: str) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.suppressions.find_key, PERMISSION)
    if not await services.suppressions.remove(key.user_id, email):
        raise NotFound(f"{email} is not on the suppression list")
    return success_response({"email": email.lower(), "removed": True})


def _address(raw: str) -> str:
    try:
        return address_to_suppress(raw)
    except AddressError as exc:
        raise ValidationError(
            "the address is invalid", details=[{"field": "email", "message": str(exc)}]
        ) from None
