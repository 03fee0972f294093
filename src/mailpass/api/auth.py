"""``Authorization: Bearer <key>``: find the key, refuse revoked ones, check the permission.

The key is read in the same query as what the endpoint needs next (the default provider, the
message asked about): ``key_hash_of`` the request, one read by the service, then ``admit``
here, before the endpoint tells anything it read. Authorisation is the API's: the services
return what they found and never decide who may see it.
"""

from __future__ import annotations

from starlette.requests import Request

from mailpass.accounts.keys import ApiKey, hash_key, looks_like_key
from mailpass.errors import Forbidden, Unauthorized
from mailpass.providers.models import Provider
from mailpass.services import Services

__all__ = ["admit", "authenticate_sender", "key_hash_of"]


def key_hash_of(request: Request) -> str:
    """The hash of the request's bearer token, which is looked up by it."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
    if not looks_like_key(token):
        raise Unauthorized("invalid API key")
    return hash_key(token)


async def admit(services: Services, key: ApiKey | None, permission: str) -> ApiKey:
    """``key`` (found by ``key_hash_of``) when it may be used for ``permission``."""
    if key is None:
        raise Unauthorized("invalid API key")
    if key.revoked_at is not None:
        raise Unauthorized("this API key has been revoked")
    if permission not in key.permissions:
        raise Forbidden(f"this API key lacks the `{permission}` permission")
    await services.key_usage.record(key.id)
    return key


async def authenticate_sender(
    request: Request, services: Services
) -> tuple[ApiKey, Provider | None]:
    """The request's key, admitted for the mail permission, and its account's default
    provider (None when there is none), read in one query."""
    key, provider = await services.mail.find_sender(key_hash_of(request))
    return await admit(services, key, "mail"), provider
