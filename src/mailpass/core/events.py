"""What an event of a message holds beside its type and time (``events.data``), by type:

- ``deferred``: ``reason`` (the provider's reply, or what happened instead), ``attempt`` (its
  number, from 1) and ``next_attempt_at`` (ISO 8601, UTC);
- ``failed``: ``reason`` and ``attempt``;
- ``cancelled``: nothing more.

``sent`` (``smtp_reply``, ``attempt``), ``queued`` and ``scheduled`` (``scheduled_at``) are
told from the message's row (``messages.results.timeline``); opens and clicks have columns of
their own (``ip_address``, ``user_agent``, ``url``, ``is_machine``, ``machine_reason``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["TIME_FIELDS", "attempt_data", "read_data"]

# Fields of the data that are times: ISO 8601 text in the database, ``datetime`` once read.
TIME_FIELDS = frozenset({"next_attempt_at", "scheduled_at", "reported_at"})


def attempt_data(
    reason: str | None, attempt: int, next_attempt_at: datetime | None = None
) -> dict[str, Any]:
    """The ``data`` of a ``deferred`` (with ``next_attempt_at``) or ``failed`` event."""
    data: dict[str, Any] = {"reason": reason, "attempt": attempt}
    if next_attempt_at is not None:
        data["next_attempt_at"] = next_attempt_at.isoformat()
    return data


def read_data(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """An event's ``data`` as read from the database, its times as ``datetime``."""
    data = dict(stored or {})
    for name in TIME_FIELDS & data.keys():
        if isinstance(data[name], str):
            data[name] = datetime.fromisoformat(data[name])
    return data
