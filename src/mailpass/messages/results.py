"""What the messages service answers, as typed values; the API renders them in the seed's
wire format (``mailpass.api.wire``), the dashboard and the CLI as they need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailpass.accounts.keys import ApiKey
from mailpass.core.events import read_data
from mailpass.core.statuses import EventType, MessageStatus
from mailpass.providers.models import Provider

__all__ = [
    "AttachmentInfo",
    "BatchItem",
    "MessageEvent",
    "MessageRecord",
    "QueuedBatch",
    "QueuedMessage",
    "RefusedItem",
    "ScheduledMessage",
    "SendingAccount",
    "SentMessage",
    "StatusLookup",
    "timeline",
]


@dataclass(frozen=True, slots=True)
class SendingAccount:
    """What /send and /send-batch read of the key's account with the key itself."""

    provider: Provider | None  # its default provider
    suppresses: bool = False  # it has addresses on its suppression list
    webhooks: bool = False  # it has an enabled webhook endpoint


@dataclass(frozen=True, slots=True)
class SentMessage:
    """``/send``: the provider accepted the message."""

    message_id: str
    to: str
    sender: str
    ignored: tuple[str, ...] = ()  # unknown fields of the request, by name
    suppressed: tuple[str, ...] = ()  # cc and bcc recipients left out: on the suppression list


@dataclass(frozen=True, slots=True)
class ScheduledMessage:
    """``/send`` with ``scheduled_at``: queued until then."""

    message_id: str
    queue_id: int
    to: str
    sender: str
    scheduled_at: datetime  # naive UTC
    ignored: tuple[str, ...] = ()
    suppressed: tuple[str, ...] = ()  # cc and bcc recipients left out: on the suppression list


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A batch item that was queued."""

    to: str
    queue_id: int
    message_id: str
    suppressed: tuple[str, ...] = ()  # cc and bcc recipients left out: on the suppression list


@dataclass(frozen=True, slots=True)
class RefusedItem:
    """A batch item that failed validation, alone: the others were queued."""

    to: str | None
    error: str  # the problems in one line
    details: list[dict[str, Any]]
    code: str = "VALIDATION_ERROR"  # the error code /send would answer it with


BatchItem = QueuedMessage | RefusedItem


@dataclass(frozen=True, slots=True)
class QueuedBatch:
    """``/send-batch``: each item in the order given."""

    items: list[BatchItem]
    queued: int
    # Unknown fields of the request ("priority") and of its queued items ("messages.0.x").
    ignored: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def failed(self) -> int:
        return len(self.items) - self.queued


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A message as ``/status`` tells it."""

    message_id: str
    queue_id: int
    from_email: str
    from_name: str | None
    to_email: str
    cc: list[str]
    bcc: list[str]
    reply_to: str | None
    subject: str
    status: MessageStatus
    error_message: str | None
    attempts: int
    next_attempt_at: datetime | None
    held_reason: str | None  # why it waits, when not for its own failed attempt
    tags: list[str]
    metadata: dict[str, Any]
    test: bool
    sent_at: datetime | None
    created_at: datetime
    first_opened_at: datetime | None
    first_clicked_at: datetime | None
    attachments: list[AttachmentInfo]
    scheduled_at: datetime | None  # when it was asked to be sent, if it was scheduled
    # The status it was accepted with (queued or sending; None for messages from before this
    # was kept) and the provider's answer when it took the message.
    accepted_as: MessageStatus | None = None
    provider_reply: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> MessageRecord:
        """From the repository's row (``STATUS_COLUMNS``)."""
        return cls(
            message_id=row["message_id"],
            queue_id=row["id"],
            from_email=row["from_email"],
            from_name=row["from_name"],
            to_email=row["to_email"],
            cc=row["cc"],
            bcc=row["bcc"],
            reply_to=row["reply_to"],
            subject=row["subject"],
            status=MessageStatus(row["status"]),
            error_message=row["error_message"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            held_reason=row["held_reason"],
            tags=row["tags"],
            metadata=row["user_metadata"],
            test=row["is_test"],
            sent_at=row["sent_at"],
            created_at=row["created_at"],
            first_opened_at=row["first_opened_at"],
            first_clicked_at=row["first_clicked_at"],
            attachments=[AttachmentInfo.of(item) for item in row["attachments"] or ()],
            scheduled_at=row["scheduled_at"],
            accepted_as=MessageStatus(row["accepted_as"]) if row["accepted_as"] else None,
            provider_reply=row["provider_reply"],
        )


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A file a message carries, as listed (its bytes are in the message's raw mail)."""

    filename: str
    content_type: str
    size: int  # bytes, decoded
    content_id: str | None  # set for an inline part

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> AttachmentInfo:
        """From an item of the ``attachments`` column."""
        return cls(item["filename"], item["content_type"], item["size"], item.get("content_id"))


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """Something that happened to a message (``core.statuses.EventType``). Opens and clicks
    carry the hit (``ip_address``, ``user_agent``, ``url``, ``machine``); the others what
    applies to them in ``data`` (``core.events``)."""

    event_type: EventType
    created_at: datetime
    ip_address: str | None = None
    user_agent: str | None = None
    url: str | None = None
    machine: bool = False
    machine_reason: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_hit(self) -> bool:
        """An open or a click: the seed's shape of an event."""
        return self.event_type in (EventType.OPEN, EventType.CLICK)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> MessageEvent:
        return cls(
            event_type=EventType(row["event_type"]),
            ip_address=row["ip_address"],
            user_agent=row["user_agent"],
            url=row["url"],
            machine=row["is_machine"],
            machine_reason=row["machine_reason"],
            created_at=row["created_at"],
            data=read_data(row["data"]),
        )


def timeline(message: MessageRecord, recorded: Sequence[MessageEvent]) -> list[MessageEvent]:
    """The message's whole story, oldest first: what its row tells (accepted into the queue or
    scheduled, taken by the provider) and the events recorded on their own (each failed
    attempt, a cancellation, opens and clicks)."""
    told: list[MessageEvent] = []
    if message.accepted_as == MessageStatus.QUEUED:
        if message.scheduled_at is not None:
            scheduled = {"scheduled_at": message.scheduled_at}
            told.append(MessageEvent(EventType.SCHEDULED, message.created_at, data=scheduled))
        else:
            told.append(MessageEvent(EventType.QUEUED, message.created_at))
    if message.sent_at is not None:
        sent: dict[str, Any] = {"attempt": message.attempts}
        if message.provider_reply is not None:
            sent["smtp_reply"] = message.provider_reply
        if message.error_message is not None:  # the recipients it refused
            sent["refused"] = message.error_message
        told.append(MessageEvent(EventType.SENT, message.sent_at, data=sent))
    # Stable: at the same time, what the row tells comes first (it happened first).
    return sorted([*told, *recorded], key=lambda event: event.created_at)


@dataclass(frozen=True, slots=True)
class StatusLookup:
    """The request's key and the message it asked about, read in one query. Either may be
    missing; the caller decides what the key may see before telling anything of the message."""

    key: ApiKey | None
    message_id: str  # as normalized for the lookup
    message: MessageRecord | None
    events: list[MessageEvent]
