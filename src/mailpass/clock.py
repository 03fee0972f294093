"""Time as MailPass stores it: naive datetimes in UTC (see ``storage.tables``)."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["isoformat", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def isoformat(moment: datetime | None) -> str | None:
    """The wire format of the seed document: ``2026-01-30T12:00:00``, always UTC."""
    if moment is None:
        return None
    return moment.replace(microsecond=0).isoformat()
