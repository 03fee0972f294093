"""Every query about SMTP providers."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from mailpass.accounts.keys import ApiKey
from mailpass.accounts.repository import KEY_COLUMNS, key_in
from mailpass.core.statuses import MessageStatus
from mailpass.providers.kinds import ConnectionSettings
from mailpass.providers.models import Health, Provider, ProviderUsage
from mailpass.storage.database import Connection, Database
from mailpass.storage.prepared import PrefixedColumns, PreparedRead
from mailpass.storage.tables import (
    api_keys,
    messages,
    providers,
    suppressions,
    webhook_endpoints,
)

__all__ = [
    "count_queued_for_provider",
    "delete_provider",
    "find_key_and_default_provider",
    "find_provider",
    "get_provider",
    "insert_provider",
    "list_providers",
    "mark_reachable",
    "provider_by_id",
    "read_health",
    "set_default_provider",
    "set_hook_key",
    "update_connection",
    "update_provider",
    "update_tracking",
    "usage_by_provider",
    "write_health",
]


def _provider(row: sa.Row[tuple[object, ...]]) -> Provider:
    return Provider(**row._asdict())


async def insert_provider(
    connection: Connection,
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
    track_opens: bool = False,
    track_clicks: bool = False,
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
            track_opens=track_opens,
            track_clicks=track_clicks,
            hook_token=secrets.token_urlsafe(24),
        )
        .returning(*providers.c)
    )
    return _provider(result.one())


async def list_providers(connection: Connection, user_id: int | None = None) -> list[Provider]:
    query = sa.select(providers).order_by(providers.c.id)
    if user_id is not None:
        query = query.where(providers.c.user_id == user_id)
    return [_provider(row) for row in await connection.execute(query)]


async def find_provider(
    connection: Connection, reference: str, user_id: int | None = None
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


async def get_provider(connection: Connection, provider_id: int, user_id: int) -> Provider | None:
    """One of the account's providers by id; None for an unknown id or another account's."""
    row = (
        await connection.execute(
            sa.select(providers).where(
                providers.c.id == provider_id, providers.c.user_id == user_id
            )
        )
    ).first()
    return _provider(row) if row else None


# /send and /send-batch read their key, the account's default provider and whether it has any
# address on its suppression list in one query: an account with none (most) costs no lookup of
# its recipients.
_PROVIDER = PrefixedColumns(providers, "provider")
_SUPPRESSES = (
    sa.exists().where(suppressions.c.user_id == api_keys.c.user_id).label("account_suppresses")
)
_HAS_WEBHOOKS = (
    sa.exists()
    .where(
        webhook_endpoints.c.user_id == api_keys.c.user_id,
        webhook_endpoints.c.enabled.is_(True),
    )
    .label("account_has_webhooks")
)
_KEY_AND_DEFAULT_PROVIDER = PreparedRead(
    sa.select(*KEY_COLUMNS, *_PROVIDER.columns, _SUPPRESSES, _HAS_WEBHOOKS)
    .select_from(
        api_keys.outerjoin(
            providers,
            sa.and_(providers.c.user_id == api_keys.c.user_id, providers.c.is_default.is_(True)),
        )
    )
    .where(api_keys.c.key_hash == sa.bindparam("key_hash"))
)


async def find_key_and_default_provider(
    database: Database, key_hash: str
) -> tuple[ApiKey | None, Provider | None, bool, bool]:
    """The API key with this hash, its account's default provider, whether the account
    suppresses any address and whether it has a webhook endpoint, in one query."""
    rows = await database.fetch(_KEY_AND_DEFAULT_PROVIDER, key_hash=key_hash)
    if not rows:
        return None, None, False, False
    (row,) = rows
    suppresses = bool(row["account_suppresses"])
    webhooks = bool(row["account_has_webhooks"])
    if row["provider_id"] is None:
        return key_in(row), None, suppresses, webhooks
    return key_in(row), Provider(**_PROVIDER.of(row)), suppresses, webhooks


async def _clear_default(connection: Connection, user_id: int, now: datetime) -> None:
    await connection.execute(
        providers.update()
        .where(providers.c.user_id == user_id, providers.c.is_default.is_(True))
        .values(is_default=False, updated_at=now)
    )


async def set_default_provider(connection: Connection, provider: Provider, now: datetime) -> None:
    await _clear_default(connection, provider.user_id, now)
    await connection.execute(
        providers.update()
        .where(providers.c.id == provider.id)
        .values(is_default=True, updated_at=now)
    )


async def update_connection(
    connection: Connection, provider_id: int, settings: ConnectionSettings, now: datetime
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


async def update_tracking(
    connection: Connection,
    provider_id: int,
    *,
    track_opens: bool | None,
    track_clicks: bool | None,
    now: datetime,
) -> None:
    """Turn open and/or click tracking on or off; None leaves that one as it is."""
    values: dict[str, object] = {"updated_at": now}
    if track_opens is not None:
        values["track_opens"] = track_opens
    if track_clicks is not None:
        values["track_clicks"] = track_clicks
    await connection.execute(providers.update().where(providers.c.id == provider_id).values(values))


async def update_provider(
    connection: Connection,
    provider_id: int,
    *,
    name: str,
    kind: str,
    settings: ConnectionSettings,
    password_encrypted: str | None,
    keep_password: bool,
    from_email: str | None,
    from_name: str | None,
    hourly_limit: int | None,
    daily_limit: int | None,
    now: datetime,
) -> None:
    """Replace a provider's settings; its password stays as it is when ``keep_password``."""
    values: dict[str, object] = {
        "name": name,
        "kind": kind,
        "host": settings.host,
        "port": settings.port,
        "security": settings.security,
        "username": settings.username,
        "from_email": from_email,
        "from_name": from_name,
        "hourly_limit": hourly_limit,
        "daily_limit": daily_limit,
        "updated_at": now,
    }
    if not keep_password:
        values["password_encrypted"] = password_encrypted
    await connection.execute(providers.update().where(providers.c.id == provider_id).values(values))


