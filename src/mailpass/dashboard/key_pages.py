"""Dashboard > API keys: create (the key is shown once), list with last use, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailpass.accounts import service as accounts
from mailpass.accounts.keys import ALL_PERMISSIONS
from mailpass.dashboard.context import Account, PageNotFound, checked_form, field, services_of
from mailpass.dashboard.notices import notice_of
from mailpass.dashboard.provider_pages import account_user
from mailpass.dashboard.sessions import SignedInAccount
from mailpass.dashboard.templating import render

__all__ = ["router"]

router = APIRouter(prefix="/dashboard/keys")

PERMISSION_HELP = {  # a line for each of ALL_PERMISSIONS: the keys page lists them all
    "mail": "send mail and read its status",
    "providers": "manage SMTP providers (management API)",
    "domains": "manage sending domains and their DKIM keys (management API)",
    "keys": "manage API keys (management API)",
    "suppressions": "read and change the suppression list",
    "webhooks": "add, list and remove webhook endpoints",
}


async def keys_page(
    request: Request,
    account: SignedInAccount,
    *,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    keys = await accounts.list_keys(services_of(request).database, account.user_id)
    context: dict[str, Any] = {
        "keys": sorted(keys, key=lambda key: (key.revoked_at is not None, -key.id)),
        "permissions": [(name, PERMISSION_HELP[name]) for name in ALL_PERMISSIONS],
        "new_key": None,
        "error": None,
        "name": "",
        "chosen": ["mail"],
        "notice": notice_of(request),
    }
    context.update(extra or {})
    return render(request, "keys.html", context, status_code=status_code)


@router.get("")
async def list_page(request: Request, account: Account) -> Response:
    return await keys_page(request, account)


@router.post("")
async def create(request: Request, account: Account) -> Response:
    form = await checked_form(request, account.csrf_token)
    name = field(form, "name") or "default"
    chosen = [value for value in form.getlist("permissions") if isinstance(value, str)]
    test = bool(form.get("test"))
    if not chosen:
        return await keys_page(
            request,
            account,
            extra={"error": "Choose at least one permission.", "name": name, "chosen": chosen},
            status_code=400,
        )
    try:
        created = await accounts.create_key(
            services_of(request).database,
            await account_user(request, account),
            name=name,
            permissions=chosen,
            test=test,
        )
    except accounts.AccountError as exc:
        return await keys_page(
            request,
            account,
            extra={"error": f"{exc}.", "name": name, "chosen": chosen},
            status_code=400,
        )
    # Rendered in the answer to the POST itself, never redirected to: the key exists in no URL
    # and no later page, and the page is sent with Cache-Control: no-store.
    return await keys_page(request, account, extra={"new_key": created})


@router.post("/{key_id:int}/revoke")
async def revoke(request: Request, account: Account, key_id: int) -> Response:
    await checked_form(request, account.csrf_token)
    try:
        await accounts.revoke_own_key(services_of(request).database, account.user_id, key_id)
    except accounts.AccountError:
        raise PageNotFound(f"no active key {key_id}") from None
    return RedirectResponse("/dashboard/keys?notice=key-revoked", status_code=303)
