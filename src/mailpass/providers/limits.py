"""Hourly and daily sending limits over rolling windows, correct across processes.

A message *takes a slot* when it is about to be handed to its provider: ``messages.slot_at``
is set in the same transaction that checks the count, so two requests can never both see the
last free slot. A message the provider refused gives its slot back (``slot_at = NULL``): limits
count mail the provider accepted, or is accepting right now.

Serialisation: on PostgreSQL the provider's row is locked (``SELECT … FOR UPDATE``) for the
length of that short transaction; on SQLite every write transaction already holds the single
write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailpass.providers.repository import Provider
from mailpass.storage.tables import messages, providers

__all__ = ["DAY", "HOUR", "LimitReached", "check_slot_free", "release_slot"]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LimitReached:
    window: str  # "hourly" or "daily"
    limit: int
    retry_after: int  # seconds until the oldest slot in the window frees

    def describe(self) -> str:
        return (
            f"the provider's {self.window} limit of {self.limit} messages is reached; "
            f"retry in {self.retry_after} seconds"
        )


async def check_slot_free(
    connection: AsyncConnection, provider: Provider, now: datetime, *, lock: bool
) -> LimitReached | None:
    """Whether ``provider`` has a free slot at ``now``. Call inside the write transaction that
    then takes the slot; ``lock`` is True on PostgreSQL."""
    if not provider.has_limits:
        return None
    if lock:
        await connection.execute(
            sa.select(providers.c.id).where(providers.c.id == provider.id).with_for_update()
        )
    for window_name, limit, window in (
        ("hourly", provider.hourly_limit, HOUR),
        ("daily", provider.daily_limit, DAY),
    ):
        if limit is None:
            continue
        since = now - window
        in_window = (
            messages.c.provider_id == provider.id,
            messages.c.slot_at > since,
        )
        used = (await connection.execute(sa.select(sa.func.count()).where(*in_window))).scalar_one()
        if used < limit:
            continue
        # The slot that frees first is the (used - limit + 1)-th oldest in the window.
        frees_at = (
            await connection.execute(
                sa.select(messages.c.slot_at)
                .where(*in_window)
                .order_by(messages.c.slot_at)
                .offset(used - limit)
                .limit(1)
            )
        ).scalar_one()
        wait = (frees_at + window - now).total_seconds()
        return LimitReached(window_name, limit, max(1, math.ceil(wait)))
    return None


async def release_slot(connection: AsyncConnection, message_pk: int) -> None:
    await connection.execute(
        messages.update().where(messages.c.id == message_pk).values(slot_at=None)
    )