async def set_hook_key(
    connection: Connection, provider_id: int, hook_key_encrypted: str | None, now: datetime
) -> None:
    """Set (or, with None, remove) the key the provider's webhook payloads are checked with."""
    await connection.execute(
        providers.update()
        .where(providers.c.id == provider_id)
        .values(hook_key_encrypted=hook_key_encrypted, updated_at=now)
    )


async def provider_by_id(connection: Connection, provider_id: int) -> Provider | None:
    """The provider with this id, whoever's it is (a webhook names it in its URL)."""
    row = (
        await connection.execute(sa.select(providers).where(providers.c.id == provider_id))
    ).first()
    return _provider(row) if row is not None else None


async def delete_provider(connection: Connection, provider_id: int, user_id: int) -> None:
    """Delete a provider. Its messages stay (``provider_id`` becomes NULL): sent ones keep their
    record, and queued ones fail in the worker with a reason that says the provider is gone.
    Providers that fell back on it no longer do."""
    await connection.execute(providers.delete().where(providers.c.id == provider_id))
    named = await connection.execute(
        sa.select(providers.c.id, providers.c.fallback_ids).where(
            providers.c.user_id == user_id, providers.c.fallback_ids.is_not(None)
        )
    )
    for row in named:
        if provider_id in (row.fallback_ids or ()):
            kept = [other for other in row.fallback_ids if other != provider_id]
            await connection.execute(
                providers.update().where(providers.c.id == row.id).values(fallback_ids=kept or None)
            )


async def set_fallbacks(
    connection: Connection, provider_id: int, fallback_ids: list[int] | None
) -> None:
    await connection.execute(
        providers.update()
        .where(providers.c.id == provider_id)
        .values(fallback_ids=fallback_ids or None)
    )


async def account_provider_ids(connection: Connection, user_id: int) -> set[int]:
    rows = await connection.execute(sa.select(providers.c.id).where(providers.c.user_id == user_id))
    return {row.id for row in rows}


async def providers_by_id(connection: Connection, ids: list[int]) -> dict[int, Provider]:
    if not ids:
        return {}
    rows = await connection.execute(sa.select(providers).where(providers.c.id.in_(ids)))
    return {row.id: Provider(**row._asdict()) for row in rows}


async def count_queued_for_provider(connection: Connection, provider_id: int) -> int:
    """Messages still waiting to go out through this provider."""
    query = sa.select(sa.func.count()).where(
        messages.c.provider_id == provider_id,
        messages.c.status.in_((MessageStatus.QUEUED, MessageStatus.SENDING)),
    )
    return int((await connection.execute(query)).scalar_one())


