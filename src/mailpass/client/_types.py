"""Types of the values a caller passes in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict

import httpx

__all__ = ["AttachmentParams", "MessageParams", "Recipients", "TimeoutTypes"]

# ``"user@example.com"``, ``"Name <user@example.com>"``, or a list of such strings.
Recipients = str | Sequence[str]

# Seconds for every phase, or an ``httpx.Timeout`` for each phase on its own.
TimeoutTypes = float | httpx.Timeout


class _AttachmentRequired(TypedDict):
    filename: str
    # The file's bytes; a str is taken as base64 already.
    content: bytes | str


class AttachmentParams(_AttachmentRequired, total=False):
    """One file of a message. ``content_type`` defaults to a guess from the file name; a
    ``content_id`` makes it an inline part that the html shows as ``<img src="cid:...">``."""

    content_type: str
    content_id: str


class MessageParams(TypedDict, total=False):
    """One message of ``mail.send_batch(messages=[...])``: the fields of ``mail.send``."""

    to: Recipients
    subject: str
    html: str
    text: str
    from_email: str
    from_name: str
    reply_to: Recipients
    cc: Recipients
    bcc: Recipients
    tags: Sequence[str]
    metadata: Mapping[str, Any]
    headers: Mapping[str, str]
    list_unsubscribe: str | Sequence[str]
    attachments: Sequence[AttachmentParams | Mapping[str, Any]]
    scheduled_at: datetime | str
