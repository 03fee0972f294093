"""``Authorization: Bearer <key>``: find the key, refuse revoked ones, check the permission.

The key is read in the same query as what the endpoint needs next (the default provider, the
message asked about): ``key_hash_of`` the request, one read by the service, then ``admit``
here, before the endpoint tells anything it read. Authorisation is the API's: the services
return what they found and never decide who may see it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mailpass.accounts.keys import ApiKey, hash_key, looks_like_key
from mailpass.api.responses import error_response
from mailpass.core.client_ip import request_client_address
from mailpass.errors import Forbidden, RateLimited, Unauthorized
from mailpass.messages.results import SendingAccount
from mailpass.services import Services

__all__ = [
    "ThrottledAddresses",
    "admit",
    "authenticate",
    "authenticate_sender",
    "client_address_of",
    "key_hash_of",
]

API_PREFIX = "/api/"  # the requests authenticated with a key

T = TypeVar("T")


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
    retry_after = services.key_rate.take(key.id)
    if retry_after is not None:
        raise RateLimited(
            f"this API key's limit of {services.key_rate.per_second:g} requests a second is "
            f"reached; retry in {retry_after} second{'' if retry_after == 1 else 's'}",
            retry_after=retry_after,
        )
    await services.key_usage.record(key.id)
    return key


async def authenticate(
    request: Request,
    services: Services,
    lookup: Callable[[str], Awaitable[tuple[ApiKey | None, T]]],
    permission: str,
) -> tuple[ApiKey, T]:
    """The request's key, admitted for ``permission``, and what ``lookup`` read with it (by
    the key's hash, in the same query).

    A request answered 401 counts against its client address (``accounts.throttle``); an
    address with too many is answered 429 RATE_LIMITED before it even reaches the endpoint
    (``ThrottledAddresses``).
    """
    throttle = services.auth_throttle
    try:
        key, found = await lookup(key_hash_of(request))
        return await admit(services, key, permission), found
    except Unauthorized:
        await throttle.failed(client_address_of(request, services))
        raise


async def authenticate_sender(
    request: Request, services: Services
) -> tuple[ApiKey, SendingAccount]:
    """The request's key, admitted for the mail permission, and what sending needs of its
    account (its default provider, whether it suppresses any address), read in one query."""
    return await authenticate(request, services, services.mail.find_sender, "mail")


def client_address_of(request: Request, services: Services) -> str:
    """The client's address, through the trusted proxies' ``X-Forwarded-For``."""
    return _address(request.scope, services)


def _address(scope: Scope, services: Services) -> str:
    return request_client_address(scope, services.tracking.trusted_proxies) or "unknown"


class ThrottledAddresses:
    """Answers 429 RATE_LIMITED to an API request from an address that failed authentication
    too often (``accounts.throttle``), first thing: a flood of wrong keys then costs the
    server a header look-up and a short answer per request, not a trip through the endpoint,
    and a valid key's requests from elsewhere keep their latency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            services: Services | None = getattr(scope["app"].state, "services", None)
            if services is not None and services.auth_throttle.blocking:
                retry_after = services.auth_throttle.retry_after(_address(scope, services))
                if retry_after is not None:
                    limited = RateLimited(
                        "too many requests from this address failed authentication; "
                        f"retry in {retry_after} seconds",
                        retry_after=retry_after,
                    )
                    await error_response(limited)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
