"""Dashboard > SMTP relay: the settings an application needs to send through MailPass over
SMTP, with the lines to paste into Django, Laravel, Rails, Nodemailer and WordPress."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from mailpass.dashboard.context import Account, services_of
from mailpass.dashboard.templating import render

__all__ = ["router"]

router = APIRouter(prefix="/dashboard/smtp")

SUBMISSION_PORT = 587  # STARTTLS (RFC 6409)
IMPLICIT_TLS_PORT = 465  # RFC 8314


@router.get("")
async def smtp_page(request: Request, account: Account) -> Response:
    settings = services_of(request).settings
    host = settings.smtp_hostname or urlsplit(settings.public_url).hostname or "localhost"
    return render(
        request,
        "smtp.html",
        {
            "host": host,
            "port": SUBMISSION_PORT,
            "tls_port": IMPLICIT_TLS_PORT,
            "user": "mailpass",
            "has_certificate": bool(settings.smtp_tls_cert and settings.smtp_tls_key),
        },
    )
