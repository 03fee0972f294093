"""``/api/v1/providers``: the account's SMTP providers, for keys with the ``providers``
permission. Passwords and webhook keys are write-only: an answer says whether one is set,
never what it is."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailpass.api.auth import authenticate
from mailpass.api.mail import DirectRoute, services_of
from mailpass.api.openapi import (
    CREATE_PROVIDER_OPERATION,
    DEFAULT_PROVIDER_OPERATION,
    DELETE_PROVIDER_OPERATION,
    GET_PROVIDER_OPERATION,
    LIST_PROVIDERS_OPERATION,
    TEST_PROVIDER_OPERATION,
    UPDATE_PROVIDER_OPERATION,
)
from mailpass.api.params import path_id
from mailpass.api.responses import success_response
from mailpass.clock import isoformat, utcnow
from mailpass.errors import NotFound, ValidationError
from mailpass.messages.request import parse_json_body
from mailpass.providers.kinds import region_of
from mailpass.providers.models import Provider
from mailpass.providers.request import ProviderFields, ProviderPatch
from mailpass.providers.service import ProviderError
from mailpass.providers.smtp import ProbeError
from mailpass.services import Services

__all__ = ["provider_answer", "router"]

router = APIRouter(prefix="/api/v1/providers", route_class=DirectRoute)

PERMISSION = "providers"
WHAT = "provider"


def provider_answer(services: Services, provider: Provider) -> dict[str, Any]:
    down = provider.is_down(utcnow())
    return {
        "id": provider.id,
        "name": provider.name,
        "kind": provider.kind,
        "host": provider.host,
        "port": provider.port,
        "security": provider.security,
        "username": provider.username,
        "password_set": provider.password_encrypted is not None,
        "region": region_of(provider.kind, provider.host),
        "from_email": provider.from_email,
        "from_name": provider.from_name,
        "hourly_limit": provider.hourly_limit,
        "daily_limit": provider.daily_limit,
        "default": provider.is_default,
        "track_opens": provider.track_opens,
        "track_clicks": provider.track_clicks,
        "webhook_url": services.providers.hook_url(provider),
        "webhook_key_set": provider.hook_key_encrypted is not None,
        "down_until": isoformat(provider.down_until) if down and provider.down_until else None,
        "down_reason": provider.down_reason if down else None,
        "fallbacks": list(provider.fallbacks),
        "created_at": isoformat(provider.created_at),
        "updated_at": isoformat(provider.updated_at),
    }


async def _own(request: Request, provider_id: str) -> tuple[Services, Provider]:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.providers.find_key, PERMISSION)
    provider = await services.providers.provider(key.user_id, path_id(provider_id, WHAT))
    if provider is None:  # another account's is as unknown as a missing one
        raise NotFound(f"no {WHAT} {provider_id}")
    return services, provider


def _refused(exc: ProviderError) -> ValidationError:
    return ValidationError("the provider cannot be saved", details=[{"message": str(exc)}])


@router.get("", openapi_extra=LIST_PROVIDERS_OPERATION)
async def list_providers(request: Request) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.providers.find_key, PERMISSION)
    found = await services.providers.providers(key.user_id)
    return success_response({"providers": [provider_answer(services, p) for p in found]})


@router.post("", openapi_extra=CREATE_PROVIDER_OPERATION)
async def create_provider(request: Request) -> Response:
    services = services_of(request)
    key, _ = await authenticate(request, services, services.providers.find_key, PERMISSION)
    fields = parse_json_body(await request.body(), ProviderFields)
    try:
        provider = await services.providers.create(
            key.user_id, fields.new_provider(), fields.webhook_key
        )
    except ProviderError as exc:
        raise _refused(exc) from None
    return success_response(provider_answer(services, provider))


@router.get("/{provider_id}", openapi_extra=GET_PROVIDER_OPERATION)
async def get_provider(request: Request, provider_id: str) -> Response:
    services, provider = await _own(request, provider_id)
    return success_response(provider_answer(services, provider))


@router.patch("/{provider_id}", openapi_extra=UPDATE_PROVIDER_OPERATION)
async def update_provider(request: Request, provider_id: str) -> Response:
    services, provider = await _own(request, provider_id)
    patch = parse_json_body(await request.body(), ProviderPatch)
    try:
        changed = await services.providers.change(
            provider, patch.settings_for(provider), patch.changes()
        )
    except ProviderError as exc:
        raise _refused(exc) from None
    return success_response(provider_answer(services, changed))


@router.delete("/{provider_id}", openapi_extra=DELETE_PROVIDER_OPERATION)
async def delete_provider(request: Request, provider_id: str) -> Response:
    services, provider = await _own(request, provider_id)
    await services.providers.delete(provider)
    return success_response({"id": provider.id, "deleted": True})


@router.post("/{provider_id}/default", openapi_extra=DEFAULT_PROVIDER_OPERATION)
async def make_default(request: Request, provider_id: str) -> Response:
    services, provider = await _own(request, provider_id)
    return success_response(
        provider_answer(services, await services.providers.make_default(provider))
    )


@router.post("/{provider_id}/test", openapi_extra=TEST_PROVIDER_OPERATION)
async def test_provider(request: Request, provider_id: str) -> Response:
    """Connect, greet, secure and log in as the workers would, and say how it went: a provider
    that fails the test is an answer, not an error of this request."""
    services, provider = await _own(request, provider_id)
    try:
        transcript = await services.providers.test(provider)
    except ProbeError as exc:
        return success_response(
            {"id": provider.id, "ok": False, "error": str(exc), "transcript": exc.transcript}
        )
    return success_response(
        {"id": provider.id, "ok": True, "error": None, "transcript": transcript}
    )
