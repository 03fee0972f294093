"""The validated, provider-independent form of one message about to be composed and sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Address", "Attachment", "OutgoingMessage", "format_addresses"]


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: ``email`` is already validated and in its ASCII form (IDN domain as punycode)."""

    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file carried by a message: ``filename`` checked (no path, no control characters),
    ``content_type`` a valid ``type/subtype`` with any parameters, ``content`` the decoded
    bytes. With a ``content_id`` (without angle brackets) it is an inline part that the html
    refers to as ``cid:<content_id>``."""

    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None

    @property
    def inline(self) -> bool:
        return self.content_id is not None


@dataclass(slots=True)
class OutgoingMessage:
    """Everything needed to compose the MIME bytes and the SMTP envelope of one message.

    Header-bound strings (names, subject) have been checked for CR/LF before they get here.
    Nothing changes one once made (tracking makes a copy with ``dataclasses.replace``). It is
    not a frozen dataclass because one is made for every message, and a frozen dataclass's
    ``__init__`` took four times as long (~2 µs here).
    """

    message_id: str  # with angle brackets: "<random.unixtime@domain>"
    sender: Address
    to: tuple[Address, ...]
    subject: str
    date: datetime  # timezone-aware UTC
    html: str | None = None
    text: str | None = None
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = field(default=())
    attachments: tuple[Attachment, ...] = ()  # in the order given
    # Set when tracking rewrote ``html`` (see ``mailpass.tracking.sending``): the id its tokens
    # name and the URLs its click tokens lead to.
    tracking_id: str | None = None
    tracked_links: tuple[str, ...] = ()

    @property
    def envelope_recipients(self) -> list[str]:
        """Every RCPT TO address, de-duplicated in order: To, then Cc, then Bcc."""
        if len(self.to) == 1 and not self.cc and not self.bcc:  # most messages
            return [self.to[0].email]
        seen: dict[str, None] = {}
        for address in (*self.to, *self.cc, *self.bcc):
            seen.setdefault(address.email, None)
        return list(seen)


def format_addresses(addresses: tuple[Address, ...]) -> str:
    """The addresses as a list column holds them (``to_email``, ``reply_to``): joined by ", "."""
    if len(addresses) == 1:  # most lists
        return addresses[0].email
    return ", ".join([address.email for address in addresses])
