"""What the client returns: typed, immutable views of the server's answers.

Times are timezone-aware ``datetime`` objects in UTC. Fields a newer server adds are ignored,
so an older client keeps working.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "AttachmentInfo",
    "BatchItem",
    "BatchResult",
    "CancelledMessage",
    "Event",
    "IgnoredFieldsWarning",
    "Message",
    "MessageStatus",
    "SentMessage",
]


class IgnoredFieldsWarning(UserWarning):
    """The server did not know some fields of the request (a typo such as ``atachments``) and
    did not act on them; they are in the result's ``ignored_fields`` too."""


def _ignored(data: Mapping[str, Any]) -> tuple[str, ...]:
    ignored = tuple(str(name) for name in data.get("ignored_fields") or ())
    if ignored:
        warnings.warn(
            f"MailPass ignored these fields of the request: {', '.join(ignored)}",
            IgnoredFieldsWarning,
            stacklevel=4,
        )
    return ignored


def _time(value: Any) -> datetime | None:
    """The seed's ``2026-01-30T12:00:00`` (always UTC) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _required_time(value: Any) -> datetime:
    moment = _time(value)
    if moment is None:
        raise ValueError(f"not a time: {value!r}")
    return moment


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the provider accepted (``/send``): ``status`` ``"sent"``; or, sent with
    ``scheduled_at``, queued until then: ``"queued"``, with its ``queue_id`` and
    ``scheduled_at``."""

    message_id: str
    status: str
    to: str
    from_email: str
    replayed: bool = False  # the stored answer of an earlier call with the same idempotency key
    ignored_fields: tuple[str, ...] = ()  # fields of the request the server did not act on
    queue_id: int | None = None
    scheduled_at: datetime | None = None
    # cc and bcc recipients left out: they are on the account's suppression list
    suppressed: tuple[str, ...] = ()

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], *, replayed: bool = False) -> SentMessage:
        return cls(
            message_id=data["message_id"],
            status=data["status"],
            to=data["to"],
            from_email=data["from"],
            replayed=replayed,
            ignored_fields=_ignored(data),
            queue_id=data.get("queue_id"),
            scheduled_at=_time(data.get("scheduled_at")),
            suppressed=tuple(data.get("suppressed") or ()),
        )


