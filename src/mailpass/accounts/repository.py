"""Every query about users and API keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailpass.accounts.keys import ApiKey
from mailpass.accounts.models import User
from mailpass.storage.database import Connection, Database
from mailpass.storage.prepared import PrefixedColumns, PreparedRead
from mailpass.storage.tables import api_auth_failures, api_keys, users

__all__ = [
    "KEY_COLUMNS",
    "auth_failures_since",
    "create_user",
    "find_key_by_hash",
    "find_user_by_email",
    "forget_auth_failures_before",
    "insert_api_key",
    "key_hash_by_id",
    "key_in",
    "list_keys",
    "list_users",
    "record_auth_failure",
    "revoke_key",
    "revoke_key_of_user",
    "set_password_hash",
    "touch_key",
]


def _user(row: sa.Row[tuple[int, str, str | None, datetime]]) -> User:
    return User(
        id=row.id, email=row.email, password_hash=row.password_hash, created_at=row.created_at
    )


def _key(row: sa.Row[tuple[object, ...]]) -> ApiKey:
    return _key_of(row._mapping)


def _key_of(mapping: Mapping[Any, Any]) -> ApiKey:
    return ApiKey(
        id=mapping["id"],
        user_id=mapping["user_id"],
        name=mapping["name"],
        prefix=mapping["prefix"],
        permissions=frozenset(mapping["permissions"].split()),
        is_test=mapping["is_test"],
        created_at=mapping["created_at"],
        last_used_at=mapping["last_used_at"],
        revoked_at=mapping["revoked_at"],
    )


async def create_user(
    connection: Connection, email: str, now: datetime, password_hash: str | None = None
) -> User:
    result = await connection.execute(
        users.insert()
        .values(email=email, password_hash=password_hash, created_at=now)
        .returning(users.c.id)
    )
    return User(id=result.scalar_one(), email=email, password_hash=password_hash, created_at=now)


async def find_user_by_email(connection: Connection, email: str) -> User | None:
    row = (
        await connection.execute(
            sa.select(users).where(sa.func.lower(users.c.email) == email.lower())
        )
    ).first()
    return _user(row) if row else None


async def list_users(connection: Connection) -> list[User]:
    return [_user(row) for row in await connection.execute(sa.select(users).order_by(users.c.id))]


async def set_password_hash(connection: Connection, user_id: int, password_hash: str) -> None:
    await connection.execute(
        users.update().where(users.c.id == user_id).values(password_hash=password_hash)
    )


async def insert_api_key(
    connection: Connection,
    *,
    user_id: int,
    name: str,
    prefix: str,
    key_hash: str,
    permissions: frozenset[str],
    is_test: bool,
    now: datetime,
) -> int:
    result = await connection.execute(
        api_keys.insert()
        .values(
            user_id=user_id,
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            permissions=" ".join(sorted(permissions)),
            is_test=is_test,
            created_at=now,
        )
        .returning(api_keys.c.id)
    )
    return int(result.scalar_one())


# Every API request runs this one: compiled once, run on the driver (see PreparedRead).
_KEY_BY_HASH = PreparedRead(
    sa.select(api_keys).where(api_keys.c.key_hash == sa.bindparam("key_hash"))
)


async def find_key_by_hash(database: Database, key_hash: str) -> ApiKey | None:
    rows = await database.fetch(_KEY_BY_HASH, key_hash=key_hash)
    return _key_of(rows[0]) if rows else None


_KEY_HASH_BY_ID = PreparedRead(
    sa.select(api_keys.c.key_hash).where(api_keys.c.id == sa.bindparam("key_id"))
)


async def key_hash_by_id(database: Database, key_id: int) -> str | None:
    """The hash of the key with this id (what the SMTP relay's trusted networks name)."""
    rows = await database.fetch(_KEY_HASH_BY_ID, key_id=key_id)
    return str(rows[0]["key_hash"]) if rows else None


# The key's columns, named ``key_<column>``, for a read that fetches a request's key together
# with what the request asks about: one query instead of two. ``api_keys`` must be the table
# the read starts from (``key_hash == :key_hash``), the rest joined to it.
_KEY = PrefixedColumns(api_keys, "key")
KEY_COLUMNS = _KEY.columns


def key_in(row: Mapping[str, Any]) -> ApiKey:
    """The key in a row of a read that selected ``KEY_COLUMNS``."""
    return _key_of(_KEY.of(row))


async def list_keys(connection: Connection, user_id: int | None = None) -> list[ApiKey]:
    query = sa.select(api_keys).order_by(api_keys.c.id)
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    return [_key(row) for row in await connection.execute(query)]


async def revoke_key(connection: Connection, key_id: int, now: datetime) -> bool:
    """Revoke a key; False when there is no such key or it was already revoked."""
    result = await connection.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount > 0


async def revoke_key_of_user(
    connection: Connection, user_id: int, key_id: int, now: datetime
) -> bool:
    """Revoke one of the account's keys; False for another account's, unknown or revoked key."""
    result = await connection.execute(
        api_keys.update()
        .where(
            api_keys.c.id == key_id,
            api_keys.c.user_id == user_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return result.rowcount > 0


async def touch_key(connection: Connection, key_id: int, now: datetime) -> None:
    await connection.execute(
        api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=now)
    )


async def record_auth_failure(connection: Connection, ip_address: str, now: datetime) -> None:
    await connection.execute(
        api_auth_failures.insert().values(ip_address=ip_address, created_at=now)
    )


async def auth_failures_since(
    connection: Connection, ip_address: str, since: datetime
) -> tuple[int, datetime | None]:
    """How many requests from ``ip_address`` were answered 401 after ``since``, and the
    oldest of them."""
    count, oldest = (
        await connection.execute(
            sa.select(sa.func.count(), sa.func.min(api_auth_failures.c.created_at)).where(
                api_auth_failures.c.ip_address == ip_address,
                api_auth_failures.c.created_at > since,
            )
        )
    ).one()
    return int(count), oldest


async def forget_auth_failures_before(connection: Connection, before: datetime) -> None:
    await connection.execute(
        api_auth_failures.delete().where(api_auth_failures.c.created_at <= before)
    )
