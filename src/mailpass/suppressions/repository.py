"""Every query about the suppression list."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailpass.storage.connection import upsert_insert
from mailpass.storage.database import Connection
from mailpass.storage.tables import messages, suppressions
from mailpass.suppressions.models import Suppression, SuppressionReason

__all__ = ["add", "add_many", "page", "remove", "suppressed_among"]

_LISTED = sa.select(
    suppressions.c.id,
    suppressions.c.email,
    suppressions.c.reason,
    suppressions.c.created_at,
    messages.c.message_id,
).select_from(suppressions.outerjoin(messages, messages.c.id == suppressions.c.message_pk))


async def suppressed_among(
    connection: Connection, user_id: int, emails: Collection[str]
) -> dict[str, SuppressionReason]:
    """Those of ``emails`` (lower-cased) on the account's list, with why."""
    if not emails:
        return {}
    rows = await connection.execute(
        sa.select(suppressions.c.email, suppressions.c.reason).where(
            suppressions.c.user_id == user_id, suppressions.c.email.in_(sorted(set(emails)))
        )
    )
    return {row.email: SuppressionReason(row.reason) for row in rows}


async def add(
    connection: Connection,
    user_id: int,
    email: str,
    reason: SuppressionReason,
    now: datetime,
    message_pk: int | None = None,
) -> bool:
    """Put ``email`` (lower-cased) on the account's list; False if it was there already (its
    first reason is kept). Two adds of one address at once make one row."""
    result = await connection.execute(
        upsert_insert(connection, suppressions)
        .values(user_id=user_id, email=email, reason=reason, message_pk=message_pk, created_at=now)
        .on_conflict_do_nothing(index_elements=["user_id", "email"])
        .returning(suppressions.c.id)
    )
    return result.first() is not None


async def add_many(connection: Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """``add`` of many addresses at once: rows of user_id, email (lower-cased), reason and
    message_pk."""
    if rows:
        await connection.execute(
            upsert_insert(connection, suppressions)
            .values([{**row, "created_at": now} for row in rows])
            .on_conflict_do_nothing(index_elements=["user_id", "email"])
        )


async def remove(connection: Connection, user_id: int, email: str) -> bool:
    """Take ``email`` off the account's list; whether it was on it."""
    result = await connection.execute(
        suppressions.delete().where(
            suppressions.c.user_id == user_id, suppressions.c.email == email
        )
    )
    return bool(result.rowcount)


async def page(
    connection: Connection, user_id: int, *, search: str | None, limit: int, after: int | None
) -> tuple[list[Suppression], int | None]:
    """Up to ``limit`` of the account's suppressions, newest first, after the one with id
    ``after`` (a page's cursor); with the cursor of the next page, None on the last."""
    query = _LISTED.where(suppressions.c.user_id == user_id)
    if search:
        query = query.where(suppressions.c.email.contains(search.lower(), autoescape=True))
    if after is not None:
        query = query.where(suppressions.c.id < after)
    rows = (
        await connection.execute(query.order_by(suppressions.c.id.desc()).limit(limit + 1))
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [Suppression.of(row) for row in rows], (rows[-1].id if more else None)
