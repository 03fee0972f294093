"""Every query of webhook intake: receipts, the mail events are about, the events themselves,
the statuses and suppressions they lead to."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailpass.core.statuses import MessageStatus
from mailpass.storage.connection import upsert_insert
from mailpass.storage.database import Connection
from mailpass.storage.tables import bounce_streaks, events, hook_receipts, messages

__all__ = [
    "end_streaks",
    "insert_events",
    "messages_by_id",
    "messages_by_provider_id",
    "new_receipts",
    "prune_receipts",
    "reported_message",
    "set_status",
    "soft_bounce",
]


async def new_receipts(
    connection: Connection, provider_id: int, receipts: Collection[str], now: datetime
) -> set[str]:
    """Note ``receipts`` as the provider's; those not noted before."""
    if not receipts:
        return set()
    result = await connection.execute(
        upsert_insert(connection, hook_receipts)
        .values(
            [
                {"provider_id": provider_id, "receipt": receipt, "received_at": now}
                for receipt in receipts
            ]
        )
        .on_conflict_do_nothing(index_elements=["provider_id", "receipt"])
        .returning(hook_receipts.c.receipt)
    )
    return set(result.scalars())


async def prune_receipts(connection: Connection, before: datetime) -> int:
    result = await connection.execute(
        hook_receipts.delete().where(hook_receipts.c.received_at < before)
    )
    return int(result.rowcount or 0)


async def messages_by_id(
    connection: Connection, user_id: int, message_ids: Collection[str]
) -> dict[str, tuple[int, datetime | None]]:
    """The account's messages among ``message_ids``: by Message-ID, their primary keys and
    when their provider took them."""
    if not message_ids:
        return {}
    # By the Message-ID's own (unique) index alone, the account compared here: with the
    # account in the WHERE clause, PostgreSQL and SQLite may walk the account's index of
    # messages instead, every one of them (170 ms a call at 100,000 messages).
    rows = await connection.execute(
        sa.select(
            messages.c.message_id, messages.c.id, messages.c.sent_at, messages.c.user_id
        ).where(messages.c.message_id.in_(sorted(message_ids)))
    )
    return {row.message_id: (row.id, row.sent_at) for row in rows if row.user_id == user_id}


async def messages_by_provider_id(
    connection: Connection, user_id: int, provider_id: int, ids: Collection[str]
) -> dict[str, tuple[int, datetime | None, str]]:
    """The account's messages sent through the provider among ``ids`` (the provider's own ids
    for them): their primary keys, when the provider took them, and their Message-IDs."""
    if not ids:
        return {}
    rows = await connection.execute(
        sa.select(
            messages.c.provider_message_id,
            messages.c.id,
            messages.c.sent_at,
            messages.c.message_id,
            messages.c.user_id,
            messages.c.provider_id,
        ).where(messages.c.provider_message_id.in_(sorted(ids)))
    )
    return {
        row.provider_message_id: (row.id, row.sent_at, row.message_id)
        for row in rows
        if row.user_id == user_id and row.provider_id == provider_id
    }


@dataclass(frozen=True, slots=True)
class ReportedMessage:
    id: int
    user_id: int
    provider_id: int | None
    message_id: str
    envelope_to: list[str]


async def reported_message(
    connection: Connection, pk: int | None, message_id: str | None
) -> ReportedMessage | None:
    """The message a mailed report is about: the one its return path names, else the one with
    the Message-ID it quotes."""
    if pk is not None:
        condition = messages.c.id == pk
    elif message_id is not None:
        condition = messages.c.message_id == message_id
    else:
        return None
    row = (
        await connection.execute(
            sa.select(
                messages.c.id,
                messages.c.user_id,
                messages.c.provider_id,
                messages.c.message_id,
                messages.c.envelope_to,
                messages.c.to_email,
                messages.c.cc,
                messages.c.bcc,
            ).where(condition)
        )
    ).first()
    if row is None:
        return None
    # The envelope as fixed at acceptance; for older rows, the addresses of its columns.
    envelope = row.envelope_to or [
        *[a.strip() for a in row.to_email.split(",") if a.strip()],
        *(row.cc or []),
        *(row.bcc or []),
    ]
    return ReportedMessage(row.id, row.user_id, row.provider_id, row.message_id, list(envelope))


async def insert_events(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Rows of ``events``: message_pk, event_type, data, created_at."""
    if rows:
        await connection.execute(events.insert(), rows)


async def set_status(
    connection: Connection,
    message_pks: Iterable[int],
    status: MessageStatus,
    *,
    only_from: Collection[MessageStatus],
) -> None:
    """Move the messages that are in one of the ``only_from`` statuses to ``status``."""
    pks = sorted(set(message_pks))
    if pks:
        await connection.execute(
            messages.update()
            .where(messages.c.id.in_(pks), messages.c.status.in_(list(only_from)))
            .values(status=status)
        )


async def soft_bounce(connection: Connection, user_id: int, email: str, now: datetime) -> int:
    """Count one more soft bounce of ``email`` in a row; the count."""
    insert = upsert_insert(connection, bounce_streaks).values(
        user_id=user_id, email=email, soft_bounces=1, updated_at=now
    )
    result = await connection.execute(
        insert.on_conflict_do_update(
            index_elements=["user_id", "email"],
            set_={"soft_bounces": bounce_streaks.c.soft_bounces + 1, "updated_at": now},
        ).returning(bounce_streaks.c.soft_bounces)
    )
    return int(result.scalar_one())


async def end_streaks(connection: Connection, user_id: int, emails: Collection[str]) -> None:
    """Mail reached these addresses: their soft bounces no longer count."""
    if emails:
        await connection.execute(
            bounce_streaks.delete().where(
                bounce_streaks.c.user_id == user_id, bounce_streaks.c.email.in_(sorted(emails))
            )
        )
