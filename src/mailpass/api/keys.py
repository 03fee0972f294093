"""``/api/v1/keys``: the account's API keys, for keys with the ``keys`` permission. A new key
is in the answer that creates it, and never again; a key grants at most what the key that made
it holds, and a test key makes only test keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import Response

from mailpass.accounts.keys import ALL_PERMISSIONS, ApiKey
from mailpass.accounts.service import AccountError
from mailpass.api.auth import authenticate
from mailpass.api.mail import DirectRoute, services_of
from mailpass.api.openapi import (
    CREATE_KEY_OPERATION,
    LIST_KEYS_OPERATION,
    REVOKE_KEY_OPERATION,
)
from mailpass.api.params import path_id
from mailpass.api.responses import success_response
from mailpass.clock import isoformat
from mailpass.core.text import check_control_free
from mailpass.errors import Forbidden, NotFound, ValidationError
from mailpass.messages.request import parse_json_body

__all__ = ["key_answer", "router"]

router = APIRouter(prefix="/api/v1/keys", route_class=DirectRoute)

PERMISSION = "keys"
WHAT = "API key"


class KeyFields(BaseModel):
    """A new key. Without ``permissions`` it gets those of the key that makes it; without
    ``test``, that key's kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="default", min_length=1, max_length=100)
    permissions: list[str] | None = Field(default=None, max_length=len(ALL_PERMISSIONS))
    test: bool | None = None

    _control_free = field_validator("name")(check_control_free)


def key_answer(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "permissions": [name for name in ALL_PERMISSIONS if name in key.permissions],
        "test": key.is_test,
        "created_at": isoformat(key.created_at),
        "last_used_at": isoformat(key.last_used_at) if key.last_used_at else None,
        "revoked_at": isoformat(key.revoked_at) if key.revoked_at else None,
    }


@router.get("", openapi_extra=LIST_KEYS_OPERATION)
async def list_keys(request: Request) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.keys.find_key, PERMISSION)
    found = await services.keys.keys(key.user_id)
    return success_response({"keys": [key_answer(k) for k in found]})


@router.post("", openapi_extra=CREATE_KEY_OPERATION)
async def create_key(request: Request) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.keys.find_key, PERMISSION)
    fields = parse_json_body(await request.body(), KeyFields)
    permissions = key.permissions if fields.permissions is None else frozenset(fields.permissions)
    unknown = sorted(permissions - set(ALL_PERMISSIONS))
    if unknown:
        raise ValidationError(
            "unknown permissions",
            details=[
                {
                    "field": "permissions",
                    "message": f"{', '.join(unknown)} is not one of {', '.join(ALL_PERMISSIONS)}",
                }
            ],
        )
    beyond = [name for name in ALL_PERMISSIONS if name in permissions - key.permissions]
    if beyond:
        raise Forbidden(
            f"a key grants only permissions the key making it holds; this one lacks "
            f"{', '.join(beyond)}"
        )
    test = key.is_test if fields.test is None else fields.test
    if key.is_test and not test:
        raise Forbidden("a test key makes only test keys")
    try:
        created, secret = await services.keys.create(
            key.user_id, name=fields.name, permissions=permissions, test=test
        )
    except AccountError as exc:
        raise ValidationError("the key cannot be made", details=[{"message": str(exc)}]) from None
    return success_response({**key_answer(created), "key": secret})


@router.delete("/{key_id}", openapi_extra=REVOKE_KEY_OPERATION)
async def revoke_key(request: Request, key_id: str) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.keys.find_key, PERMISSION)
    number = path_id(key_id, WHAT)
    if number == key.id:  # an automation revoking its own key would lock itself out
        raise Forbidden("a key cannot revoke itself; revoke it with another key or the dashboard")
    revoked = await services.keys.revoke(key.user_id, number)
    if revoked is None:
        raise NotFound(f"no active {WHAT} {key_id}")
    return success_response(key_answer(revoked))
