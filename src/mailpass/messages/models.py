"""What the message log's queries are asked and answer (the dashboard's log and overview)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

__all__ = ["HourlyActivity", "MessageFilter", "QueueDepth"]


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """What the dashboard's message log is narrowed to; None means no condition."""

    status: str | None = None
    tag: str | None = None
    recipient: str | None = None  # part of the To address, any case
    since: date | None = None  # created on or after this UTC day
    until: date | None = None  # created on or before this UTC day


@dataclass(frozen=True, slots=True)
class HourlyActivity:
    """Counts per UTC hour (keyed by the hour's start) for one account."""

    sent: dict[datetime, int]
    failed: dict[datetime, int]
    opened: dict[datetime, int]
    clicked: dict[datetime, int]


@dataclass(frozen=True, slots=True)
class QueueDepth:
    queued: int  # waiting, due now or later
    due: int  # of those, due now
    sending: int  # handed to a worker or to /send, not finished