async def usage_by_provider(
    connection: Connection, user_id: int, now: datetime
) -> dict[int, ProviderUsage]:
    """For each of the account's providers that took a slot in the last 24 hours: how many in
    the last hour and in the last day, counted exactly as the limits count them."""
    hour_ago = now - timedelta(hours=1)
    day_ago = now - timedelta(days=1)
    in_last_hour = sa.case((messages.c.slot_at > hour_ago, 1), else_=0)
    query = (
        sa.select(
            messages.c.provider_id,
            sa.func.sum(in_last_hour).label("last_hour"),
            sa.func.count().label("last_day"),
        )
        .where(
            messages.c.user_id == user_id,
            messages.c.provider_id.is_not(None),
            messages.c.slot_at > day_ago,
        )
        .group_by(messages.c.provider_id)
    )
    return {
        row.provider_id: ProviderUsage(
            last_hour=int(row.last_hour or 0), last_day=int(row.last_day)
        )
        for row in await connection.execute(query)
    }


async def lock_provider_row(connection: Connection, provider_id: int) -> None:
    """PostgreSQL: lock the provider's row until the caller's transaction ends (``FOR UPDATE``),
    so that concurrent transactions counting its slots take turns."""
    await connection.execute(
        sa.select(providers.c.id).where(providers.c.id == provider_id).with_for_update()
    )


async def count_slots_since(connection: Connection, provider_id: int, since: datetime) -> int:
    """Slots of the provider's limits taken after ``since`` (``messages.slot_at``)."""
    query = sa.select(sa.func.count()).where(
        messages.c.provider_id == provider_id, messages.c.slot_at > since
    )
    return int((await connection.execute(query)).scalar_one())


async def nth_slot_since(
    connection: Connection, provider_id: int, since: datetime, skip: int
) -> datetime:
    """When the (``skip`` + 1)-th oldest slot taken after ``since`` was taken: the slot of the
    window that frees next once ``skip`` have been counted past the limit."""
    query = (
        sa.select(messages.c.slot_at)
        .where(messages.c.provider_id == provider_id, messages.c.slot_at > since)
        .order_by(messages.c.slot_at)
        .offset(skip)
        .limit(1)
    )
    taken: datetime = (await connection.execute(query)).scalar_one()
    return taken


# ---------------------------------------------------------------------- the circuit breaker


async def read_health(connection: Connection, provider_id: int, *, lock: bool) -> Health | None:
    """The breaker's state of a provider (None: it was deleted); with ``lock`` (PostgreSQL), its
    row stays locked until the transaction ends, so concurrent writers of it take turns."""
    query = sa.select(
        providers.c.failure_streak,
        providers.c.down_count,
        providers.c.down_until,
        providers.c.down_reason,
    ).where(providers.c.id == provider_id)
    row = (await connection.execute(query.with_for_update() if lock else query)).first()
    return None if row is None else Health(*row)


async def write_health(connection: Connection, provider_id: int, health: Health) -> None:
    """Set the breaker's state; ``updated_at`` stays (it is the provider's settings' time)."""
    await connection.execute(
        providers.update()
        .where(providers.c.id == provider_id)
        .values(
            failure_streak=health.failure_streak,
            down_count=health.down_count,
            down_until=health.down_until,
            down_reason=health.down_reason,
        )
    )


async def mark_reachable(connection: Connection, provider_ids: list[int], now: datetime) -> None:
    """The providers worked: close their breakers (a no-op for those with nothing to reset),
    and make the mail held for them while they were down due now."""
    await connection.execute(
        messages.update()
        .where(
            messages.c.provider_id.in_(provider_ids),
            messages.c.status == MessageStatus.QUEUED,
            messages.c.held_reason.is_not(None),
            messages.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now, held_reason=None)
    )
    await connection.execute(
        providers.update()
        .where(
            providers.c.id.in_(provider_ids),
            sa.or_(providers.c.failure_streak > 0, providers.c.down_until.is_not(None)),
        )
        .values(failure_streak=0, down_count=0, down_until=None, down_reason=None)
    )
