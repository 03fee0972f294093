"""Errors under ``/dashboard`` are pages; everywhere else the API's JSON envelope stays.

``install_error_pages`` wraps the app's existing handlers: a request for a dashboard path gets
an HTML page (or a redirect to sign in), any other request goes to the handler the API set up.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailpass.dashboard.context import CsrfRefused, PageNotFound, SignInRequired
from mailpass.dashboard.templating import render

__all__ = ["error_page", "install_error_pages", "is_dashboard_path"]

log = logging.getLogger("mailpass.dashboard")

Handler = Callable[[Request, Exception], Awaitable[Response]]
AnyHandler = Callable[[Request, Any], Response | Awaitable[Response]]

TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    500: "Something went wrong",
}


def is_dashboard_path(request: Request) -> bool:
    path = request.url.path
    return path == "/dashboard" or path.startswith("/dashboard/")


def error_page(request: Request, status_code: int, message: str) -> Response:
    return render(
        request,
        "error.html",
        {"title": TITLES.get(status_code, "Error"), "message": message, "status": status_code},
        status_code=status_code,
    )


async def _sign_in_required(request: Request, _exc: Exception) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method != "GET":
        target = "/dashboard/"
    return RedirectResponse(f"/dashboard/sign-in?next={quote(target, safe='/')}", status_code=303)


async def _not_found(request: Request, _exc: Exception) -> Response:
    return error_page(request, 404, "There is nothing here, or it belongs to another account.")


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    return error_page(request, 403, f"The form was refused: {exc}. Reload the page and try again.")


def _for_dashboard(dashboard: Handler, api: AnyHandler | None) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if is_dashboard_path(request) or api is None:
            return await dashboard(request, exc)
        answer = api(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    return handle


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return await _not_found(request, exc)
    if exc.status_code == 405:
        return error_page(request, 405, f"{request.method} is not allowed here.")
    return error_page(request, exc.status_code, str(exc.detail))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return error_page(request, 500, "An unexpected error occurred; it has been logged.")


def install_error_pages(app: FastAPI) -> None:
    """Call after the API's handlers are registered: they stay in charge outside /dashboard."""
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(PageNotFound, _not_found)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    for kind, handler in ((HTTPException, _http_error), (Exception, _unexpected_error)):
        app.add_exception_handler(kind, _for_dashboard(handler, app.exception_handlers.get(kind)))
