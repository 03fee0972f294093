"""Every query about sending domains and their DKIM keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailpass.domains.models import DkimKey, KeyState, SendingDomain
from mailpass.storage.database import Connection
from mailpass.storage.tables import dkim_keys, sending_domains

__all__ = [
    "add_domain",
    "add_key",
    "delete_domain",
    "delete_key",
    "find_domain",
    "find_domain_by_name",
    "list_domains",
    "promote_key",
    "record_check",
]


async def _with_keys(connection: Connection, rows: Sequence[Any]) -> list[SendingDomain]:
    if not rows:
        return []
    keys: dict[int, list[DkimKey]] = {row.id: [] for row in rows}
    found = await connection.execute(
        sa.select(dkim_keys).where(dkim_keys.c.domain_id.in_(list(keys))).order_by(dkim_keys.c.id)
    )
    for key_row in found:
        keys[key_row.domain_id].append(DkimKey.of(key_row))
    return [
        SendingDomain(
            id=row.id,
            user_id=row.user_id,
            name=row.name,
            created_at=row.created_at,
            checked_at=row.checked_at,
            verified_at=row.verified_at,
            check_results=row.check_results,
            keys=tuple(keys[row.id]),
        )
        for row in rows
    ]


async def list_domains(connection: Connection, user_id: int) -> list[SendingDomain]:
    rows = await connection.execute(
        sa.select(sending_domains)
        .where(sending_domains.c.user_id == user_id)
        .order_by(sending_domains.c.name)
    )
    return await _with_keys(connection, rows.all())


async def find_domain(connection: Connection, user_id: int, domain_id: int) -> SendingDomain | None:
    rows = await connection.execute(
        sa.select(sending_domains).where(
            sending_domains.c.user_id == user_id, sending_domains.c.id == domain_id
        )
    )
    found = await _with_keys(connection, rows.all())
    return found[0] if found else None


async def find_domain_by_name(
    connection: Connection, user_id: int, name: str
) -> SendingDomain | None:
    rows = await connection.execute(
        sa.select(sending_domains).where(
            sending_domains.c.user_id == user_id, sending_domains.c.name == name
        )
    )
    found = await _with_keys(connection, rows.all())
    return found[0] if found else None


async def add_domain(connection: Connection, user_id: int, name: str, now: datetime) -> int:
    """The new domain's id; ``IntegrityError`` when the account has it already."""
    result = await connection.execute(
        sending_domains.insert()
        .values(user_id=user_id, name=name, created_at=now)
        .returning(sending_domains.c.id)
    )
    return int(result.scalar_one())


async def add_key(
    connection: Connection,
    domain_id: int,
    *,
    selector: str,
    algorithm: str,
    public_key: str,
    private_key_encrypted: str,
    state: KeyState,
    now: datetime,
) -> None:
    await connection.execute(
        dkim_keys.insert().values(
            domain_id=domain_id,
            selector=selector,
            algorithm=algorithm,
            public_key=public_key,
            private_key_encrypted=private_key_encrypted,
            state=state,
            created_at=now,
            activated_at=now if state == KeyState.ACTIVE else None,
        )
    )


async def promote_key(connection: Connection, domain_id: int, key_id: int, now: datetime) -> None:
    """``key_id`` signs from now on; the key that did is retired."""
    await connection.execute(
        dkim_keys.update()
        .where(dkim_keys.c.domain_id == domain_id, dkim_keys.c.state == KeyState.ACTIVE)
        .values(state=KeyState.RETIRED)
    )
    await connection.execute(
        dkim_keys.update()
        .where(dkim_keys.c.domain_id == domain_id, dkim_keys.c.id == key_id)
        .values(state=KeyState.ACTIVE, activated_at=now)
    )


async def delete_key(connection: Connection, domain_id: int, selector: str) -> bool:
    """Remove a key that no longer signs (pending or retired); whether there was one."""
    result = await connection.execute(
        dkim_keys.delete().where(
            dkim_keys.c.domain_id == domain_id,
            dkim_keys.c.selector == selector,
            dkim_keys.c.state != KeyState.ACTIVE,
        )
    )
    return bool(result.rowcount)


async def record_check(
    connection: Connection,
    domain_id: int,
    *,
    results: list[dict[str, Any]],
    now: datetime,
    verified_at: datetime | None,
) -> None:
    await connection.execute(
        sending_domains.update()
        .where(sending_domains.c.id == domain_id)
        .values(check_results=results, checked_at=now, verified_at=verified_at)
    )


async def delete_domain(connection: Connection, user_id: int, domain_id: int) -> bool:
    result = await connection.execute(
        sending_domains.delete().where(
            sending_domains.c.user_id == user_id, sending_domains.c.id == domain_id
        )
    )
    return bool(result.rowcount)
