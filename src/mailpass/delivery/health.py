"""Whether the queue moves: workers beating, and how long the oldest due message has waited.
``GET /readyz`` tells it to load balancers and orchestrators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from mailpass.core.statuses import MessageStatus
from mailpass.delivery import workers
from mailpass.storage.database import Database
from mailpass.storage.tables import messages

__all__ = ["QueueHealth", "queue_health"]


@dataclass(frozen=True, slots=True)
class QueueHealth:
    live_workers: int  # workers that beat within three beats
    oldest_due_seconds: float  # how long the oldest due message has waited; 0 when none

    @property
    def stalled(self) -> bool:
        """Mail is due and no worker is alive to send it."""
        return self.live_workers == 0 and self.oldest_due_seconds > 0


async def queue_health(database: Database, now: datetime, stale_after: timedelta) -> QueueHealth:
    async with database.read() as connection:
        live = await workers.count_live_workers(connection, now, stale_after)
        oldest = (
            await connection.execute(
                sa.select(sa.func.min(messages.c.next_attempt_at)).where(
                    messages.c.status == MessageStatus.QUEUED,
                    messages.c.next_attempt_at <= now,
                )
            )
        ).scalar_one()
    waited = (now - oldest).total_seconds() if oldest is not None else 0.0
    return QueueHealth(live_workers=live, oldest_due_seconds=max(waited, 0.0))
