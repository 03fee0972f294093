"""Every query of outbound webhooks: endpoints, the outbox, and the dispatcher's claims."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mailpass.storage.database import Connection
from mailpass.storage.tables import messages, webhook_deliveries, webhook_endpoints
from mailpass.webhooks.models import Delivery, DeliveryState, Endpoint
from mailpass.webhooks.signing import new_webhook_id

__all__ = [
    "claim_due",
    "delete_endpoint",
    "enable_endpoint",
    "enqueue",
    "enqueue_test",
    "finish_many",
    "insert_endpoint",
    "list_endpoints",
    "note_endpoint",
    "recent_deliveries",
    "subscribed",
]

TEST_EVENT = "test"  # a delivery of the dashboard's "send test event"
CLAIM_LOOK = 4  # a claim looks at this many times the rows it may take

_ENDPOINT_COLUMNS = [c for c in webhook_endpoints.c if c.name != "secret_encrypted"]


async def insert_endpoint(
    connection: Connection,
    *,
    user_id: int,
    url: str,
    secret_encrypted: str,
    event_types: list[str],
    now: datetime,
) -> Endpoint:
    result = await connection.execute(
        webhook_endpoints.insert()
        .values(
            user_id=user_id,
            url=url,
            secret_encrypted=secret_encrypted,
            event_types=event_types,
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        .returning(*_ENDPOINT_COLUMNS)
    )
    return Endpoint.of(result.one())


async def list_endpoints(connection: Connection, user_id: int) -> list[Endpoint]:
    rows = await connection.execute(
        sa.select(*_ENDPOINT_COLUMNS)
        .where(webhook_endpoints.c.user_id == user_id)
        .order_by(webhook_endpoints.c.id)
    )
    return [Endpoint.of(row) for row in rows]


async def delete_endpoint(connection: Connection, user_id: int, endpoint_id: int) -> bool:
    result = await connection.execute(
        webhook_endpoints.delete().where(
            webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.user_id == user_id
        )
    )
    return bool(result.rowcount)


async def subscribed(connection: Connection, user_ids: Collection[int]) -> set[int]:
    """Those of the accounts with an enabled endpoint: the others' events go nowhere."""
    if not user_ids:
        return set()
    rows = await connection.execute(
        sa.select(webhook_endpoints.c.user_id)
        .where(
            webhook_endpoints.c.user_id.in_(sorted(user_ids)),
            webhook_endpoints.c.enabled.is_(True),
        )
        .distinct()
    )
    return set(rows.scalars())


