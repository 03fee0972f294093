"""Where and how to reach one SMTP server, and the TLS context that verifies it."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from mailpass.core.client_ip import IPNetwork
from mailpass.providers.smtp.errors import config_failure

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "SECURITY_MODES",
    "SmtpEndpoint",
    "SmtpSecurity",
    "build_tls_context",
]

# "opportunistic": STARTTLS when the server offers it, without checking its certificate, as
# MX hosts are reached (``providers.direct``); else plain text.
SmtpSecurity = Literal["starttls", "tls", "none", "opportunistic"]
SECURITY_MODES: tuple[str, ...] = get_args(SmtpSecurity)

DEFAULT_TIMEOUT = 30.0  # seconds, for each SMTP command
# seconds to connect and be greeted: a server that takes longer is down or hung, and waiting
# for it holds a connection slot that mail for a healthy server could use
DEFAULT_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class SmtpEndpoint:
    """Where and how to reach one SMTP server.

    ``security``: ``"tls"`` is implicit TLS (port 465), ``"starttls"`` requires STARTTLS
    (port 587), ``"none"`` is plain text. Certificates are always verified (but by
    ``"opportunistic"``); ``ca_file`` adds a CA bundle (an internal CA) to the system's
    trusted roots. ``addresses``: connect to these (an MX host's, looked up by MailPass)
    instead of resolving ``host``, which still names the server for TLS.
    """

    host: str
    port: int
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT  # seconds, per command
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT  # seconds to connect and be greeted
    ca_file: str | Path | None = None
    local_hostname: str | None = None  # the name we give in EHLO; default: this host's FQDN
    # The networks the server's address must be in (``MAILPASS_PROVIDER_NETWORKS``); None:
    # anywhere. Checked on the address connected to, after resolving the host.
    networks: tuple[IPNetwork, ...] | None = None
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(
                f"security must be one of {', '.join(SECURITY_MODES)}, not {self.security!r}"
            )
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, not {self.port}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, not {self.timeout}")
        if self.connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be positive, not {self.connect_timeout}")
        # Both end up on a command line: whitespace or control characters would break it.
        for name, value in (("host", self.host), ("local_hostname", self.local_hostname)):
            if value is not None and (not value or not value.isprintable() or " " in value):
                raise ValueError(f"{name} must be a host name or address, not {value!r}")

    @property
    def address(self) -> str:
        """``host:port`` as people write it, with IPv6 literals bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def build_tls_context(endpoint: SmtpEndpoint) -> ssl.SSLContext:
    # create_default_context: system roots, hostname checking, no legacy protocol versions.
    context = ssl.create_default_context()
    if endpoint.security == "opportunistic":
        # RFC 7435: encryption without authentication beats plain text, and most MX hosts'
        # certificates name something else; a domain that wants them checked says so (MTA-STS).
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if endpoint.ca_file is not None:
        try:
            context.load_verify_locations(cafile=endpoint.ca_file)
        except (OSError, ValueError) as exc:
            raise config_failure(f"cannot load CA file {endpoint.ca_file}: {exc}") from exc
    return context
