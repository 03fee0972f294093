"""Dashboard > SMTP settings: list, add (with presets), edit, test, make default, delete."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailpass.accounts import service as accounts
from mailpass.accounts.models import User
from mailpass.clock import utcnow
from mailpass.dashboard.context import Account, PageNotFound, checked_form, services_of
from mailpass.dashboard.notices import notice_of
from mailpass.dashboard.provider_forms import (
    PRESETS,
    ProviderForm,
    form_from_provider,
    parse_provider_form,
)
from mailpass.dashboard.sessions import SignedInAccount
from mailpass.dashboard.templating import render
from mailpass.providers import service as providers
from mailpass.providers.hooks import KEYED_KINDS, hook_url
from mailpass.providers.models import Provider, ProviderUsage
from mailpass.providers.secrets import SecretUnreadable
from mailpass.providers.service import NewProvider
from mailpass.providers.smtp import ProbeError

__all__ = ["Meter", "router"]

router = APIRouter(prefix="/dashboard/providers")


@dataclass(frozen=True, slots=True)
class Meter:
    """One usage bar: messages in a window against the limit (None: unlimited)."""

    label: str
    used: int
    limit: int | None

    @property
    def fraction(self) -> float:
        if not self.limit:
            return 0.0
        return min(1.0, self.used / self.limit)

    @property
    def level(self) -> str:
        """For the bar's colour: full, high (80 % or more) or normal."""
        if self.limit and self.used >= self.limit:
            return "full"
        return "high" if self.fraction >= 0.8 else "normal"


def meters(provider: Provider, usage: ProviderUsage) -> list[Meter]:
    return [
        Meter("last hour", usage.last_hour, provider.hourly_limit),
        Meter("last 24 hours", usage.last_day, provider.daily_limit),
    ]


async def own_provider(request: Request, account: SignedInAccount, provider_id: int) -> Provider:
    provider = await providers.own_provider(
        services_of(request).database, provider_id, account.user_id
    )
    if provider is None:
        raise PageNotFound(f"no provider {provider_id}")
    return provider


async def account_user(request: Request, account: SignedInAccount) -> User:
    user = await accounts.find_user(services_of(request).database, account.email)
    if user is None or user.id != account.user_id:
        raise PageNotFound("this account no longer exists")
    return user


@router.get("")
async def list_page(request: Request, account: Account) -> Response:
    database = services_of(request).database
    found = await providers.list_providers(database, account.user_id)
    now = utcnow()
    usage = await providers.usage_by_provider(database, account.user_id, now)
    rows = [(p, meters(p, usage.get(p.id, ProviderUsage()))) for p in found]
    names = {p.id: p.name for p in found}
    return render(
        request,
        "providers.html",
        {
            "rows": rows,
            "names": names,
            "presets": PRESETS,
            "notice": notice_of(request),
            "now": now,
        },
    )


async def _with_fallbacks(
    request: Request, account: SignedInAccount, form: ProviderForm, new: NewProvider
) -> NewProvider | None:
    """``new`` with the fallbacks the form names (provider names, comma-separated, in order);
    None, with the field's error on the form, when one is not the account's."""
    posted = form.values.get("fallbacks", "")
    wanted = [name.strip() for name in posted.split(",") if name.strip()]
    found = await providers.list_providers(services_of(request).database, account.user_id)
    ids = {p.name: p.id for p in found}
    unknown = [name for name in wanted if name not in ids]
    if unknown:
        form.errors["fallbacks"] = f"no provider named {', '.join(unknown)}"
        return None
    return replace(new, fallbacks=tuple(ids[name] for name in wanted))


def form_page(
    request: Request,
    form: ProviderForm,
    *,
    provider: Provider | None,
    status_code: int = 200,
    hook_error: str | None = None,
) -> Response:
    settings = services_of(request).settings
    return render(
        request,
        "provider_form.html",
        {
            **form.context(),
            "provider": provider,
            "hook_url": hook_url(settings, provider) if provider else None,
            "hook_keyed": provider is not None and provider.kind in KEYED_KINDS,
            "hook_error": hook_error,
            "notice": notice_of(request),
        },
        status_code=status_code,
    )


@router.get("/new")
async def new_form(request: Request, account: Account) -> Response:
    kind = request.query_params.get("kind", "smtp")
    if kind not in PRESETS:
        kind = "smtp"
    return form_page(request, ProviderForm(kind=kind, values={}), provider=None)