async def enqueue(
    connection: Connection,
    user_id: int,
    items: Sequence[tuple[str, int, dict[str, Any]]],
    now: datetime,
) -> int:
    """Put each (event type, message primary key, payload) in the outbox of the account's
    enabled endpoints that want it, in the caller's transaction; how many deliveries that
    made."""
    if not items:
        return 0
    endpoints = [
        Endpoint.of(row)
        for row in await connection.execute(
            sa.select(*_ENDPOINT_COLUMNS).where(
                webhook_endpoints.c.user_id == user_id, webhook_endpoints.c.enabled.is_(True)
            )
        )
    ]
    rows = [
        {
            "endpoint_id": endpoint.id,
            "message_pk": message_pk,
            "webhook_id": new_webhook_id(),
            "event_type": event_type,
            "payload": json.dumps(payload, separators=(",", ":")),
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event_type, message_pk, payload in items
        for endpoint in endpoints
        if endpoint.wants(event_type)
    ]
    if rows:
        await connection.execute(webhook_deliveries.insert(), rows)
    return len(rows)


async def enqueue_test(
    connection: Connection, user_id: int, endpoint_id: int, payload: dict[str, Any], now: datetime
) -> bool:
    """A test event for one of the account's endpoints (enabled or not); whether it is one."""
    owned = (
        await connection.execute(
            sa.select(webhook_endpoints.c.id).where(
                webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.user_id == user_id
            )
        )
    ).first()
    if owned is None:
        return False
    await connection.execute(
        webhook_deliveries.insert().values(
            endpoint_id=endpoint_id,
            webhook_id=new_webhook_id(),
            event_type=TEST_EVENT,
            payload=json.dumps(payload, separators=(",", ":")),
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return True


async def enable_endpoint(
    connection: Connection, user_id: int, endpoint_id: int, now: datetime
) -> bool:
    """Turn a disabled endpoint on again (its failures forgotten); whether it is the account's."""
    result = await connection.execute(
        webhook_endpoints.update()
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.user_id == user_id)
        .values(enabled=True, failing_since=None, disabled_reason=None, updated_at=now)
    )
    return bool(result.rowcount)


# The claim's statements, built once with bound parameters: SQLAlchemy then only looks them up
# in its compiled cache (built per claim, they cost more CPU than the claim's own work).
_DUE = sa.select(webhook_deliveries.c.id, webhook_deliveries.c.endpoint_id).where(
    webhook_deliveries.c.state == DeliveryState.PENDING,
    webhook_deliveries.c.next_attempt_at <= sa.bindparam("now"),
    sa.or_(
        webhook_deliveries.c.lease_expires_at.is_(None),
        webhook_deliveries.c.lease_expires_at < sa.bindparam("now"),
    ),
)
_DUE_ORDER = (webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
_DUE_ANYWHERE = _DUE.order_by(*_DUE_ORDER).limit(sa.bindparam("look"))
_DUE_BESIDE_BUSY = (
    _DUE.where(webhook_deliveries.c.endpoint_id.not_in(sa.bindparam("busy", expanding=True)))
    .order_by(*_DUE_ORDER)
    .limit(sa.bindparam("look"))
)
# PostgreSQL's claims skip rows another dispatcher is claiming at the same moment.
_DUE_LOOKS = {
    (locked, beside_busy): look.with_for_update(skip_locked=True) if locked else look
    for locked in (False, True)
    for beside_busy, look in ((False, _DUE_ANYWHERE), (True, _DUE_BESIDE_BUSY))
}
_CLAIMED_IDS = webhook_deliveries.c.id.in_(sa.bindparam("ids", expanding=True))
_LEASE = (
    webhook_deliveries.update()
    .where(_CLAIMED_IDS)
    .values(lease_expires_at=sa.bindparam("until"), claim_token=sa.bindparam("token"))
)
_CLAIMED = (
    sa.select(
        webhook_deliveries.c.id,
        webhook_deliveries.c.endpoint_id,
        webhook_deliveries.c.webhook_id,
        webhook_deliveries.c.event_type,
        webhook_deliveries.c.payload,
        webhook_deliveries.c.attempts,
        webhook_deliveries.c.created_at,
        webhook_endpoints.c.url,
        webhook_endpoints.c.secret_encrypted,
        webhook_endpoints.c.failing_since,
        messages.c.id.label("queue_id"),
        messages.c.to_email,
        messages.c.subject,
        messages.c.tags,
        messages.c.user_metadata,
    )
    .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
    .outerjoin(messages, messages.c.id == webhook_deliveries.c.message_pk)
    .where(_CLAIMED_IDS)
    .order_by(webhook_deliveries.c.id)
)


async def claim_due(
    connection: Connection,
    *,
    limit: int,
    held: Mapping[int, int],
    per_endpoint: int,
    min_room: int = 1,
    now: datetime,
    lease: timedelta,
    token: str,
) -> list[Claimed]:
    """Up to ``limit`` due deliveries, oldest due first, leased under ``token``: each with its
    endpoint's URL and encrypted secret, and its message's fields for the body.

    No endpoint gets more than ``per_endpoint`` together with what the caller ``held`` for it
    already, so that one slow endpoint cannot take every place: endpoints with less room than
    ``min_room`` are left out of the look, and the look spans a few times ``limit`` rows so
    that one endpoint's backlog does not hide the others' deliveries behind it."""
    busy = sorted(e for e, count in held.items() if per_endpoint - count < min_room)
    due = _DUE_LOOKS[connection.dialect.name == "postgresql", bool(busy)]
    parameters: dict[str, Any] = {"now": now, "look": limit * CLAIM_LOOK}
    if busy:
        parameters["busy"] = busy
    taken: dict[int, int] = {}
    ids: list[int] = []
    for delivery_id, endpoint_id in await connection.execute(due, parameters):
        count = taken.get(endpoint_id, held.get(endpoint_id, 0))
        if count >= per_endpoint:
            continue
        taken[endpoint_id] = count + 1
        ids.append(delivery_id)
        if len(ids) == limit:
            break
    if not ids:
        return []
    await connection.execute(_LEASE, {"ids": ids, "until": now + lease, "token": token})
    rows = await connection.execute(_CLAIMED, {"ids": ids})
    return [
        Claimed(
            Delivery(
                id=row.id,
                endpoint_id=row.endpoint_id,
                webhook_id=row.webhook_id,
                event_type=row.event_type,
                payload=row.payload,
                state=DeliveryState.PENDING,
                attempts=row.attempts,
                created_at=row.created_at,
            ),
            token,
            row.url,
            row.secret_encrypted,
            row.failing_since is not None,
            {
                "queue_id": row.queue_id,
                "to": row.to_email,
                "subject": row.subject,
                "tags": row.tags or [],
                "metadata": row.user_metadata or {},
            }
            if row.queue_id is not None
            else {},
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery: Delivery
    token: str  # the claim's: its attempt is noted only while the claim is still this one
    url: str
    secret_encrypted: str
    endpoint_failing: bool  # when claimed: whether the endpoint's deliveries were failing
    message: dict[str, Any]  # the message's fields the body carries


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        webhook_id=row.webhook_id,
        event_type=row.event_type,
        payload=row.payload,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        last_status=row.last_status,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt gave, to be noted with others that ended about then."""

    delivery: Delivery
    token: str
    endpoint_failing: bool  # as claimed: a success then ends the endpoint's failing spell
    ok: bool
    state: DeliveryState
    status: int | None
    error: str | None
    next_attempt_at: datetime | None
    at: datetime


_FINISH = (
    webhook_deliveries.update()
    .where(
        webhook_deliveries.c.id == sa.bindparam("delivery_id"),
        webhook_deliveries.c.claim_token == sa.bindparam("token"),
    )
    .values(
        state=sa.bindparam("new_state"),
        attempts=webhook_deliveries.c.attempts + 1,
        last_status=sa.bindparam("status"),
        last_error=sa.bindparam("error"),
        next_attempt_at=sa.bindparam("next_at"),
        delivered_at=sa.bindparam("delivered"),
        lease_expires_at=None,
        claim_token=None,
    )
)


async def finish_many(connection: Connection, attempts: Sequence[Attempt]) -> None:
    """Record attempts, those whose claim (each one's ``token``) is still theirs."""
    if not attempts:
        return
    await connection.execute(
        _FINISH,
        [
            {
                "delivery_id": a.delivery.id,
                "token": a.token,
                "new_state": a.state,
                "status": a.status,
                "error": a.error,
                "next_at": a.next_attempt_at,
                "delivered": a.at if a.state == DeliveryState.DELIVERED else None,
            }
            for a in attempts
        ],
    )


async def note_endpoint(
    connection: Connection,
    endpoint_id: int,
    *,
    worked: bool,
    now: datetime,
    disable_after: timedelta,
) -> bool:
    """Note whether a delivery to the endpoint worked; a day of failures in a row disables it
    (and fails what waits for it). Whether this disabled it."""
    if worked:
        await connection.execute(
            webhook_endpoints.update()
            .where(
                webhook_endpoints.c.id == endpoint_id,
                webhook_endpoints.c.failing_since.is_not(None),
            )
            .values(failing_since=None)
        )
        return False
    await connection.execute(
        webhook_endpoints.update()
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.failing_since.is_(None))
        .values(failing_since=now)
    )
    disabled = await connection.execute(
        webhook_endpoints.update()
        .where(
            webhook_endpoints.c.id == endpoint_id,
            webhook_endpoints.c.enabled.is_(True),
            webhook_endpoints.c.failing_since <= now - disable_after,
        )
        .values(
            enabled=False,
            updated_at=now,
            disabled_reason=f"disabled at {now.isoformat(timespec='seconds')}Z: no delivery "
            f"worked for {disable_after.total_seconds() / 3600:g} hours",
        )
    )
    if not disabled.rowcount:
        return False
    await connection.execute(
        webhook_deliveries.update()
        .where(
            webhook_deliveries.c.endpoint_id == endpoint_id,
            webhook_deliveries.c.state == DeliveryState.PENDING,
        )
        .values(state=DeliveryState.FAILED, last_error="the endpoint was disabled")
    )
    return True


async def recent_deliveries(
    connection: Connection, user_id: int, endpoint_id: int, limit: int
) -> list[Delivery]:
    rows = await connection.execute(
        sa.select(webhook_deliveries)
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
        .where(
            webhook_deliveries.c.endpoint_id == endpoint_id,
            webhook_endpoints.c.user_id == user_id,
        )
        .order_by(webhook_deliveries.c.id.desc())
        .limit(limit)
    )
    return [_delivery(row) for row in rows]
