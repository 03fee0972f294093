"""The SMTP package's exceptions. Each also subclasses the built-in it is a case of, as
aiosmtplib's do, so that ``except TimeoutError`` or ``except ConnectionError`` catches it::

    SmtpFailure                    one failed step: ``reply``, ``summary``, ``transient``
    ├── SmtpReplyFailure           the server answered with an error code (``smtp_code``)
    ├── SmtpTimeoutFailure         (TimeoutError) no answer in time: transient
    ├── SmtpConnectionFailure      (ConnectionError) refused, reset or dropped: transient
    └── SmtpConfigurationFailure   (ValueError) TLS verification, STARTTLS or AUTH not offered,
                                   an address that cannot go on the wire: permanent
    ProbeError                     the connection test failed; ``transcript`` is the talk so far
    StaleConnection                (ConnectionError) a pooled connection had died unused
"""

from __future__ import annotations

from mailpass.providers.transport import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

__all__ = [
    "ProbeError",
    "SmtpConfigurationFailure",
    "SmtpConnectionFailure",
    "SmtpFailure",
    "SmtpReplyFailure",
    "SmtpTimeoutFailure",
    "StaleConnection",
    "config_failure",
]


class SmtpFailure(Exception):
    """One failed step, described twice: ``reply`` for delivery records, ``summary`` for a CLI."""

    def __init__(
        self, *, reply: str, summary: str, transient: bool, smtp_code: int | None = None
    ) -> None:
        super().__init__(summary)
        self.reply = reply
        self.summary = summary
        self.transient = transient
        self.smtp_code = smtp_code

    @property
    def unreachable(self) -> bool:
        """The server's trouble, not the message's: no connection, no answer in time, or 421
        (it is closing the session: RFC 5321 4.2.2's "service not available")."""
        return isinstance(self, TimeoutError | ConnectionError) or self.smtp_code == 421

    def delivery_error(self) -> DeliveryError:
        kind = TransientDeliveryError if self.transient else PermanentDeliveryError
        return kind(self.reply, smtp_code=self.smtp_code, unreachable=self.unreachable)


class SmtpReplyFailure(SmtpFailure):
    """The server refused a step with a reply code; transient unless it was 5xx."""


class SmtpTimeoutFailure(SmtpFailure, TimeoutError):
    """The server did not answer (or let us connect) within the endpoint's timeout."""


class SmtpConnectionFailure(SmtpFailure, ConnectionError):
    """The connection could not be made, or was lost: refused, reset, unresolvable host."""


class SmtpConfigurationFailure(SmtpFailure, ValueError):
    """Retrying will not help until the provider's settings (or the message) change."""


def config_failure(description: str) -> SmtpConfigurationFailure:
    return SmtpConfigurationFailure(reply=description, summary=description, transient=False)


class ProbeError(Exception):
    """``probe`` failed. ``str()`` is one line for the CLI; ``transcript`` is the talk so far."""

    def __init__(self, message: str, transcript: list[str]) -> None:
        super().__init__(message)
        self.transcript = transcript


class StaleConnection(ConnectionError):
    """A pooled connection was dead before the server could have accepted anything."""
