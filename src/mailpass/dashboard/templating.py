"""Rendering dashboard pages: Jinja2 with autoescaping everywhere, and the headers every page has.

Every page is sent with a Content-Security-Policy that allows only the dashboard's own CSS and
script files: no inline script, no inline style, nothing from elsewhere. Even if escaping were
ever missed, injected markup could not run script.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["PAGE_HEADERS", "environment", "render"]

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show private data (and once, a new API key): never keep them in a cache.
    "Cache-Control": "no-store",
}


def format_time(moment: datetime | None) -> str:
    """``2026-01-30 12:00:00`` (UTC, as stored), or an em dash for never."""
    if moment is None:
        return "—"
    return moment.replace(microsecond=0).isoformat(sep=" ")


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mailpass.dashboard", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = format_time
    return env


_environment = environment()


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A full page; ``context`` gets ``request`` and ``account`` (None when signed out)."""
    values: dict[str, Any] = {
        "request": request,
        "account": getattr(request.state, "dashboard_account", None),
        "path": request.url.path,
    }
    values.update(context or {})
    body = _environment.get_template(template).render(values)
    return HTMLResponse(body, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})
