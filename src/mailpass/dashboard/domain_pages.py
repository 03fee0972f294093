"""Dashboard > Domains: the account's sending domains, the DNS records each must publish and
what the last check found of them; add, check now, rotate the DKIM key, remove a key or a
domain."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailpass.dashboard.context import Account, PageNotFound, checked_form, field, services_of
from mailpass.dashboard.notices import notice_of
from mailpass.dashboard.sessions import SignedInAccount
from mailpass.dashboard.templating import render
from mailpass.domains.dkim import ALGORITHMS
from mailpass.domains.service import DomainError, record_answers

__all__ = ["router"]

router = APIRouter(prefix="/dashboard/domains")


async def domains_page(
    request: Request,
    account: SignedInAccount,
    *,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    services = services_of(request)
    domains = await services.domains.domains(account.user_id)
    context: dict[str, Any] = {
        "domains": [(domain, record_answers(domain, services.settings)) for domain in domains],
        "algorithms": ALGORITHMS,
        "error": None,
        "name": "",
        "notice": notice_of(request),
    }
    context.update(extra or {})
    return render(request, "domains.html", context, status_code=status_code)


@router.get("")
async def list_page(request: Request, account: Account) -> Response:
    return await domains_page(request, account)


@router.post("")
async def add(request: Request, account: Account) -> Response:
    form = await checked_form(request, account.csrf_token)
    name = field(form, "name")
    algorithm = field(form, "algorithm") or None
    try:
        await services_of(request).domains.add(account.user_id, name, algorithm)
    except DomainError as exc:
        extra = {"error": f"{exc}.", "name": name}
        return await domains_page(request, account, extra=extra, status_code=400)
    return RedirectResponse("/dashboard/domains?notice=domain-added", status_code=303)


async def _domain_action(request: Request, account: SignedInAccount) -> tuple[int, str]:
    form = await checked_form(request, account.csrf_token)
    raw = field(form, "id")
    if not raw.isdigit():
        raise PageNotFound("no such domain")
    return int(raw), field(form, "selector")


@router.post("/verify")
async def verify(request: Request, account: Account) -> Response:
    domain_id, _ = await _domain_action(request, account)
    checked = await services_of(request).domains.verify(account.user_id, domain_id)
    if checked is None:
        raise PageNotFound("no such domain")
    notice = "domain-verified" if checked[0].is_verified else "domain-not-verified"
    return RedirectResponse(f"/dashboard/domains?notice={notice}", status_code=303)


@router.post("/rotate")
async def rotate(request: Request, account: Account) -> Response:
    domain_id, _ = await _domain_action(request, account)
    try:
        rotated = await services_of(request).domains.rotate(account.user_id, domain_id)
    except DomainError as exc:
        return await domains_page(request, account, extra={"error": f"{exc}."}, status_code=400)
    if rotated is None:
        raise PageNotFound("no such domain")
    return RedirectResponse("/dashboard/domains?notice=domain-rotated", status_code=303)


@router.post("/remove-key")
async def remove_key(request: Request, account: Account) -> Response:
    domain_id, selector = await _domain_action(request, account)
    try:
        removed = await services_of(request).domains.remove_key(
            account.user_id, domain_id, selector
        )
    except DomainError as exc:
        return await domains_page(request, account, extra={"error": f"{exc}."}, status_code=400)
    if not removed:
        raise PageNotFound("no such key")
    return RedirectResponse("/dashboard/domains?notice=domain-key-removed", status_code=303)


@router.post("/remove")
async def remove(request: Request, account: Account) -> Response:
    domain_id, _ = await _domain_action(request, account)
    if not await services_of(request).domains.delete(account.user_id, domain_id):
        raise PageNotFound("no such domain")
    return RedirectResponse("/dashboard/domains?notice=domain-removed", status_code=303)
