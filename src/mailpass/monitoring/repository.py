"""The database's side of the metrics: a few aggregate reads, taken at each scrape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from mailpass.core.statuses import MessageStatus
from mailpass.storage.database import Connection
from mailpass.storage.tables import messages, providers, webhook_deliveries, workers
from mailpass.webhooks.models import DeliveryState

__all__ = ["Snapshot", "read_snapshot"]


@dataclass(frozen=True, slots=True)
class ProviderState:
    id: int
    name: str
    kind: str
    down: bool


@dataclass(frozen=True, slots=True)
class Snapshot:
    # (status, provider id or None) -> messages
    messages: dict[tuple[str, int | None], int] = field(default_factory=dict)
    queue_due: int = 0
    oldest_due: datetime | None = None
    webhooks_pending: int = 0
    webhooks_due: int = 0
    oldest_webhook_due: datetime | None = None
    providers: tuple[ProviderState, ...] = ()
    live_workers: int = 0


async def read_snapshot(connection: Connection, now: datetime, stale: timedelta) -> Snapshot:
    """The database's aggregates at ``now``; workers silent for ``stale`` are not live."""
    counted = await connection.execute(
        sa.select(messages.c.status, messages.c.provider_id, sa.func.count()).group_by(
            messages.c.status, messages.c.provider_id
        )
    )
    due = (
        await connection.execute(
            sa.select(sa.func.count(), sa.func.min(messages.c.next_attempt_at)).where(
                messages.c.status == MessageStatus.QUEUED, messages.c.next_attempt_at <= now
            )
        )
    ).one()
    pending = (
        await connection.execute(
            sa.select(
                sa.func.count(),
                sa.func.count().filter(webhook_deliveries.c.next_attempt_at <= now),
                sa.func.min(webhook_deliveries.c.next_attempt_at).filter(
                    webhook_deliveries.c.next_attempt_at <= now
                ),
            ).where(webhook_deliveries.c.state == DeliveryState.PENDING)
        )
    ).one()
    known = await connection.execute(
        sa.select(providers.c.id, providers.c.name, providers.c.kind, providers.c.down_until)
    )
    alive_since = now - stale
    live = (
        await connection.execute(
            sa.select(sa.func.count()).where(workers.c.heartbeat_at >= alive_since)
        )
    ).scalar_one()
    return Snapshot(
        messages={(row[0], row[1]): int(row[2]) for row in counted},
        queue_due=int(due[0]),
        oldest_due=due[1],
        webhooks_pending=int(pending[0]),
        webhooks_due=int(pending[1]),
        oldest_webhook_due=pending[2],
        providers=tuple(
            ProviderState(
                id=row.id,
                name=row.name,
                kind=row.kind,
                down=row.down_until is not None and row.down_until > now,
            )
            for row in known
        ),
        live_workers=int(live),
    )
