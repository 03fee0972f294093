"""Dashboard > Webhooks: the account's endpoints (add, remove, turn on again), a test event,
and each endpoint's recent deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailpass.core.statuses import EventType
from mailpass.dashboard.context import Account, PageNotFound, checked_form, field, services_of
from mailpass.dashboard.notices import notice_of
from mailpass.dashboard.sessions import SignedInAccount
from mailpass.dashboard.templating import render
from mailpass.webhooks.request import EndpointFields
from mailpass.webhooks.service import TooManyEndpoints

__all__ = ["router"]

router = APIRouter(prefix="/dashboard/webhooks")

DELIVERIES_SHOWN = 50


async def webhooks_page(
    request: Request,
    account: SignedInAccount,
    *,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "endpoints": await services_of(request).webhooks.endpoints(account.user_id),
        "event_types": list(EventType),
        "error": None,
        "url": "",
        "chosen": [],
        "secret": None,
        "notice": notice_of(request),
    }
    context.update(extra or {})
    return render(request, "webhooks.html", context, status_code=status_code)


@router.get("")
async def list_page(request: Request, account: Account) -> Response:
    return await webhooks_page(request, account)


@router.post("")
async def add(request: Request, account: Account) -> Response:
    form = await checked_form(request, account.csrf_token)
    url = field(form, "url")
    chosen = [value for value in form.getlist("event_types") if isinstance(value, str)]
    try:
        fields = EndpointFields(url=url, event_types=chosen)
        endpoint, secret = await services_of(request).webhooks.create(
            account.user_id, fields.url, fields.event_types
        )
    except PydanticValidationError as exc:
        problem = "; ".join(
            str(error["msg"]).removeprefix("Value error, ") for error in exc.errors()
        )
        extra = {"error": problem, "url": url, "chosen": chosen}
        return await webhooks_page(request, account, extra=extra, status_code=400)
    except TooManyEndpoints as exc:
        extra = {"error": f"{exc}.", "url": url, "chosen": chosen}
        return await webhooks_page(request, account, extra=extra, status_code=400)
    # The secret is shown on this answer only: it is stored encrypted and never shown again.
    return await webhooks_page(request, account, extra={"secret": (endpoint, secret)})


async def _endpoint_action(request: Request, account: SignedInAccount) -> int:
    form = await checked_form(request, account.csrf_token)
    raw = field(form, "id")
    if not raw.isdigit():
        raise PageNotFound("no such endpoint")
    return int(raw)


@router.post("/remove")
async def remove(request: Request, account: Account) -> Response:
    endpoint_id = await _endpoint_action(request, account)
    if not await services_of(request).webhooks.delete(account.user_id, endpoint_id):
        raise PageNotFound("no such endpoint")
    return RedirectResponse("/dashboard/webhooks?notice=webhook-removed", status_code=303)


@router.post("/test")
async def send_test(request: Request, account: Account) -> Response:
    endpoint_id = await _endpoint_action(request, account)
    if not await services_of(request).webhooks.send_test(account.user_id, endpoint_id):
        raise PageNotFound("no such endpoint")
    return RedirectResponse(
        f"/dashboard/webhooks/{endpoint_id}?notice=webhook-test-queued", status_code=303
    )


@router.post("/enable")
async def enable(request: Request, account: Account) -> Response:
    endpoint_id = await _endpoint_action(request, account)
    if not await services_of(request).webhooks.enable(account.user_id, endpoint_id):
        raise PageNotFound("no such endpoint")
    return RedirectResponse("/dashboard/webhooks?notice=webhook-enabled", status_code=303)


@router.get("/{endpoint_id:int}")
async def deliveries_page(request: Request, account: Account, endpoint_id: int) -> Response:
    webhooks = services_of(request).webhooks
    endpoint = next(
        (e for e in await webhooks.endpoints(account.user_id) if e.id == endpoint_id), None
    )
    if endpoint is None:
        raise PageNotFound(f"no endpoint {endpoint_id}")
    deliveries = await webhooks.deliveries(account.user_id, endpoint_id, DELIVERIES_SHOWN)
    return render(
        request,
        "webhook.html",
        {"endpoint": endpoint, "deliveries": deliveries, "notice": notice_of(request)},
    )
