"""``client.providers``, ``client.keys`` and ``client.webhooks``: the management API, for keys
with the ``providers``, ``keys`` and ``webhooks`` permissions.

Each call is built once (``_Calls``: the request and how its answer is read) and made by a
blocking and an ``async`` resource class, so that the two cannot drift apart.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from mailpass.client._base import ApiCall
from mailpass.client._models import _required_time, _time


class _Requester(Protocol):
    """What a resource needs of ``Client``: its calls, made with its retries."""

    def _request(self, call: ApiCall) -> tuple[dict[str, Any], bool]: ...


class _AsyncRequester(Protocol):
    """What a resource needs of ``AsyncClient``."""

    async def _request(self, call: ApiCall) -> tuple[dict[str, Any], bool]: ...


__all__ = [
    "ApiKey",
    "AsyncKeys",
    "AsyncProviders",
    "AsyncWebhooks",
    "Keys",
    "Provider",
    "ProviderTest",
    "Providers",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Webhooks",
]

T = TypeVar("T")
PROVIDERS = "api/v1/providers"
KEYS = "api/v1/keys"
WEBHOOKS = "api/v1/webhooks"


@dataclass(frozen=True, slots=True)
class Provider:
    """One of the account's SMTP providers. Its password and webhook key are never returned:
    ``password_set`` and ``webhook_key_set`` say whether they are stored."""

    id: int
    name: str
    kind: str  # smtp, ses, sendgrid, mailgun, direct
    host: str
    port: int
    security: str  # starttls, tls, none
    username: str | None
    password_set: bool
    region: str | None
    from_email: str | None
    from_name: str | None
    hourly_limit: int | None
    daily_limit: int | None
    default: bool
    track_opens: bool
    track_clicks: bool
    webhook_url: str | None  # where the provider posts its events (ses, sendgrid, mailgun)
    webhook_key_set: bool
    down_until: datetime | None  # marked down after failing in a row: its mail waits
    down_reason: str | None
    created_at: datetime
    updated_at: datetime
    fallbacks: tuple[int, ...] = ()  # the providers its mail fails over to, in order

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Provider:
        return cls(
            id=int(data["id"]),
            name=data["name"],
            kind=data["kind"],
            host=data["host"],
            port=int(data["port"]),
            security=data["security"],
            username=data.get("username"),
            password_set=bool(data.get("password_set")),
            region=data.get("region"),
            from_email=data.get("from_email"),
            from_name=data.get("from_name"),
            hourly_limit=data.get("hourly_limit"),
            daily_limit=data.get("daily_limit"),
            default=bool(data.get("default")),
            track_opens=bool(data.get("track_opens")),
            track_clicks=bool(data.get("track_clicks")),
            webhook_url=data.get("webhook_url"),
            webhook_key_set=bool(data.get("webhook_key_set")),
            down_until=_time(data.get("down_until")),
            down_reason=data.get("down_reason"),
            created_at=_required_time(data["created_at"]),
            updated_at=_required_time(data["updated_at"]),
            fallbacks=tuple(int(item) for item in data.get("fallbacks") or ()),
        )


@dataclass(frozen=True, slots=True)
class ProviderTest:
    """How a provider's connection test went: ``ok``, or ``error`` saying why not, and the
    SMTP conversation (credentials never appear in it)."""

    ok: bool
    error: str | None
    transcript: tuple[str, ...]

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ProviderTest:
        return cls(
            ok=bool(data["ok"]),
            error=data.get("error"),
            transcript=tuple(data.get("transcript") or ()),
        )


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One of the account's API keys. ``key``, the key itself, is there only in the answer that
    made it."""

    id: int
    name: str
    prefix: str
    permissions: tuple[str, ...]
    test: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    key: str | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ApiKey:
        return cls(
            id=int(data["id"]),
            name=data["name"],
            prefix=data["prefix"],
            permissions=tuple(data.get("permissions") or ()),
            test=bool(data.get("test")),
            created_at=_required_time(data["created_at"]),
            last_used_at=_time(data.get("last_used_at")),
            revoked_at=_time(data.get("revoked_at")),
            key=data.get("key"),
        )


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """Where the account's events are POSTed. ``secret`` (``whsec_…``, for
    ``mailpass.webhooks.verify``) is there only in the answer that made it."""

    id: int
    url: str
    event_types: tuple[str, ...]  # empty: every type
    enabled: bool
    failing_since: datetime | None
    disabled_reason: str | None
    created_at: datetime
    secret: str | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> WebhookEndpoint:
        return cls(
            id=int(data["id"]),
            url=data["url"],
            event_types=tuple(data.get("event_types") or ()),
            enabled=bool(data.get("enabled")),
            failing_since=_time(data.get("failing_since")),
            disabled_reason=data.get("disabled_reason"),
            created_at=_required_time(data["created_at"]),
            secret=data.get("secret"),
        )


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event's delivery to an endpoint: its ``webhook-id``, state and last answer."""

    webhook_id: str
    event_type: str
    state: str  # pending, delivered, failed
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> WebhookDelivery:
        return cls(
            webhook_id=data["webhook_id"],
            event_type=data["event_type"],
            state=data["state"],
            attempts=int(data["attempts"]),
            last_status=data.get("last_status"),
            last_error=data.get("last_error"),
            next_attempt_at=_time(data.get("next_attempt_at")),
            delivered_at=_time(data.get("delivered_at")),
            created_at=_required_time(data["created_at"]),
        )


