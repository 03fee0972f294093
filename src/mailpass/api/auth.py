"""``Authorization: Bearer <key>``: find the key, refuse revoked ones, check the permission."""

from __future__ import annotations

from starlette.requests import Request

from mailpass.accounts import repository
from mailpass.accounts.keys import ApiKey, hash_key, looks_like_key
from mailpass.errors import Forbidden, Unauthorized
from mailpass.services import Services

__all__ = ["authenticate"]


async def authenticate(request: Request, services: Services, permission: str) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
    if not looks_like_key(token):
        raise Unauthorized("invalid API key")
    key = await repository.find_key_by_hash(services.database, hash_key(token))
    if key is None:
        raise Unauthorized("invalid API key")
    if key.revoked_at is not None:
        raise Unauthorized("this API key has been revoked")
    if permission not in key.permissions:
        raise Forbidden(f"this API key lacks the `{permission}` permission")
    await services.key_usage.record(key.id)
    return key
