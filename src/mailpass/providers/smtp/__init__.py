"""Delivery through one SMTP server with aiosmtplib: small flat modules, each one concern.

- ``endpoint``: where and how to reach the server (``SmtpEndpoint``), and its TLS context.
- ``client``: one connection (aiosmtplib's client, noting how far a transaction got).
- ``pipelining``: MAIL, RCPT and DATA in one write when the server offers PIPELINING.
- ``pool``: ``SmtpTransport``, the reused connections a provider sends through.
- ``failures``: what went wrong, described for the record and the CLI, transient or not.
- ``errors``: the exceptions, each also the built-in it is a case of.
- ``probe``: the provider's connection test.
"""

from mailpass.providers.smtp.endpoint import DEFAULT_TIMEOUT, SmtpEndpoint, SmtpSecurity
from mailpass.providers.smtp.errors import ProbeError, SmtpFailure
from mailpass.providers.smtp.pool import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    SmtpTransport,
)
from mailpass.providers.smtp.probe import probe

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TIMEOUT",
    "ProbeError",
    "SmtpEndpoint",
    "SmtpFailure",
    "SmtpSecurity",
    "SmtpTransport",
    "probe",
]
