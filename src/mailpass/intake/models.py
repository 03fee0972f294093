"""A provider's report as MailPass reads it, whichever provider it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailpass.core.ids import normalize_message_id
from mailpass.core.statuses import EventType
from mailpass.errors import ValidationError

__all__ = ["BounceType", "Intake", "Parsed", "ProviderEvent", "message_id_of", "utc_time"]


class BounceType:
    HARD = "hard"  # the address does not exist, or will never take mail: suppressed at once
    SOFT = "soft"  # for now (a full mailbox, a block): suppressed after too many in a row


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """One thing that happened to one mail, for one recipient when the provider says which."""

    event_type: EventType
    at: datetime  # naive UTC, as every time in the database
    message_id: str | None  # the mail's Message-ID, in angle brackets; None: not given
    recipient: str | None = None
    # The provider's own id for the mail (SES's ``mail.messageId``, the start of SendGrid's
    # ``sg_message_id``): the message is found by it when the Message-ID does not find it.
    provider_message_id: str | None = None
    # What identifies the event at its provider (SendGrid's ``sg_event_id``, Mailgun's event
    # id): the same event reported again is recorded once.
    receipt: str | None = None
    # The event's ``data`` beside ``recipient``: ``bounce_type``, ``diagnostic_code``,
    # ``dsn_status``, ``smtp_reply``, ``reason``, ``feedback_type`` (``core.events``).
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Parsed:
    """What one payload of a webhook holds."""

    events: list[ProviderEvent] = field(default_factory=list)
    ignored: int = 0  # events of kinds MailPass does not record (the provider's opens, …)
    # What identifies the payload itself (an SNS message id, a Mailgun token), and whether a
    # payload seen again is refused (a replayed signature) rather than counted as a duplicate.
    receipt: str | None = None
    refuse_again: bool = False
    confirmed: bool = False  # an SNS subscription this payload asked for was confirmed


@dataclass(slots=True)
class Intake:
    """The answer to a provider: what its payload held and what became of it."""

    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    unmatched: int = 0  # about mail MailPass has no record of (for this account)
    ignored: int = 0
    confirmed: bool = False


def message_id_of(value: object) -> str | None:
    """A Message-ID as providers give it (with or without its brackets), as MailPass keeps it."""
    if not isinstance(value, str) or not value.strip() or len(value) > 250:
        return None
    return normalize_message_id(value)


def utc_time(value: object, what: str) -> datetime:
    """A provider's time (ISO 8601, or Unix seconds) as naive UTC; ValidationError otherwise."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValidationError(f"{what} is not a time: {value!r}") from None
    return moment.astimezone(UTC).replace(tzinfo=None)
