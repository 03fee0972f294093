"""The dashboard: server-rendered pages (Jinja2) served by the same process as the API.

``install(app)`` adds its routes under ``/dashboard``, its static files, and HTML error pages
for dashboard paths (the API keeps answering in the seed's JSON envelope).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from mailpass.dashboard import (
    auth_pages,
    domain_pages,
    key_pages,
    message_pages,
    overview_page,
    provider_pages,
    smtp_page,
    suppression_pages,
    webhook_pages,
)
from mailpass.dashboard.errors import install_error_pages

__all__ = ["install"]

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the dashboard on ``app``; call after the API's exception handlers are added."""
    pages = (
        overview_page,
        auth_pages,
        provider_pages,
        domain_pages,
        key_pages,
        message_pages,
        smtp_page,
        suppression_pages,
        webhook_pages,
    )
    for module in pages:
        app.include_router(module.router, include_in_schema=False)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    install_error_pages(app)
