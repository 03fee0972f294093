"""Every query about idempotency keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mailpass.storage.database import Connection
from mailpass.storage.tables import idempotency_keys

__all__ = [
    "delete_expired_keys",
    "delete_key",
    "find_key",
    "insert_key",
    "store_response",
    "take_over_key",
]


async def delete_expired_keys(connection: Connection, user_id: int, now: datetime) -> None:
    """Forget the account's keys that are past their lifetime."""
    await connection.execute(
        idempotency_keys.delete().where(
            idempotency_keys.c.user_id == user_id, idempotency_keys.c.expires_at <= now
        )
    )


async def insert_key(connection: Connection, values: dict[str, Any]) -> int | None:
    """Record a new key; its primary key, or None when the account already has that key.

    ``ON CONFLICT DO NOTHING``: on PostgreSQL a concurrent insert of the same key waits for the
    other transaction and then does nothing, instead of aborting ours with an error.
    """
    insert = (
        postgresql.insert(idempotency_keys)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(idempotency_keys)
    )
    result = await connection.execute(
        insert.values(values)
        .on_conflict_do_nothing(index_elements=["user_id", "is_test", "idempotency_key"])
        .returning(idempotency_keys.c.id)
    )
    inserted = result.scalar_one_or_none()
    return None if inserted is None else int(inserted)


async def find_key(
    connection: Connection, user_id: int, is_test: bool, key: str
) -> sa.RowMapping | None:
    """The account's record of ``key``, locked for the rest of the transaction (PostgreSQL)."""
    result = await connection.execute(
        sa.select(idempotency_keys)
        .where(
            idempotency_keys.c.user_id == user_id,
            idempotency_keys.c.is_test == is_test,
            idempotency_keys.c.idempotency_key == key,
        )
        .with_for_update()
    )
    return result.mappings().one_or_none()


async def take_over_key(
    connection: Connection, key_pk: int, claim_token: str, locked_until: datetime
) -> None:
    """Give a key whose request never answered (its lease ran out) to a new request."""
    await connection.execute(
        idempotency_keys.update()
        .where(idempotency_keys.c.id == key_pk)
        .values(claim_token=claim_token, locked_until=locked_until)
    )


async def store_response(
    connection: Connection, key_pk: int, claim_token: str, status: int, body: bytes
) -> bool:
    """Keep a request's answer for its retries; False if the claim was lost meanwhile."""
    result = await connection.execute(
        idempotency_keys.update()
        .where(idempotency_keys.c.id == key_pk, idempotency_keys.c.claim_token == claim_token)
        .values(claim_token=None, locked_until=None, response_status=status, response_body=body)
    )
    return result.rowcount == 1


async def delete_key(connection: Connection, key_pk: int, claim_token: str) -> None:
    """Let a key go while its request still holds it, so that a retry runs anew."""
    await connection.execute(
        idempotency_keys.delete().where(
            idempotency_keys.c.id == key_pk, idempotency_keys.c.claim_token == claim_token
        )
    )
