"""Provider kinds: a plain SMTP server, or the SMTP relay of Amazon SES, SendGrid or Mailgun.

Each managed kind only fills in what its documentation fixes (host, port, security, user
name); everything else is the same SMTP path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "KINDS",
    "SECURITY_MODES",
    "ConnectionSettings",
    "Kind",
    "Security",
    "resolve_connection",
]

Kind = Literal["smtp", "ses", "sendgrid", "mailgun"]
Security = Literal["starttls", "tls", "none"]
KINDS: tuple[str, ...] = get_args(Kind)
SECURITY_MODES: tuple[str, ...] = get_args(Security)

DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
SES_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
MAILGUN_HOSTS = {"us": "smtp.mailgun.org", "eu": "smtp.eu.mailgun.org"}
SENDGRID_HOST = "smtp.sendgrid.net"
SENDGRID_USERNAME = "apikey"  # SendGrid's SMTP relay takes the literal user name "apikey"


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    host: str
    port: int
    security: Security
    username: str | None


def resolve_connection(
    kind: str,
    *,
    host: str | None = None,
    port: int | None = None,
    security: str | None = None,
    username: str | None = None,
    region: str | None = None,
) -> ConnectionSettings:
    """Turn what the user gave for a provider kind into the SMTP server to talk to.

    Raises ``ValueError`` with a message naming the offending option.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if security is not None and security not in SECURITY_MODES:
        raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}, not {security!r}")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535, not {port}")

    if kind == "ses":
        if not region or not SES_REGION.match(region):
            raise ValueError("kind ses needs --region, e.g. us-east-1 or eu-west-1")
        host = host or f"email-smtp.{region}.amazonaws.com"
    elif kind == "sendgrid":
        host = host or SENDGRID_HOST
        username = username or SENDGRID_USERNAME
    elif kind == "mailgun":
        zone = (region or "us").lower()
        if zone not in MAILGUN_HOSTS:
            raise ValueError("kind mailgun takes --region us or eu")
        host = host or MAILGUN_HOSTS[zone]
    elif not host:
        raise ValueError("kind smtp needs a host")

    chosen: Security = "starttls"
    if security is not None:
        chosen = security  # type: ignore[assignment]  # checked against SECURITY_MODES above
    return ConnectionSettings(
        host=host.strip().lower(),
        port=port or DEFAULT_PORTS[chosen],
        security=chosen,
        username=username or None,
    )
