"""Dashboard > Overview: the last 24 hours per hour, and the queue's depth."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailpass.clock import utcnow
from mailpass.dashboard.charts import Series, hourly_chart
from mailpass.dashboard.context import Account, services_of
from mailpass.dashboard.templating import render
from mailpass.messages import log as message_log

__all__ = ["router"]

router = APIRouter()

HOURS_SHOWN = 24


@router.get("/", include_in_schema=False)
async def root() -> Response:
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/dashboard")
async def bare() -> Response:
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/dashboard/")
async def overview(request: Request, account: Account) -> Response:
    now = utcnow()
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [current_hour - timedelta(hours=n) for n in range(HOURS_SHOWN - 1, -1, -1)]
    found = await message_log.overview(
        services_of(request).database,
        account.user_id,
        hours[0],
        current_hour + timedelta(hours=1),
        now,
    )
    activity, depth = found.activity, found.queue
    series = [
        Series(name, label, [getattr(activity, name).get(hour, 0) for hour in hours])
        for name, label in (
            ("sent", "sent"),
            ("failed", "failed"),
            ("opened", "opened"),
            ("clicked", "clicked"),
        )
    ]
    return render(
        request,
        "overview.html",
        {
            "chart": hourly_chart(hours, series),
            "series": series,
            "totals": {one.name: sum(one.values) for one in series},
            "hours": hours,
            "depth": depth,
        },
    )
