"""What every dashboard route needs: the services, who is signed in, and checked form posts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.datastructures import FormData
from starlette.requests import Request

from mailpass.config import load_instance_secret
from mailpass.dashboard.sessions import (
    SessionCodec,
    SignedInAccount,
    load_session,
    same_origin,
    tokens_match,
)
from mailpass.services import Services

__all__ = [
    "Account",
    "CsrfRefused",
    "PageNotFound",
    "SignInRequired",
    "checked_form",
    "codec_of",
    "field",
    "services_of",
    "signed_in",
]


class SignInRequired(Exception):
    """No valid session: the handler sends the browser to the sign-in page."""


class PageNotFound(Exception):
    """Answered with the dashboard's 404 page (another account's things are not found either)."""


class CsrfRefused(Exception):
    """A form post without the right CSRF token, or from another site's page."""


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def codec_of(request: Request) -> SessionCodec:
    """The app's cookie codec, made on first use from the instance secret."""
    state = request.app.state
    codec: SessionCodec | None = getattr(state, "dashboard_codec", None)
    if codec is None:
        settings = services_of(request).settings
        codec = SessionCodec(
            load_instance_secret(settings),
            lifetime=settings.dashboard_session_lifetime,
            secure=settings.public_url.lower().startswith("https://"),
        )
        state.dashboard_codec = codec
    return codec


async def signed_in(request: Request) -> SignedInAccount:
    account = await load_session(services_of(request).database, codec_of(request), request)
    if account is None:
        raise SignInRequired
    request.state.dashboard_account = account
    return account


Account = Annotated[SignedInAccount, Depends(signed_in)]


async def checked_form(request: Request, expected_token: str | None) -> FormData:
    """The posted form, once its CSRF token and origin are checked."""
    if not same_origin(request):
        raise CsrfRefused("this form was sent from another site")
    form = await request.form()
    if not tokens_match(expected_token, form.get("csrf_token")):
        raise CsrfRefused("the form has expired or was not sent from this dashboard")
    return form


def field(form: FormData, name: str) -> str:
    """A text field, stripped; empty when missing (file uploads are not text and count as
    missing)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
