"""Every query about dashboard sign-ins: sessions and failed attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailpass.storage.database import Connection
from mailpass.storage.tables import dashboard_sessions, signin_failures, users

__all__ = [
    "SessionRow",
    "count_failures",
    "delete_expired",
    "delete_session",
    "find_session",
    "forget_failures",
    "insert_session",
    "record_failure",
]


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A live session with what the pages need of its account."""

    id: int
    user_id: int
    email: str
    csrf_token: str
    password_fingerprint: str
    current_password_hash: str | None
    expires_at: datetime


async def insert_session(
    connection: Connection,
    *,
    token_hash: str,
    user_id: int,
    csrf_token: str,
    password_fingerprint: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await connection.execute(
        dashboard_sessions.insert().values(
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            password_fingerprint=password_fingerprint,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def find_session(connection: Connection, token_hash: str, now: datetime) -> SessionRow | None:
    row = (
        await connection.execute(
            sa.select(
                dashboard_sessions.c.id,
                dashboard_sessions.c.user_id,
                users.c.email,
                dashboard_sessions.c.csrf_token,
                dashboard_sessions.c.password_fingerprint,
                users.c.password_hash,
                dashboard_sessions.c.expires_at,
            )
            .join(users, users.c.id == dashboard_sessions.c.user_id)
            .where(dashboard_sessions.c.token_hash == token_hash)
            .where(dashboard_sessions.c.expires_at > now)
        )
    ).first()
    if row is None:
        return None
    return SessionRow(
        id=row.id,
        user_id=row.user_id,
        email=row.email,
        csrf_token=row.csrf_token,
        password_fingerprint=row.password_fingerprint,
        current_password_hash=row.password_hash,
        expires_at=row.expires_at,
    )


async def delete_session(connection: Connection, token_hash: str) -> None:
    await connection.execute(
        dashboard_sessions.delete().where(dashboard_sessions.c.token_hash == token_hash)
    )


async def delete_expired(connection: Connection, now: datetime, failures_before: datetime) -> None:
    """Drop sessions past their end and failures too old to count any more."""
    await connection.execute(
        dashboard_sessions.delete().where(dashboard_sessions.c.expires_at <= now)
    )
    await connection.execute(
        signin_failures.delete().where(signin_failures.c.created_at < failures_before)
    )


async def record_failure(
    connection: Connection, *, email: str, ip_address: str, now: datetime
) -> None:
    await connection.execute(
        signin_failures.insert().values(email=email, ip_address=ip_address, created_at=now)
    )


async def count_failures(
    connection: Connection,
    *,
    since: datetime,
    email: str | None = None,
    ip_address: str | None = None,
) -> tuple[int, datetime | None]:
    """Failures since ``since`` for an e-mail or a client address, and the oldest one's time."""
    query = sa.select(sa.func.count(), sa.func.min(signin_failures.c.created_at)).where(
        signin_failures.c.created_at > since
    )
    if email is not None:
        query = query.where(signin_failures.c.email == email)
    if ip_address is not None:
        query = query.where(signin_failures.c.ip_address == ip_address)
    count, oldest = (await connection.execute(query)).one()
    return int(count), oldest


async def forget_failures(connection: Connection, email: str) -> None:
    await connection.execute(signin_failures.delete().where(signin_failures.c.email == email))