@dataclass(frozen=True, slots=True)
class CancelledMessage:
    """``mail.cancel``: the message is out of the queue for good (``status`` ``"cancelled"``)."""

    message_id: str
    queue_id: int
    status: str

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> CancelledMessage:
        return cls(message_id=data["message_id"], queue_id=data["queue_id"], status=data["status"])


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One item of a batch, in request order: ``queued`` (with its ids) or ``failed`` (with
    ``error`` and ``details``)."""

    to: str | None
    status: str
    queue_id: int | None = None
    message_id: str | None = None
    error: str | None = None
    details: tuple[Mapping[str, Any], ...] = ()
    code: str | None = None  # failed: VALIDATION_ERROR or RECIPIENT_SUPPRESSED
    suppressed: tuple[str, ...] = ()  # queued: cc and bcc recipients left out

    @property
    def queued(self) -> bool:
        return self.status == "queued"

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> BatchItem:
        return cls(
            to=data.get("to"),
            status=data["status"],
            queue_id=data.get("queue_id"),
            message_id=data.get("message_id"),
            error=data.get("error"),
            code=data.get("code"),
            suppressed=tuple(data.get("suppressed") or ()),
            details=tuple(data.get("details") or ()),
        )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The answer of ``/send-batch``."""

    total: int
    queued: int
    failed: int
    messages: tuple[BatchItem, ...]
    replayed: bool = False
    ignored_fields: tuple[str, ...] = ()  # "priority", "messages.0.atachments": not acted on

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], *, replayed: bool = False) -> BatchResult:
        return cls(
            total=data["total"],
            queued=data["queued"],
            failed=data["failed"],
            messages=tuple(BatchItem.from_wire(item) for item in data["messages"]),
            replayed=replayed,
            ignored_fields=_ignored(data),
        )


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A file a message carries, as the status endpoint lists it."""

    filename: str
    content_type: str
    size: int  # bytes
    content_id: str | None = None  # set for an inline part

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> AttachmentInfo:
        return cls(
            filename=data["filename"],
            content_type=data["content_type"],
            size=data["size"],
            content_id=data.get("content_id"),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """A message as the status endpoint shows it."""

    message_id: str
    status: str
    from_email: str
    to_email: str
    subject: str
    created_at: datetime
    queue_id: int | None = None
    from_name: str | None = None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: str | None = None
    error_message: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    held_reason: str | None = None
    sent_at: datetime | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    test: bool = False
    first_opened_at: datetime | None = None
    first_clicked_at: datetime | None = None
    scheduled_at: datetime | None = None  # when it was asked to be sent, if scheduled
    attachments: tuple[AttachmentInfo, ...] = ()

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Message:
        return cls(
            message_id=data["message_id"],
            status=data["status"],
            from_email=data["from_email"],
            to_email=data["to_email"],
            subject=data["subject"],
            created_at=_required_time(data["created_at"]),
            queue_id=data.get("queue_id"),
            from_name=data.get("from_name"),
            cc=tuple(data.get("cc") or ()),
            bcc=tuple(data.get("bcc") or ()),
            reply_to=data.get("reply_to"),
            error_message=data.get("error_message"),
            attempts=data.get("attempts") or 0,
            next_attempt_at=_time(data.get("next_attempt_at")),
            held_reason=data.get("held_reason"),
            sent_at=_time(data.get("sent_at")),
            tags=tuple(data.get("tags") or ()),
            metadata=dict(data.get("metadata") or {}),
            test=bool(data.get("test", False)),
            first_opened_at=_time(data.get("first_opened_at")),
            first_clicked_at=_time(data.get("first_clicked_at")),
            scheduled_at=_time(data.get("scheduled_at")),
            attachments=tuple(
                AttachmentInfo.from_wire(item) for item in data.get("attachments") or ()
            ),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a message: ``queued``, ``scheduled``, ``sent``,
    ``deferred``, ``failed``, ``cancelled``, ``open``, ``click``, and what its provider
    reported (``delivered``, ``bounced``, ``complained``, ``rejected``, ``unsubscribed``), with
    the fields that apply to it (the others None)."""

    event_type: str
    created_at: datetime
    # open, click: the hit
    ip_address: str | None = None
    user_agent: str | None = None
    url: str | None = None
    machine: bool = False  # a mail scanner or link checker rather than a person
    machine_reason: str | None = None
    # sent: the provider's answer; deferred, failed: the reply or what happened instead
    smtp_reply: str | None = None
    reason: str | None = None
    refused: str | None = None  # sent: the recipients the provider refused
    attempt: int | None = None  # sent, deferred, failed: which attempt, from 1
    next_attempt_at: datetime | None = None  # deferred
    scheduled_at: datetime | None = None  # scheduled
    # reported by the provider's webhook: delivered, deferred, bounced, complained, rejected
    provider: str | None = None  # ses, sendgrid, mailgun; smtp: a report mailed back
    report: str | None = None  # mailed back: dsn (a bounce) or arf (an abuse report)
    recipient: str | None = None
    recipients: tuple[str, ...] = ()  # suppressed: those it was not sent to
    bounce_type: str | None = None  # bounced: hard or soft
    bounce_subtype: str | None = None
    dsn_status: str | None = None  # RFC 3463, e.g. 5.1.1
    diagnostic_code: str | None = None  # bounced: the recipient's server's reply
    classification: str | None = None
    feedback_type: str | None = None  # complained: abuse, …
    reported_at: datetime | None = None  # the provider's time, when earlier than sent's

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            event_type=data["event_type"],
            created_at=_required_time(data["created_at"]),
            ip_address=data.get("ip_address"),
            user_agent=data.get("user_agent"),
            url=data.get("url"),
            machine=bool(data.get("machine", False)),
            machine_reason=data.get("machine_reason"),
            smtp_reply=data.get("smtp_reply"),
            reason=data.get("reason"),
            refused=data.get("refused"),
            attempt=data.get("attempt"),
            next_attempt_at=_time(data.get("next_attempt_at")),
            scheduled_at=_time(data.get("scheduled_at")),
            provider=data.get("provider"),
            report=data.get("report"),
            recipient=data.get("recipient"),
            recipients=tuple(data.get("recipients") or ()),
            bounce_type=data.get("bounce_type"),
            bounce_subtype=data.get("bounce_subtype"),
            dsn_status=data.get("dsn_status"),
            diagnostic_code=data.get("diagnostic_code"),
            classification=data.get("classification"),
            feedback_type=data.get("feedback_type"),
            reported_at=_time(data.get("reported_at")),
        )


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """The answer of ``/status/{message_id}``: the message and its events, oldest first."""

    message: Message
    events: tuple[Event, ...]

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> MessageStatus:
        return cls(
            message=Message.from_wire(data["message"]),
            events=tuple(Event.from_wire(event) for event in data.get("events") or ()),
        )


@dataclass(frozen=True, slots=True)
class Suppression:
    """An address on the account's suppression list (lower-cased), and why."""

    email: str
    reason: str  # hard_bounce, soft_bounces, complaint, unsubscribe, manual
    created_at: datetime
    message_id: str | None = None  # the message that led to it, if any

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Suppression:
        return cls(
            email=data["email"],
            reason=data["reason"],
            created_at=_required_time(data["created_at"]),
            message_id=data.get("message_id"),
        )


@dataclass(frozen=True, slots=True)
class SuppressionPage:
    """A page of the suppression list, newest first; ``next_cursor`` asks for the next one
    (None on the last)."""

    suppressions: tuple[Suppression, ...]
    next_cursor: str | None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> SuppressionPage:
        return cls(
            suppressions=tuple(Suppression.from_wire(item) for item in data["suppressions"]),
            next_cursor=data.get("next_cursor"),
        )