Call = tuple[ApiCall, Callable[[dict[str, Any]], T]]


def _post(path: str, body: Mapping[str, Any] | None = None) -> ApiCall:
    # No idempotency key: a POST that got no answer is made again only if it never left (see
    # ``ApiCall.may_resend``), so that a key or an endpoint is never made twice.
    return ApiCall.with_body("POST", path, body or {})


def _item(path: str, item_id: int | str) -> str:
    return f"{path}/{int(item_id)}"


class _Calls:
    """Each management call: its request, and how its answer's ``data`` is read."""

    @staticmethod
    def list_providers() -> Call[list[Provider]]:
        return ApiCall("GET", PROVIDERS), lambda d: [Provider.from_wire(p) for p in d["providers"]]

    @staticmethod
    def get_provider(provider_id: int) -> Call[Provider]:
        return ApiCall("GET", _item(PROVIDERS, provider_id)), Provider.from_wire

    @staticmethod
    def create_provider(fields: Mapping[str, Any]) -> Call[Provider]:
        return _post(PROVIDERS, fields), Provider.from_wire

    @staticmethod
    def update_provider(provider_id: int, changes: Mapping[str, Any]) -> Call[Provider]:
        return ApiCall.with_body("PATCH", _item(PROVIDERS, provider_id), changes), (
            Provider.from_wire
        )

    @staticmethod
    def delete_provider(provider_id: int) -> Call[None]:
        return ApiCall("DELETE", _item(PROVIDERS, provider_id)), lambda _: None

    @staticmethod
    def set_default_provider(provider_id: int) -> Call[Provider]:
        return _post(_item(PROVIDERS, provider_id) + "/default"), Provider.from_wire

    @staticmethod
    def test_provider(provider_id: int) -> Call[ProviderTest]:
        return _post(_item(PROVIDERS, provider_id) + "/test"), ProviderTest.from_wire

    @staticmethod
    def list_keys() -> Call[list[ApiKey]]:
        return ApiCall("GET", KEYS), lambda d: [ApiKey.from_wire(k) for k in d["keys"]]

    @staticmethod
    def create_key(name: str, permissions: Sequence[str] | None, test: bool | None) -> Call[ApiKey]:
        body: dict[str, Any] = {"name": name}
        if permissions is not None:
            body["permissions"] = list(permissions)
        if test is not None:
            body["test"] = test
        return _post(KEYS, body), ApiKey.from_wire

    @staticmethod
    def revoke_key(key_id: int) -> Call[ApiKey]:
        return ApiCall("DELETE", _item(KEYS, key_id)), ApiKey.from_wire

    @staticmethod
    def list_webhooks() -> Call[list[WebhookEndpoint]]:
        return ApiCall("GET", WEBHOOKS), lambda d: [
            WebhookEndpoint.from_wire(w) for w in d["webhooks"]
        ]

    @staticmethod
    def create_webhook(url: str, event_types: Sequence[str] | None) -> Call[WebhookEndpoint]:
        body: dict[str, Any] = {"url": url}
        if event_types is not None:
            body["event_types"] = list(event_types)
        return _post(WEBHOOKS, body), WebhookEndpoint.from_wire

    @staticmethod
    def delete_webhook(endpoint_id: int) -> Call[None]:
        return ApiCall("DELETE", _item(WEBHOOKS, endpoint_id)), lambda _: None

    @staticmethod
    def webhook_deliveries(endpoint_id: int, limit: int | None) -> Call[list[WebhookDelivery]]:
        path = _item(WEBHOOKS, endpoint_id) + "/deliveries"
        if limit is not None:
            path += f"?limit={int(limit)}"
        return ApiCall("GET", path), lambda d: [
            WebhookDelivery.from_wire(item) for item in d["deliveries"]
        ]

    @staticmethod
    def test_webhook(endpoint_id: int) -> Call[None]:
        return _post(_item(WEBHOOKS, endpoint_id) + "/test"), lambda _: None

    @staticmethod
    def enable_webhook(endpoint_id: int) -> Call[WebhookEndpoint]:
        return _post(_item(WEBHOOKS, endpoint_id) + "/enable"), WebhookEndpoint.from_wire


