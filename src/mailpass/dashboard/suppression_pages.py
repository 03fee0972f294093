"""Dashboard > Suppressions: the account's suppression list, searched a page at a time; add an
address, take one off."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailpass.core.addresses import AddressError
from mailpass.dashboard.context import Account, checked_form, field, services_of
from mailpass.dashboard.notices import notice_of
from mailpass.dashboard.sessions import SignedInAccount
from mailpass.dashboard.templating import render
from mailpass.suppressions.models import SuppressionReason
from mailpass.suppressions.request import address_to_suppress

__all__ = ["router"]

router = APIRouter(prefix="/dashboard/suppressions")

PAGE_SIZE = 50
REASONS = tuple(SuppressionReason)


async def suppressions_page(
    request: Request,
    account: SignedInAccount,
    *,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    search = request.query_params.get("search", "").strip()
    raw_cursor = request.query_params.get("cursor", "")
    cursor = int(raw_cursor) if raw_cursor.isdigit() and int(raw_cursor) > 0 else None
    found, next_cursor = await services_of(request).suppressions.page(
        account.user_id, search=search or None, limit=PAGE_SIZE, after=cursor
    )
    context: dict[str, Any] = {
        "suppressions": found,
        "search": search,
        "next_cursor": next_cursor,
        "reasons": REASONS,
        "error": None,
        "email": "",
        "reason": SuppressionReason.MANUAL,
        "notice": notice_of(request),
    }
    context.update(extra or {})
    return render(request, "suppressions.html", context, status_code=status_code)


@router.get("")
async def list_page(request: Request, account: Account) -> Response:
    return await suppressions_page(request, account)


@router.post("")
async def add(request: Request, account: Account) -> Response:
    form = await checked_form(request, account.csrf_token)
    email, reason = field(form, "email"), field(form, "reason") or SuppressionReason.MANUAL
    problem = address = None
    try:
        address = address_to_suppress(email)
    except AddressError as exc:
        problem = f"{exc}."
    if reason not in REASONS:
        problem = f"Choose a reason: {', '.join(REASONS)}."
    if problem is not None or address is None:
        extra = {"error": problem, "email": email, "reason": reason}
        return await suppressions_page(request, account, extra=extra, status_code=400)
    added = await services_of(request).suppressions.add(
        account.user_id, address, SuppressionReason(reason)
    )
    notice = "suppression-added" if added else "suppression-exists"
    return RedirectResponse(f"/dashboard/suppressions?notice={notice}", status_code=303)


@router.post("/remove")
async def remove(request: Request, account: Account) -> Response:
    form = await checked_form(request, account.csrf_token)
    removed = await services_of(request).suppressions.remove(account.user_id, field(form, "email"))
    notice = "suppression-removed" if removed else "suppression-missing"
    return RedirectResponse(f"/dashboard/suppressions?notice={notice}", status_code=303)
