"""The boundary between MailPass and whatever accepts the mail: an SMTP server or the capture inbox.

Exceptions::

    DeliveryError               the message was not accepted; ``smtp_code``/``reply`` say why
    ├── TransientDeliveryError  4xx, timeout, dropped connection: worth retrying later
    │   └── ProviderHeld        not attempted: the provider is down (``Transport.hold``)
    └── PermanentDeliveryError  5xx, authentication refused, bad configuration: never retry

``unreachable`` marks the failures that are the provider's rather than the message's (refused,
dropped or timed-out connections, 421): they move its circuit breaker (``providers.circuit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "DeliveryError",
    "DeliveryResult",
    "PermanentDeliveryError",
    "ProviderHeld",
    "TransientDeliveryError",
    "Transport",
]


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The server accepted the message for at least one recipient."""

    reply: str  # the server's final reply to DATA, e.g. "250 2.0.0 Ok: queued as 4F2"
    refused: dict[str, str] = field(default_factory=dict)  # recipient -> "550 5.1.1 ..." reply
    # Recipients not accepted for now (a domain's MX greylisted them or could not be reached,
    # in direct delivery): to be tried again, alone, later.
    deferred: dict[str, str] = field(default_factory=dict)

    def refusal_note(self) -> str | None:
        """What a message's record keeps when only some recipients were accepted."""
        if not self.refused and not self.deferred:
            return None
        notes = []
        if self.refused:
            notes.append(
                "refused: " + "; ".join(f"{r}: {reply}" for r, reply in self.refused.items())
            )
        if self.deferred:
            notes.append(
                "deferred: " + "; ".join(f"{r}: {reply}" for r, reply in self.deferred.items())
            )
        return "accepted for some recipients; " + "; ".join(notes)


class DeliveryError(Exception):
    """The message was not accepted by anyone. ``reply`` is the server's text, code included."""

    transient: bool = False

    def __init__(
        self, reply: str, *, smtp_code: int | None = None, unreachable: bool = False
    ) -> None:
        super().__init__(reply)
        self.reply = reply
        self.smtp_code = smtp_code
        self.unreachable = unreachable


class TransientDeliveryError(DeliveryError):
    transient = True


class PermanentDeliveryError(DeliveryError):
    transient = False


class ProviderHeld(TransientDeliveryError):
    """The send was not attempted: the provider is held down until ``until`` (a monotonic time,
    ``time.monotonic()``'s) because it stopped answering."""

    def __init__(self, reply: str, until: float) -> None:
        super().__init__(reply)
        self.until = until


class Transport(Protocol):
    """Sends finished MIME bytes to a list of envelope recipients."""

    async def send(
        self, envelope_from: str, recipients: Sequence[str], data: bytes
    ) -> DeliveryResult: ...

    def hold(self, reason: str, seconds: float) -> None:
        """For ``seconds``, sends not yet talking to the server raise ``ProviderHeld`` instead
        (those waiting for a connection included); ``hold(reason, 0)`` lifts it."""
        ...

    async def close(self) -> None: ...