def _provider_fields(name: str, kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "kind": kind, **settings}


class _Resource:
    def __init__(self, client: _Requester) -> None:
        self._client = client

    def _run(self, call: Call[T]) -> T:
        request, read = call
        data, _ = self._client._request(request)
        return read(data)


class _AsyncResource:
    def __init__(self, client: _AsyncRequester) -> None:
        self._client = client

    async def _run(self, call: Call[T]) -> T:
        request, read = call
        data, _ = await self._client._request(request)
        return read(data)


class Providers(_Resource):
    """``client.providers``: the account's SMTP providers."""

    def list(self) -> list[Provider]:
        return self._run(_Calls.list_providers())

    def get(self, provider_id: int) -> Provider:
        return self._run(_Calls.get_provider(provider_id))

    def create(self, *, name: str, kind: str = "smtp", **settings: Any) -> Provider:
        """Add a provider. ``settings``: ``host``, ``port``, ``security``, ``username``,
        ``password``, ``region``, ``from_email``, ``from_name``, ``hourly_limit``,
        ``daily_limit``, ``default``, ``track_opens``, ``track_clicks``, ``webhook_key``."""
        return self._run(_Calls.create_provider(_provider_fields(name, kind, settings)))

    def update(self, provider_id: int, **changes: Any) -> Provider:
        """Change the fields given (the names of ``create``); ``None`` clears an optional one
        (a limit, the user name, the password, the webhook key)."""
        return self._run(_Calls.update_provider(provider_id, changes))

    def delete(self, provider_id: int) -> None:
        self._run(_Calls.delete_provider(provider_id))

    def set_default(self, provider_id: int) -> Provider:
        return self._run(_Calls.set_default_provider(provider_id))

    def test(self, provider_id: int) -> ProviderTest:
        """Connect and log in as the workers would (nothing is sent)."""
        return self._run(_Calls.test_provider(provider_id))


