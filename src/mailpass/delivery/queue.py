"""The queue in the database: claiming due messages and recording what became of them.

A message is *due* when it is ``queued`` with ``next_attempt_at`` in the past, or when it is
``sending`` under a lease that expired (its worker died). Claiming sets ``sending``, a lease and
a claim token in one transaction: on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so that any
number of workers take disjoint messages without waiting on each other; on SQLite the write
transaction (``BEGIN IMMEDIATE``) is exclusive anyway. Outcomes are written only while the
token still matches, so a worker that outlived its lease can never overwrite a newer claim.

Provider limits are applied while claiming: a provider's free slots are counted under its row
lock and only that many of its messages are claimed; the others stay queued until the oldest
slot in the window frees. Queued mail is never failed for being over a limit.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from mailpass.core.statuses import MessageStatus
from mailpass.core.stored import mail_of
from mailpass.providers.limits import provider_capacity
from mailpass.providers.models import Provider
from mailpass.storage.database import Connection
from mailpass.storage.tables import captured_mail, messages, providers

__all__ = [
    "DUE_QUERIES",
    "Claim",
    "Outcome",
    "OutcomeKind",
    "claim_due_messages",
    "make_claims_due",
    "release_claims",
    "write_outcomes",
]


@dataclass(frozen=True, slots=True)
class Claim:
    """One message a worker now holds: everything needed to send it."""

    id: int
    token: str
    user_id: int
    provider: Provider | None
    message_id: str
    envelope_from: str
    envelope_to: list[str]
    raw: bytes  # empty until ``composed()`` when the message was stored as its columns
    attempts: int  # attempts made before this one
    created_at: datetime
    is_test: bool
    # The row's columns to compose it from, when its bytes were not stored
    # (``mailpass.core.stored``). Composed by ``composed()``, after the claim's transaction.
    columns: Mapping[Any, Any] | None = None

    def composed(self) -> Claim:
        """The claim with the bytes to send: those stored, or its columns composed now.
        Raises `ValueError` if the message cannot be composed (see ``compose``)."""
        if self.columns is None:
            return self
        return replace(self, raw=mail_of(self.columns), columns=None)


class OutcomeKind(StrEnum):
    """What an attempt (or its absence) does to the message's row."""

    SENT = "sent"  # status sent, the attempt counted
    FAILED = "failed"  # status failed, the attempt counted, its slot given back
    RETRY = "retry"  # back to queued until ``next_attempt_at``, the attempt counted
    RELEASED = "released"  # not attempted (the worker stopped): back to queued, nothing counted


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed message."""

    claim: Claim
    kind: OutcomeKind
    error_message: str | None = None
    next_attempt_at: datetime | None = None
    finished_at: datetime | None = None


# The claim's statements are built once, with bound parameters: building them on every claim
# (and SQLAlchemy deriving a cache key from each new object) was a fifth of the worker's CPU.
def _due_ids(due: sa.ColumnElement[bool], order: sa.ColumnElement[Any]) -> sa.Select[Any]:
    return (
        sa.select(messages.c.id, messages.c.provider_id)
        .where(due)
        .order_by(order, messages.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


_NOW = sa.bindparam("now", type_=messages.c.next_attempt_at.type)
# Messages whose worker died come first (there are normally none), then those queued and due.
# Each is served by a partial index of its own (tests/storage/test_message_indexes.py).
DUE_QUERIES = (
    _due_ids(
        sa.and_(messages.c.status == MessageStatus.SENDING, messages.c.lease_expires_at < _NOW),
        messages.c.lease_expires_at,
    ),
    _due_ids(
        sa.and_(messages.c.status == MessageStatus.QUEUED, messages.c.next_attempt_at <= _NOW),
        messages.c.next_attempt_at,
    ),
)
DUE_QUERIES_SKIP_LOCKED = tuple(query.with_for_update(skip_locked=True) for query in DUE_QUERIES)
_PROVIDERS = sa.select(providers).where(providers.c.id.in_(sa.bindparam("ids", expanding=True)))
_CLAIM = (
    messages.update()
    .where(messages.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        status=MessageStatus.SENDING,
        lease_expires_at=sa.bindparam("lease_until", type_=messages.c.lease_expires_at.type),
        claim_token=sa.bindparam("token", type_=messages.c.claim_token.type),
        worker_id=sa.bindparam("worker_id", type_=messages.c.worker_id.type),
        slot_at=sa.case((messages.c.provider_id.is_not(None), _NOW), else_=None),
    )
    .returning(
        messages.c.id,
        messages.c.user_id,
        messages.c.provider_id,
        messages.c.message_id,
        messages.c.from_email,
        messages.c.envelope_to,
        messages.c.raw,
        messages.c.attempts,
        messages.c.created_at,
        messages.c.is_test,
        # What a message stored without its bytes is composed from.
        messages.c.from_name,
        messages.c.to_email,
        messages.c.cc,
        messages.c.bcc,
        messages.c.reply_to,
        messages.c.subject,
        messages.c.html,
        messages.c.text,
    )
)


async def claim_due_messages(
    connection: Connection,
    *,
    limit: int,
    now: datetime,
    lease: timedelta,
    skip_locked: bool,
    worker_id: int | None = None,
    token: str | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` due messages, oldest due first, within their providers' limits,
    for the worker ``worker_id`` (``delivery.workers``; None: a run that beats for nobody),
    under the claim token ``token`` (default: a new one)."""
    # Two queries, not one with OR: each walks its own index in order and stops at the limit,
    # where the OR made PostgreSQL fetch and sort every due message on every claim (133 ms
    # with 13,000 due).
    candidates: list[Any] = []  # rows of (id, provider_id)
    for query in DUE_QUERIES_SKIP_LOCKED if skip_locked else DUE_QUERIES:
        found = await connection.execute(query, {"now": now, "limit": limit - len(candidates)})
        candidates.extend(found.all())
        if len(candidates) >= limit:
            break
    if not candidates:
        return []

    provider_ids = sorted({row.provider_id for row in candidates if row.provider_id is not None})
    by_id: dict[int, Provider] = {}
    if provider_ids:
        rows = await connection.execute(_PROVIDERS, {"ids": provider_ids})
        by_id = {row.id: Provider(**row._asdict()) for row in rows}

    chosen = [row.id for row in candidates if row.provider_id is None]
    # Limits, provider by provider in id order (a fixed lock order: no deadlocks between workers).
    for provider_id in provider_ids:
        provider = by_id[provider_id]
        ids = [row.id for row in candidates if row.provider_id == provider_id]
        capacity = await provider_capacity(connection, provider, now, lock=skip_locked)
        if capacity.free is None or capacity.free >= len(ids):
            chosen.extend(ids)
            continue
        chosen.extend(ids[: capacity.free])
        waiting = ids[capacity.free :]
        # Until a slot frees these wait; "free" is 0 when blocked, so blocked_by is set then.
        retry_after = capacity.blocked_by.retry_after if capacity.blocked_by else 1
        await connection.execute(
            messages.update()
            .where(messages.c.id.in_(waiting))
            .values(
                status=MessageStatus.QUEUED,
                next_attempt_at=now + timedelta(seconds=retry_after),
                lease_expires_at=None,
                claim_token=None,
                worker_id=None,
            )
        )
    if not chosen:
        return []

    token = token or secrets.token_hex(16)
    result = await connection.execute(
        _CLAIM,
        {
            "ids": chosen,
            "lease_until": now + lease,
            "token": token,
            "now": now,
            "worker_id": worker_id,
        },
    )
    claims = [
        Claim(
            id=row.id,
            token=token,
            user_id=row.user_id,
            provider=by_id.get(row.provider_id) if row.provider_id is not None else None,
            message_id=row.message_id,
            envelope_from=row.from_email,
            envelope_to=list(row.envelope_to or []),
            raw=bytes(row.raw or b""),
            attempts=row.attempts,
            created_at=row.created_at,
            is_test=row.is_test,
            columns=row._mapping if row.raw is None else None,
        )
        for row in result
    ]
    claims.sort(key=lambda claim: claim.id)
    return claims


