"""A message kept as its columns, and composed from them whenever its bytes are needed.

Composing a message is a fifth of what accepting it costs, and its bytes (a second copy of
the html and text, with the headers) were most of its row. So a message whose columns hold
everything its headers and bodies say is stored without them: a queued one is composed by the
worker before sending, one sent at once (``/send``) was composed to be sent and its bytes are
not kept, and the dashboard composes the headers it shows. Composition is deterministic (the
Date comes from ``created_at``, the boundary from the Message-ID; see
``mailpass.core.mime``), so every attempt sends, and the dashboard shows, the mail that
was composed when it was accepted.

A message whose headers say more than its columns keep, a display name in To, Cc or Reply-To
(the columns hold the addresses alone) or html rewritten for tracking (the column holds the
html as the client sent it), is composed when accepted and stored whole, as before.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mailpass.core.mime import compose
from mailpass.core.outgoing import Address, OutgoingMessage

__all__ = ["attached_content", "kept_as_columns", "mail_of", "outgoing_from_columns"]

# How ``to_email`` and ``reply_to`` join their addresses (``format_addresses``).
_LIST_SEPARATOR = ", "


def kept_as_columns(message: OutgoingMessage, created_at_utc: datetime) -> bool:
    """Whether ``outgoing_from_columns`` gives ``message`` back from its ``messages`` row, so
    that its bytes need not be stored. ``created_at_utc``: the row's ``created_at``, as an
    aware UTC date-time."""
    if (
        message.tracking_id is not None
        or message.extra_headers
        or message.attachments
        or message.date != created_at_utc
    ):
        return False
    for address in (*message.to, *message.reply_to):  # columns of joined addresses
        if address.name or "," in address.email:
            return False
    return all(not address.name for address in message.cc)


def outgoing_from_columns(row: Mapping[Any, Any]) -> OutgoingMessage:
    """The message a ``messages`` row without ``raw`` stands for (see ``kept_as_columns``):
    its columns ``message_id``, ``from_email``, ``from_name``, ``to_email``, ``cc``, ``bcc``,
    ``reply_to``, ``subject``, ``html``, ``text`` and ``created_at``."""
    to_email: str = row["to_email"]
    reply_to: str | None = row["reply_to"]
    return OutgoingMessage(
        message_id=row["message_id"],
        sender=Address(row["from_email"], row["from_name"]),
        to=_addresses(to_email.split(_LIST_SEPARATOR) if to_email else []),
        subject=row["subject"],
        date=row["created_at"].replace(tzinfo=UTC),
        html=row["html"],
        text=row["text"],
        cc=_addresses(row["cc"]),
        bcc=_addresses(row["bcc"]),
        reply_to=_addresses(reply_to.split(_LIST_SEPARATOR) if reply_to else []),
    )


def mail_of(row: Mapping[Any, Any]) -> bytes:
    """The bytes of the mail a ``messages`` row stands for: its kept mail (``raw``, from
    ``message_contents``, when the row was read with it), or its columns composed (see
    ``outgoing_from_columns``). Raises `ValueError` if they cannot be composed."""
    raw: bytes | None = row.get("raw")
    return raw if raw is not None else compose(outgoing_from_columns(row))


def _addresses(emails: list[str]) -> tuple[Address, ...]:
    return tuple(Address(email) for email in emails)


def attached_content(raw: bytes, listed: Sequence[Mapping[str, Any]], index: int) -> bytes | None:
    """The bytes of the message's attachment ``index`` (in the order given, as its
    ``attachments`` column lists them), from its composed mail; None if the mail has no such
    part. compose() writes the inline parts (those with a content id) first, then the others,
    each group in the order given."""
    inline = [item for item in listed if item.get("content_id")]
    if listed[index].get("content_id"):
        position = inline.index(listed[index])
    else:
        position = len(inline) + sum(1 for item in listed[:index] if not item.get("content_id"))
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    parts = [
        part
        for part in parsed.walk()
        if not part.is_multipart() and part.get_content_disposition() in ("attachment", "inline")
    ]
    if position >= len(parts):
        return None
    payload = parts[position].get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None
