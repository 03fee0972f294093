"""Every query about SMTP providers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailpass.providers.kinds import ConnectionSettings
from mailpass.storage.tables import providers

__all__ = [
    "Provider",
    "find_provider",
    "get_default_provider",
    "insert_provider",
    "list_providers",
    "set_default_provider",
    "update_connection",
]


@dataclass(frozen=True, slots=True)
class Provider:
    id: int
    user_id: int
    name: str
    kind: str
    host: str
    port: int
    security: str
    username: str | None
    password_encrypted: str | None
    from_email: str | None
    from_name: str | None
    hourly_limit: int | None
    daily_limit: int | None
    is_default: bool
    created_at: datetime
    updated_at: datetime

    @property
    def has_limits(self) -> bool:
        return self.hourly_limit is not None or self.daily_limit is not None


def _provider(row: sa.Row[tuple[object, ...]]) -> Provider:
    return Provider(**row._asdict())


async def insert_provider(
    connection: AsyncConnection,
    *,
    user_id: int,
    name: str,
    kind: str,
    settings: ConnectionSettings,
    password_encrypted: str | None,
    from_email: str | None,
    from_name: str | None,
    hourly_limit: int | None,
    daily_limit: int | None,
    make_default: bool,
    now: datetime,
) -> Provider:
    """Add a provider; it becomes the default when asked to, or when it is the account's first."""
    has_default = (
        await connection.execute(
            sa.select(providers.c.id).where(
                providers.c.user_id == user_id, providers.c.is_default.is_(True)
            )
        )
    ).first()
    if make_default and has_default:
        await _clear_default(connection, user_id, now)
    result = await connection.execute(
        providers.insert()
        .values(
            user_id=user_id,
            name=name,
            kind=kind,
            host=settings.host,
            port=settings.port,
            security=settings.security,
            username=settings.username,
            password_encrypted=password_encrypted,
            from_email=from_email,
            from_name=from_name,
            hourly_limit=hourly_limit,
            daily_limit=daily_limit,
            is_default=make_default or not has_default,
            created_at=now,
            updated_at=now,
        )
        .returning(*providers.c)
    )
    return _provider(result.one())


async def list_providers(connection: AsyncConnection, user_id: int | None = None) -> list[Provider]:
    query = sa.select(providers).order_by(providers.c.id)
    if user_id is not None:
        query = query.where(providers.c.user_id == user_id)
    return [_provider(row) for row in await connection.execute(query)]


async def find_provider(
    connection: AsyncConnection, reference: str, user_id: int | None = None
) -> Provider | None:
    """A provider by id, or by name (within one account when ``user_id`` is given)."""
    condition = providers.c.name == reference
    if reference.isdigit():
        condition = sa.or_(condition, providers.c.id == int(reference))
    query = sa.select(providers).where(condition).order_by(providers.c.id)
    if user_id is not None:
        query = query.where(providers.c.user_id == user_id)
    rows = (await connection.execute(query)).all()
    if len(rows) != 1:
        return None
    return _provider(rows[0])


async def get_default_provider(connection: AsyncConnection, user_id: int) -> Provider | None:
    row = (
        await connection.execute(
            sa.select(providers).where(
                providers.c.user_id == user_id, providers.c.is_default.is_(True)
            )
        )
    ).first()
    return _provider(row) if row else None


async def _clear_default(connection: AsyncConnection, user_id: int, now: datetime) -> None:
    await connection.execute(
        providers.update()
        .where(providers.c.user_id == user_id, providers.c.is_default.is_(True))
        .values(is_default=False, updated_at=now)
    )


async def set_default_provider(
    connection: AsyncConnection, provider: Provider, now: datetime
) -> None:
    await _clear_default(connection, provider.user_id, now)
    await connection.execute(
        providers.update()
        .where(providers.c.id == provider.id)
        .values(is_default=True, updated_at=now)
    )


async def update_connection(
    connection: AsyncConnection, provider_id: int, settings: ConnectionSettings, now: datetime
) -> None:
    await connection.execute(
        providers.update()
        .where(providers.c.id == provider_id)
        .values(
            host=settings.host,
            port=settings.port,
            security=settings.security,
            username=settings.username,
            updated_at=now,
        )
    )
