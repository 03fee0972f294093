"""Provider kinds: a plain SMTP server, the SMTP relay of Amazon SES, SendGrid or Mailgun, or
MailPass's own delivery to the recipients' MX hosts (``direct``).

Each managed kind only fills in what its documentation fixes (host, port, security, user
name); everything else is the same SMTP path. A ``direct`` provider has no server of its own:
its host is shown as ``mx``, and the settings of ``providers.direct`` apply.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "KINDS",
    "SECURITY_MODES",
    "ConnectionSettings",
    "Kind",
    "Security",
    "region_of",
    "resolve_connection",
]

Kind = Literal["smtp", "ses", "sendgrid", "mailgun", "direct"]
Security = Literal["starttls", "tls", "none"]
KINDS: tuple[str, ...] = get_args(Kind)
SECURITY_MODES: tuple[str, ...] = get_args(Security)

DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
SES_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
SES_HOST_PREFIX = "email-smtp."
SES_HOST_SUFFIX = ".amazonaws.com"
MAILGUN_HOSTS = {"us": "smtp.mailgun.org", "eu": "smtp.eu.mailgun.org"}
SENDGRID_HOST = "smtp.sendgrid.net"
DIRECT_HOST = "mx"  # what a direct provider's host column holds: each domain's MX hosts
SENDGRID_USERNAME = "apikey"  # SendGrid's SMTP relay takes the literal user name "apikey"
# A label of a host name once in ASCII (IDNA): RFC 1123's, and the underscore that container
# and service names (``mail_relay``) carry and resolvers look up.
HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


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
    host = host.strip() if host else None
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if security is not None and security not in SECURITY_MODES:
        raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}, not {security!r}")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port must be between 1 and 65535, not {port}")

    if kind == "direct":
        if host or username or region:
            raise ValueError(
                "kind direct delivers to each recipient domain's MX hosts: it takes no host, "
                "user name or region"
            )
        return ConnectionSettings(host=DIRECT_HOST, port=25, security="starttls", username=None)
    if kind == "ses":
        # The region names the host; a host given (a VPC endpoint, a test server) needs none.
        if region and not SES_REGION.match(region):
            raise ValueError(f"region {region!r} is not an AWS region such as us-east-1")
        if not host and not region:
            raise ValueError("kind ses needs a region, e.g. us-east-1 or eu-west-1")
        host = host or f"{SES_HOST_PREFIX}{region}{SES_HOST_SUFFIX}"
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

    host = host.lower()
    if not _is_host(host):
        raise ValueError(f"host {host!r} is neither a host name nor an IP address")

    chosen: Security = "starttls"
    if security is not None:
        chosen = security  # type: ignore[assignment]  # checked against SECURITY_MODES above
    return ConnectionSettings(
        host=host,
        port=port or DEFAULT_PORTS[chosen],
        security=chosen,
        username=username or None,
    )


def region_of(kind: str, host: str) -> str | None:
    """The region a managed provider's host was made from (SES, Mailgun); None for the others,
    and for a managed provider pointed at a host of its own."""
    if kind == "ses" and host.startswith(SES_HOST_PREFIX) and host.endswith(SES_HOST_SUFFIX):
        region = host.removeprefix(SES_HOST_PREFIX).removesuffix(SES_HOST_SUFFIX)
        return region if SES_REGION.match(region) else None
    if kind == "mailgun":
        for region, mailgun_host in MAILGUN_HOSTS.items():
            if host == mailgun_host:
                return region
    return None


def _is_host(host: str) -> bool:
    """A name the resolver can look up (``smtp.example.com``, an internationalized one too) or
    an IPv4 or IPv6 address: a typo such as a space or a URL fails here, not at the first send."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_name = host.removesuffix(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(ascii_name) <= 253 and all(
        HOST_LABEL.match(label) for label in ascii_name.split(".")
    )