async def write_outcomes(connection: Connection, outcomes: Sequence[Outcome]) -> None:
    """Record many outcomes in one transaction (one commit for a whole group of sends)."""
    for kind in OutcomeKind:
        group = [outcome for outcome in outcomes if outcome.kind == kind]
        if group:
            await connection.execute(
                _OUTCOME_UPDATES[kind], [_outcome_params(outcome) for outcome in group]
            )
    captured = [o for o in outcomes if o.kind == OutcomeKind.SENT and o.claim.is_test]
    if captured:
        await connection.execute(
            captured_mail.insert(),
            [
                {
                    "user_id": o.claim.user_id,
                    "message_id": o.claim.message_id,
                    "envelope_from": o.claim.envelope_from,
                    "recipients": o.claim.envelope_to,
                    "raw": o.claim.raw,
                    "created_at": o.finished_at,
                }
                for o in captured
            ],
        )


def _outcome_params(outcome: Outcome) -> dict[str, Any]:
    return {
        "pk": outcome.claim.id,
        "token": outcome.claim.token,
        "error": outcome.error_message,
        "next_at": outcome.next_attempt_at,
        "finished": outcome.finished_at,
    }


def _update(**values: Any) -> sa.Update:
    return (
        messages.update()
        .where(
            messages.c.id == sa.bindparam("pk"),
            messages.c.claim_token == sa.bindparam("token"),
        )
        .values(lease_expires_at=None, claim_token=None, worker_id=None, **values)
    )


_attempted = messages.c.attempts + 1
_OUTCOME_UPDATES: dict[OutcomeKind, sa.Update] = {
    OutcomeKind.SENT: _update(
        status=MessageStatus.SENT,
        sent_at=sa.bindparam("finished"),
        error_message=sa.bindparam("error"),
        attempts=_attempted,
        next_attempt_at=None,
    ),
    # A message that did not go out gives back its slot of the provider's limits.
    OutcomeKind.FAILED: _update(
        status=MessageStatus.FAILED,
        error_message=sa.bindparam("error"),
        attempts=_attempted,
        next_attempt_at=None,
        slot_at=None,
    ),
    OutcomeKind.RETRY: _update(
        status=MessageStatus.QUEUED,
        error_message=sa.bindparam("error"),
        attempts=_attempted,
        next_attempt_at=sa.bindparam("next_at"),
        slot_at=None,
    ),
    OutcomeKind.RELEASED: _update(
        status=MessageStatus.QUEUED, next_attempt_at=sa.bindparam("next_at"), slot_at=None
    ),
}


async def release_claims(connection: Connection, tokens: list[str], now: datetime) -> int:
    """Make the messages claimed under ``tokens`` due again at once: claims whose transaction
    may or may not have committed when the connection broke. The number released."""
    if not tokens:
        return 0
    return await make_claims_due(connection, messages.c.claim_token.in_(tokens), now)


async def make_claims_due(
    connection: Connection, claimed: sa.ColumnElement[bool], now: datetime
) -> int:
    """Expire, a second ago, the leases of the ``sending`` messages that ``claimed`` selects,
    so that the next claim (whose ``now`` comes later) takes them first; the number of them."""
    result = await connection.execute(
        messages.update()
        .where(messages.c.status == MessageStatus.SENDING, claimed)
        .values(lease_expires_at=now - timedelta(seconds=1), worker_id=None)
    )
    return int(result.rowcount)