class AsyncProviders(_AsyncResource):
    """``client.providers`` of an ``AsyncClient``: ``Providers``' calls, awaited."""

    async def list(self) -> list[Provider]:
        return await self._run(_Calls.list_providers())

    async def get(self, provider_id: int) -> Provider:
        return await self._run(_Calls.get_provider(provider_id))

    async def create(self, *, name: str, kind: str = "smtp", **settings: Any) -> Provider:
        return await self._run(_Calls.create_provider(_provider_fields(name, kind, settings)))

    async def update(self, provider_id: int, **changes: Any) -> Provider:
        return await self._run(_Calls.update_provider(provider_id, changes))

    async def delete(self, provider_id: int) -> None:
        await self._run(_Calls.delete_provider(provider_id))

    async def set_default(self, provider_id: int) -> Provider:
        return await self._run(_Calls.set_default_provider(provider_id))

    async def test(self, provider_id: int) -> ProviderTest:
        return await self._run(_Calls.test_provider(provider_id))


class Keys(_Resource):
    """``client.keys``: the account's API keys."""

    def list(self) -> list[ApiKey]:
        return self._run(_Calls.list_keys())

    def create(
        self,
        name: str = "default",
        *,
        permissions: Sequence[str] | None = None,
        test: bool | None = None,
    ) -> ApiKey:
        """A new key (its ``key`` is in this result only). ``permissions`` default to, and may
        not exceed, those of the key making it; ``test`` defaults to that key's kind."""
        return self._run(_Calls.create_key(name, permissions, test))

    def revoke(self, key_id: int) -> ApiKey:
        return self._run(_Calls.revoke_key(key_id))


class AsyncKeys(_AsyncResource):
    """``client.keys`` of an ``AsyncClient``: ``Keys``' calls, awaited."""

    async def list(self) -> list[ApiKey]:
        return await self._run(_Calls.list_keys())

    async def create(
        self,
        name: str = "default",
        *,
        permissions: Sequence[str] | None = None,
        test: bool | None = None,
    ) -> ApiKey:
        return await self._run(_Calls.create_key(name, permissions, test))

    async def revoke(self, key_id: int) -> ApiKey:
        return await self._run(_Calls.revoke_key(key_id))


class Webhooks(_Resource):
    """``client.webhooks``: where the account's events are POSTed."""

    def list(self) -> list[WebhookEndpoint]:
        return self._run(_Calls.list_webhooks())

    def create(self, url: str, *, event_types: Sequence[str] | None = None) -> WebhookEndpoint:
        """A new endpoint; its ``secret`` is in this result only."""
        return self._run(_Calls.create_webhook(url, event_types))

    def delete(self, endpoint_id: int) -> None:
        self._run(_Calls.delete_webhook(endpoint_id))

    def deliveries(
        self, endpoint_id: int, *, limit: int | None = None
    ) -> builtins.list[WebhookDelivery]:
        """The endpoint's recent deliveries, newest first."""
        return self._run(_Calls.webhook_deliveries(endpoint_id, limit))

    def send_test(self, endpoint_id: int) -> None:
        """Queue an ``email.test`` event for this endpoint alone."""
        self._run(_Calls.test_webhook(endpoint_id))

    def enable(self, endpoint_id: int) -> WebhookEndpoint:
        """Turn an endpoint disabled after a day of failures on again."""
        return self._run(_Calls.enable_webhook(endpoint_id))


class AsyncWebhooks(_AsyncResource):
    """``client.webhooks`` of an ``AsyncClient``: ``Webhooks``' calls, awaited."""

    async def list(self) -> list[WebhookEndpoint]:
        return await self._run(_Calls.list_webhooks())

    async def create(
        self, url: str, *, event_types: Sequence[str] | None = None
    ) -> WebhookEndpoint:
        return await self._run(_Calls.create_webhook(url, event_types))

    async def delete(self, endpoint_id: int) -> None:
        await self._run(_Calls.delete_webhook(endpoint_id))

    async def deliveries(
        self, endpoint_id: int, *, limit: int | None = None
    ) -> builtins.list[WebhookDelivery]:
        return await self._run(_Calls.webhook_deliveries(endpoint_id, limit))

    async def send_test(self, endpoint_id: int) -> None:
        await self._run(_Calls.test_webhook(endpoint_id))

    async def enable(self, endpoint_id: int) -> WebhookEndpoint:
        return await self._run(_Calls.enable_webhook(endpoint_id))