@router.post("/new")
async def create(request: Request, account: Account) -> Response:
    posted = await checked_form(request, account.csrf_token)
    kind = posted.get("kind")
    if not isinstance(kind, str) or kind not in PRESETS:
        kind = "smtp"
    form, new = parse_provider_form(posted, kind)
    if new is not None:
        new = await _with_fallbacks(request, account, form, new)
    if new is None:
        return form_page(request, form, provider=None, status_code=400)
    services = services_of(request)
    try:
        await providers.add_provider(
            services.database, services.secrets, await account_user(request, account), new
        )
    except providers.ProviderError as exc:
        form.message = str(exc)
        return form_page(request, form, provider=None, status_code=400)
    return RedirectResponse("/dashboard/providers?notice=provider-added", status_code=303)


@router.get("/{provider_id:int}/edit")
async def edit_form(request: Request, account: Account, provider_id: int) -> Response:
    provider = await own_provider(request, account, provider_id)
    form = form_from_provider(provider)
    found = await providers.list_providers(services_of(request).database, account.user_id)
    names = {p.id: p.name for p in found}
    form.values["fallbacks"] = ", ".join(names[i] for i in provider.fallbacks if i in names)
    return form_page(request, form, provider=provider)


@router.post("/{provider_id:int}/edit")
async def update(request: Request, account: Account, provider_id: int) -> Response:
    posted = await checked_form(request, account.csrf_token)
    provider = await own_provider(request, account, provider_id)
    form, changes = parse_provider_form(posted, provider.kind)
    if changes is not None:
        changes = await _with_fallbacks(request, account, form, changes)
    if changes is None:
        return form_page(request, form, provider=provider, status_code=400)
    services = services_of(request)
    try:
        await providers.update_provider(services.database, services.secrets, provider, changes)
    except providers.ProviderError as exc:
        form.message = str(exc)
        return form_page(request, form, provider=provider, status_code=400)
    return RedirectResponse("/dashboard/providers?notice=provider-saved", status_code=303)


@router.post("/{provider_id:int}/webhook")
async def set_webhook_key(request: Request, account: Account, provider_id: int) -> Response:
    """Set or remove the key the provider's webhook payloads are checked with."""
    posted = await checked_form(request, account.csrf_token)
    provider = await own_provider(request, account, provider_id)
    remove = posted.get("remove") == "1"
    key = posted.get("hook_key")
    services = services_of(request)
    try:
        await providers.set_hook_key(
            services.database,
            services.secrets,
            provider,
            None if remove else (key if isinstance(key, str) else ""),
        )
    except providers.ProviderError as exc:
        form = form_from_provider(provider)
        return form_page(request, form, provider=provider, status_code=400, hook_error=str(exc))
    notice = "webhook-key-removed" if remove else "webhook-key-saved"
    return RedirectResponse(
        f"/dashboard/providers/{provider.id}/edit?notice={notice}", status_code=303
    )


@router.post("/{provider_id:int}/test")
async def test_connection(request: Request, account: Account, provider_id: int) -> Response:
    """Connect, greet, secure and authenticate as configured, and show the server's replies."""
    await checked_form(request, account.csrf_token)
    provider = await own_provider(request, account, provider_id)
    services = services_of(request)
    error: str | None = None
    try:
        transcript = await providers.test_provider(provider, services.secrets, services.settings)
    except ProbeError as exc:
        error, transcript = str(exc), exc.transcript
    except SecretUnreadable as exc:
        error, transcript = str(exc), []
    return render(
        request,
        "provider_test.html",
        {"provider": provider, "transcript": transcript, "error": error},
    )


@router.post("/{provider_id:int}/default")
async def make_default(request: Request, account: Account, provider_id: int) -> Response:
    await checked_form(request, account.csrf_token)
    provider = await own_provider(request, account, provider_id)
    await providers.set_default(services_of(request).database, provider)
    return RedirectResponse("/dashboard/providers?notice=provider-default", status_code=303)


@router.get("/{provider_id:int}/delete")
async def delete_form(request: Request, account: Account, provider_id: int) -> Response:
    provider = await own_provider(request, account, provider_id)
    waiting = await providers.count_waiting(services_of(request).database, provider.id)
    return render(request, "provider_delete.html", {"provider": provider, "waiting": waiting})


@router.post("/{provider_id:int}/delete")
async def delete(request: Request, account: Account, provider_id: int) -> Response:
    await checked_form(request, account.csrf_token)
    provider = await own_provider(request, account, provider_id)
    await providers.delete_provider(services_of(request).database, provider)
    return RedirectResponse("/dashboard/providers?notice=provider-deleted", status_code=303)
