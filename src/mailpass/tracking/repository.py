"""Every query about tracking hits: finding a token's message, recording events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailpass.core.statuses import EventType
from mailpass.storage.database import Connection
from mailpass.storage.tables import events, messages

__all__ = [
    "ClickTarget",
    "OpenTarget",
    "RecentClick",
    "find_click_target",
    "find_open_targets",
    "insert_event",
    "insert_events",
    "mark_machine",
    "recent_clicks",
    "refresh_first_clicked",
    "set_first_clicked",
    "set_first_opened",
]


# When the message was delivered: when the provider accepted it, or, while that is not yet
# recorded (a /send still waiting for the provider's answer), when MailPass accepted it.
_DELIVERED_AT = sa.func.coalesce(messages.c.sent_at, messages.c.created_at).label("delivered_at")


@dataclass(frozen=True, slots=True)
class OpenTarget:
    message_pk: int
    delivered_at: datetime
    first_opened_at: datetime | None
    user_id: int
    message_id: str


@dataclass(frozen=True, slots=True)
class ClickTarget:
    message_pk: int
    delivered_at: datetime
    first_clicked_at: datetime | None
    links: tuple[str, ...]
    user_id: int
    message_id: str


@dataclass(frozen=True, slots=True)
class RecentClick:
    event_id: int
    url: str | None
    is_machine: bool


async def find_open_targets(
    connection: Connection, tracking_ids: Iterable[str]
) -> dict[str, OpenTarget]:
    """The messages these tracking ids name: only the columns an open needs."""
    result = await connection.execute(
        sa.select(
            messages.c.tracking_id,
            messages.c.id,
            _DELIVERED_AT,
            messages.c.first_opened_at,
            messages.c.user_id,
            messages.c.message_id,
        ).where(messages.c.tracking_id.in_(list(tracking_ids)))
    )
    return {
        row.tracking_id: OpenTarget(
            row.id, row.delivered_at, row.first_opened_at, row.user_id, row.message_id
        )
        for row in result
    }


async def find_click_target(connection: Connection, tracking_id: str) -> ClickTarget | None:
    row = (
        await connection.execute(
            sa.select(
                messages.c.id,
                _DELIVERED_AT,
                messages.c.first_clicked_at,
                messages.c.tracked_links,
                messages.c.user_id,
                messages.c.message_id,
            ).where(messages.c.tracking_id == tracking_id)
        )
    ).first()
    if row is None:
        return None
    links = tuple(row.tracked_links or ())
    return ClickTarget(
        row.id, row.delivered_at, row.first_clicked_at, links, row.user_id, row.message_id
    )


async def insert_events(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    await connection.execute(events.insert(), list(rows))


async def insert_event(connection: Connection, row: dict[str, Any]) -> int:
    result = await connection.execute(events.insert().values(row).returning(events.c.id))
    return int(result.scalar_one())


async def set_first_opened(connection: Connection, first_opens: dict[int, datetime]) -> None:
    """Record each message's first open, unless another hit got there first.

    The rows are locked in the order of their keys, whatever the order of the hits: two
    processes writing first opens of the same messages in different orders deadlocked, and
    PostgreSQL rolled one back, with every open of its batch."""
    await connection.execute(
        messages.update()
        .where(messages.c.id == sa.bindparam("pk"), messages.c.first_opened_at.is_(None))
        .values(first_opened_at=sa.bindparam("opened_at")),
        [{"pk": pk, "opened_at": at} for pk, at in sorted(first_opens.items())],
    )


async def set_first_clicked(connection: Connection, message_pk: int, at: datetime) -> None:
    await connection.execute(
        messages.update()
        .where(messages.c.id == message_pk, messages.c.first_clicked_at.is_(None))
        .values(first_clicked_at=at)
    )


async def recent_clicks(
    connection: Connection, message_pk: int, since: datetime
) -> list[RecentClick]:
    result = await connection.execute(
        sa.select(events.c.id, events.c.url, events.c.is_machine)
        .where(
            events.c.message_pk == message_pk,
            events.c.event_type == EventType.CLICK,
            events.c.created_at >= since,
        )
        .order_by(events.c.id)
    )
    return [RecentClick(row.id, row.url, row.is_machine) for row in result]


async def mark_machine(connection: Connection, event_ids: list[int], reason: str) -> None:
    await connection.execute(
        events.update()
        .where(events.c.id.in_(event_ids))
        .values(is_machine=True, machine_reason=reason)
    )


async def refresh_first_clicked(connection: Connection, message_pk: int) -> None:
    """The first click not marked as a machine's, after some clicks were marked afterwards."""
    first_human = (
        sa.select(sa.func.min(events.c.created_at))
        .where(
            events.c.message_pk == message_pk,
            events.c.event_type == EventType.CLICK,
            events.c.is_machine.is_(False),
        )
        .scalar_subquery()
    )
    await connection.execute(
        messages.update().where(messages.c.id == message_pk).values(first_clicked_at=first_human)
    )
