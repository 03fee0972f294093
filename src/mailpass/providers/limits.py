"""Hourly and daily sending limits over rolling windows, correct across processes.

A message *takes a slot* when it is about to be handed to its provider: ``messages.slot_at``
is set in the same transaction that checks the count, so two requests can never both see the
last free slot. A message the provider refused gives its slot back (``slot_at = NULL``): limits
count mail the provider accepted, or is accepting right now.

Serialisation: on PostgreSQL the provider's row is locked (``SELECT … FOR UPDATE``) for the
length of that short transaction; on SQLite every write transaction already holds the single
write lock (``BEGIN IMMEDIATE``). The queries are the repository's; this module decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailpass.providers import repository
from mailpass.providers.models import Provider
from mailpass.storage.database import Connection

__all__ = [
    "DAY",
    "HOUR",
    "Capacity",
    "LimitReached",
    "check_slot_free",
    "provider_capacity",
]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LimitReached:
    window: str  # "hourly" or "daily"
    limit: int
    retry_after: int  # seconds until the oldest slot in the window frees

    def describe(self) -> str:
        return (
            f"the provider's {self.window} limit of {_count(self.limit, 'message')} is reached; "
            f"retry in {_count(self.retry_after, 'second')}"
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@dataclass(frozen=True, slots=True)
class Capacity:
    """How many more messages a provider may take now, and what stops the next one."""

    free: int | None  # None: no limit at all
    blocked_by: LimitReached | None  # set when free == 0


UNLIMITED = Capacity(free=None, blocked_by=None)


async def provider_capacity(
    connection: Connection, provider: Provider, now: datetime, *, lock: bool
) -> Capacity:
    """Free slots of ``provider`` at ``now``. Call inside the write transaction that then takes
    them; ``lock`` is True on PostgreSQL (the provider's row stays locked until commit)."""
    if not provider.has_limits:
        return UNLIMITED
    if lock:
        await repository.lock_provider_row(connection, provider.id)
    free: int | None = None
    for window_name, limit, window in (
        ("hourly", provider.hourly_limit, HOUR),
        ("daily", provider.daily_limit, DAY),
    ):
        if limit is None:
            continue
        since = now - window
        used = await repository.count_slots_since(connection, provider.id, since)
        if used >= limit:
            # The slot that frees first is the (used - limit + 1)-th oldest in the window.
            frees_at = await repository.nth_slot_since(connection, provider.id, since, used - limit)
            wait = max(1, math.ceil((frees_at + window - now).total_seconds()))
            return Capacity(free=0, blocked_by=LimitReached(window_name, limit, wait))
        free = limit - used if free is None else min(free, limit - used)
    return Capacity(free=free, blocked_by=None)


async def check_slot_free(
    connection: Connection, provider: Provider, now: datetime, *, lock: bool
) -> LimitReached | None:
    """None when ``provider`` can take one more message now, else what stops it."""
    return (await provider_capacity(connection, provider, now, lock=lock)).blocked_by
