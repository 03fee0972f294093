"""Every query about messages, their events and the capture inbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailpass.storage.tables import captured_mail, events, messages

__all__ = [
    "find_message",
    "insert_captured",
    "insert_message",
    "insert_messages",
    "list_events",
    "mark_failed",
    "mark_sent",
]


async def insert_message(connection: AsyncConnection, values: dict[str, Any]) -> int:
    """Record a message; returns its primary key (the batch API's ``queue_id``)."""
    result = await connection.execute(messages.insert().values(values).returning(messages.c.id))
    return int(result.scalar_one())


async def insert_messages(connection: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Record many messages in one statement; their primary keys, in the order given."""
    result = await connection.execute(
        messages.insert().returning(messages.c.id, sort_by_parameter_order=True), rows
    )
    return [int(row.id) for row in result]


async def mark_sent(
    connection: AsyncConnection, message_pk: int, now: datetime, note: str | None = None
) -> None:
    await connection.execute(
        messages.update()
        .where(messages.c.id == message_pk)
        .values(
            status="sent",
            sent_at=now,
            error_message=note,
            attempts=messages.c.attempts + 1,
            lease_expires_at=None,
            next_attempt_at=None,
        )
    )


async def mark_failed(connection: AsyncConnection, message_pk: int, error_message: str) -> None:
    """A permanent failure: the message gives back its slot of the provider's limits."""
    await connection.execute(
        messages.update()
        .where(messages.c.id == message_pk)
        .values(
            status="failed",
            error_message=error_message,
            attempts=messages.c.attempts + 1,
            slot_at=None,
            lease_expires_at=None,
            next_attempt_at=None,
        )
    )


async def find_message(
    connection: AsyncConnection, user_id: int, message_id: str
) -> sa.RowMapping | None:
    row = (
        await connection.execute(
            sa.select(messages).where(
                messages.c.message_id == message_id, messages.c.user_id == user_id
            )
        )
    ).first()
    return row._mapping if row else None


async def list_events(connection: AsyncConnection, message_pk: int) -> Sequence[sa.RowMapping]:
    result = await connection.execute(
        sa.select(events).where(events.c.message_pk == message_pk).order_by(events.c.id)
    )
    return result.mappings().all()


async def insert_captured(
    connection: AsyncConnection,
    *,
    user_id: int,
    message_id: str,
    envelope_from: str,
    recipients: list[str],
    raw: bytes,
    now: datetime,
) -> None:
    await connection.execute(
        captured_mail.insert().values(
            user_id=user_id,
            message_id=message_id,
            envelope_from=envelope_from,
            recipients=recipients,
            raw=raw,
            created_at=now,
        )
    )
