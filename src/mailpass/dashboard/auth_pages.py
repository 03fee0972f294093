"""Signing in and out of the dashboard."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailpass.dashboard.context import (
    Account,
    CsrfRefused,
    checked_form,
    codec_of,
    field,
    services_of,
)
from mailpass.dashboard.sessions import (
    COOKIE_PATH,
    SIGNIN_COOKIE,
    end_session,
    load_session,
    new_token,
    start_session,
)
from mailpass.dashboard.signin import Locked, SignInRefused, check_sign_in
from mailpass.dashboard.templating import render

__all__ = ["router", "safe_next"]

router = APIRouter()

HOME = "/dashboard/"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a dashboard path here, never another site."""
    if target and target.startswith("/dashboard/") and "//" not in target and "\\" not in target:
        return target
    return HOME


def sign_in_page(
    request: Request,
    *,
    next_path: str | None = None,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    token = new_token()
    response = render(
        request,
        "sign_in.html",
        {
            "csrf_token": token,
            "email": email,
            "error": error,
            "next": safe_next(next_path),
        },
        status_code=status_code,
        headers=headers,
    )
    codec_of(request).set_signin_cookie(response, token)
    return response


@router.get("/dashboard/sign-in")
async def sign_in_form(request: Request) -> Response:
    services = services_of(request)
    if await load_session(services.database, codec_of(request), request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return sign_in_page(request, next_path=request.query_params.get("next"))


@router.post("/dashboard/sign-in")
async def sign_in(request: Request) -> Response:
    codec = codec_of(request)
    try:
        form = await checked_form(request, codec.signin_token(request))
    except CsrfRefused as exc:
        return sign_in_page(request, error=f"Please sign in again: {exc}.", status_code=403)
    email = field(form, "email")
    next_path = field(form, "next")
    password = form.get("password")
    if not email or not isinstance(password, str) or not password:
        return sign_in_page(
            request,
            next_path=next_path,
            email=email,
            error="Enter your e-mail and password.",
            status_code=400,
        )
    services = services_of(request)
    client = request.client.host if request.client else "unknown"
    try:
        user = await check_sign_in(services.database, email, password, client)
    except Locked as exc:
        return sign_in_page(
            request,
            next_path=next_path,
            email=email,
            error=f"{str(exc).capitalize()}.",
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except SignInRefused:
        return sign_in_page(
            request,
            next_path=next_path,
            email=email,
            error="Wrong e-mail or password.",
            status_code=401,
        )
    token = await start_session(
        services.database, codec, user_id=user.id, password_hash=user.password_hash
    )
    response = RedirectResponse(safe_next(next_path), status_code=303)
    codec.set_session_cookie(response, token)
    response.delete_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/dashboard/sign-out")
async def sign_out(request: Request, account: Account) -> Response:
    await checked_form(request, account.csrf_token)
    await end_session(services_of(request).database, account.token_hash)
    response = RedirectResponse("/dashboard/sign-in", status_code=303)
    codec_of(request).clear_session_cookie(response)
    return response
