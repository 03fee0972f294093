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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.core.events import attempt_data
from mailpass.core.ids import provider_message_id
from mailpass.core.statuses import EventType, MessageStatus
from mailpass.core.stored import mail_of
from mailpass.providers.circuit import (
    DEFAULT_PROBE_WINDOW,
    CircuitPolicy,
    ProviderAttempts,
    describe_down,
    note_attempts,
)
from mailpass.providers.limits import (
    Capacity,
    LimitReached,
    check_slot_free,
    provider_capacity,
)
from mailpass.providers.models import Provider
from mailpass.storage.database import Connection
from mailpass.storage.tables import (
    captured_mail,
    events,
    message_contents,
    messages,
    providers,
    suppressions,
)
from mailpass.webhooks import repository as webhook_outbox
from mailpass.webhooks.payloads import event_payload

__all__ = [
    "DUE_QUERIES",
    "Claim",
    "Claimed",
    "Outcome",
    "OutcomeKind",
    "claim_due_messages",
    "make_claims_due",
    "move_claim",
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
    # When it was asked to be sent, if it was scheduled: its retries count from then.
    scheduled_at: datetime | None
    is_test: bool
    # The row's columns to compose it from, when its bytes were not stored
    # (``mailpass.core.stored``). Composed by ``composed()``, after the claim's transaction.
    columns: Mapping[Any, Any] | None = None
    probe: bool = False  # the one message that tries a provider whose pause is over
    # Its recipients (lower-cased) on the account's suppression list by its turn: not sent to.
    suppressed: frozenset[str] = frozenset()
    # Recipients an earlier attempt delivered to, when it could not reach the others.
    delivered: frozenset[str] = frozenset()
    # Its provider's fallbacks, in order (``delivery.failover``), and why it goes to them
    # without trying its provider first (down, at its limit); None: its provider first.
    fallbacks: tuple[Provider, ...] = ()
    fail_over_because: str | None = None

    @property
    def recipients(self) -> list[str]:
        """The envelope's recipients it goes to: those not suppressed since it was queued, and
        not delivered to by an earlier attempt."""
        if not self.suppressed and not self.delivered:
            return self.envelope_to
        return [
            address
            for address in self.envelope_to
            if address.lower() not in self.suppressed and address not in self.delivered
        ]

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
    # Not attempted (the worker stopped, or the provider is held down): back to queued until
    # ``next_attempt_at``, nothing counted.
    RELEASED = "released"
    # Not attempted: every recipient is suppressed. Status suppressed, its slot given back.
    SUPPRESSED = "suppressed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed message."""

    claim: Claim
    kind: OutcomeKind
    error_message: str | None = None
    next_attempt_at: datetime | None = None
    finished_at: datetime | None = None
    unreachable: bool = False  # the provider did not answer (``providers.circuit``)
    # A RETRY of a message delivered to some recipients: those (the retry leaves them out).
    delivered: tuple[str, ...] = ()
    # The provider the message is to be recorded under again, when an attempt moved it to a
    # fallback that could not take it either (``delivery.failover``).
    provider_id: int | None = None
    # A fallback took it, or refused it: it says nothing of whether its own provider works.
    failed_over: bool = False
    held_reason: str | None = None  # RELEASED: why it waits
    reply: str | None = None  # SENT: the provider's answer to DATA


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
# A second look, past the providers with no room left or down: provider by provider, through
# the index of queued mail by provider (migration 0012). Its rows are those these statements
# name literally (a bound status would not prove the index holds them). SQLite is told to use
# it: without statistics it would rather read every due message through the other index.
QUEUED_BY_PROVIDER = "ix_messages_provider_id_next_attempt_at"
_QUEUED_OF_A_PROVIDER = "status = 'queued' AND provider_id IS NOT NULL"


def _second_look(sql: str, *, skip_locked: bool = False, sqlite: bool = False) -> sa.TextClause:
    table = f"messages INDEXED BY {QUEUED_BY_PROVIDER}" if sqlite else "messages"
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    return sa.text(sql.format(table=table, queued=_QUEUED_OF_A_PROVIDER) + lock).bindparams(
        sa.bindparam("now", type_=messages.c.next_attempt_at.type)
    )


_NEXT_PROVIDER = (
    "SELECT provider_id FROM {table} WHERE {queued} AND provider_id > :after "
    "AND next_attempt_at <= :now ORDER BY provider_id, next_attempt_at LIMIT 1"
)
_PROVIDER_DUE = (
    "SELECT id, provider_id FROM {table} WHERE {queued} AND provider_id = :provider_id "
    "AND next_attempt_at <= :now ORDER BY provider_id, next_attempt_at LIMIT :limit"
)
# The next provider after ``:after`` with queued mail due; that provider's due mail.
NEXT_PROVIDER_DUE = _second_look(_NEXT_PROVIDER)
NEXT_PROVIDER_DUE_SQLITE = _second_look(_NEXT_PROVIDER, sqlite=True)
PROVIDER_DUE = _second_look(_PROVIDER_DUE)
PROVIDER_DUE_SKIP_LOCKED = _second_look(_PROVIDER_DUE, skip_locked=True)
PROVIDER_DUE_SQLITE = _second_look(_PROVIDER_DUE, sqlite=True)
# A second look takes the mail of this many other providers at most, and steps past this many
# providers in all (those passed included) looking for them.
SECOND_LOOK_PROVIDERS = 8
SECOND_LOOK_STEPS = 64
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
        held_reason=None,
    )
    .returning(
        messages.c.id,
        messages.c.user_id,
        messages.c.provider_id,
        messages.c.message_id,
        messages.c.from_email,
        messages.c.envelope_to,
        messages.c.delivered_to,
        messages.c.attempts,
        messages.c.created_at,
        messages.c.scheduled_at,
        messages.c.is_test,
        # What a message not kept whole is composed from.
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


_CONTENTS_OF = sa.select(message_contents.c.message_pk, message_contents.c.raw).where(
    message_contents.c.message_pk.in_(sa.bindparam("pks", expanding=True))
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """What one claim took, and the providers whose due mail it left for lack of ``room``."""

    claims: list[Claim]
    capped: frozenset[int] = frozenset()


# A claim looks at the queue at most this many times: a second look, past the providers that
# had no room or are down, finds the mail of the others when the oldest due mail is all theirs.
CLAIM_LOOKS = 2


async def claim_due_messages(
    connection: Connection,
    *,
    limit: int,
    now: datetime,
    lease: timedelta,
    skip_locked: bool,
    worker_id: int | None = None,
    token: str | None = None,
    room: Callable[[int], int] | None = None,
    probe_window: timedelta = DEFAULT_PROBE_WINDOW,
    look_past: bool = True,
) -> Claimed:
    """Claim up to ``limit`` due messages, oldest due first, for the worker ``worker_id``
    (``delivery.workers``; None: a run that beats for nobody), under the claim token ``token``
    (default: a new one).

    Per provider, at most ``room(provider_id)`` messages (None: no cap), within its hourly and
    daily limits; the mail of a provider that is down (``providers.circuit``) is held until
    it is due to be tried again, except one message, the probe, once that time has come.
    When the oldest due mail is all of providers with no room left (or down), a second look
    finds the others' (unless not ``look_past``: the caller knows there is none just now).
    """
    chosen: list[int] = []
    probes: set[int] = set()
    fallbacks_by_id: dict[int, Provider] = {}  # the fallbacks of the providers met
    failing_over: dict[int, str] = {}  # message id -> why it goes to its fallbacks at once
    taken: dict[int, int] = {}  # provider id -> messages chosen for it in this claim
    by_id: dict[int, Provider] = {}
    capped: set[int] = set()
    passed: set[int] = set()  # providers the next look skips
    locked_up_to = 0  # on PostgreSQL, provider rows are locked in id order only
    seen_all = False
    for look in range(CLAIM_LOOKS if look_past else 1):
        want = limit - len(chosen)
        if want <= 0 or (look and (not passed or seen_all)):
            break
        candidates = await _due_candidates(connection, want, now, skip_locked, sorted(passed))
        if not candidates:
            break
        # Fewer than asked for: that was all the due mail there is, no need to look again.
        seen_all = len(candidates) < want
        new_ids = sorted({row.provider_id for row in candidates} - {None} - by_id.keys())
        if new_ids:
            rows = await connection.execute(_PROVIDERS, {"ids": new_ids})
            by_id.update((row.id, Provider(**row._asdict())) for row in rows)
            fallback_ids = sorted(
                {f for i in new_ids if i in by_id for f in by_id[i].fallbacks} - by_id.keys()
            )
            if fallback_ids:
                rows = await connection.execute(_PROVIDERS, {"ids": fallback_ids})
                fallbacks_by_id.update((row.id, Provider(**row._asdict())) for row in rows)
        chosen.extend(row.id for row in candidates if row.provider_id is None)
        for provider_id in sorted({row.provider_id for row in candidates} - {None}):
            ids = [row.id for row in candidates if row.provider_id == provider_id]
            provider = by_id.get(provider_id)
            if provider is None:  # deleted meanwhile: the worker fails them, saying so
                chosen.extend(ids)
                continue
            locks = provider.has_limits or provider.down_until is not None
            if skip_locked and locks and look and provider_id < locked_up_to:
                continue  # would lock out of order; the next claim takes them
            if provider.is_down(now):
                if _can_fail_over(provider, fallbacks_by_id, by_id, now):
                    # Its fallbacks take its mail while it is down.
                    already = taken.get(provider_id, 0)
                    if room is not None:
                        ids = ids[: max(room(provider_id) - already, 0)]
                    why = describe_down(provider.name, provider.down_until, provider.down_reason)
                    failing_over.update(dict.fromkeys(ids, why))
                    chosen.extend(ids)
                    taken[provider_id] = already + len(ids)
                    continue
                await _hold_down(connection, provider, ids, now, skip_locked=skip_locked)
                passed.add(provider_id)
                continue
            already = taken.get(provider_id, 0)
            fits = len(ids) if room is None else max(room(provider_id) - already, 0)
            if fits < len(ids):
                capped.add(provider_id)
                passed.add(provider_id)
            if not fits:
                continue
            if provider.down_until is not None:
                # Its pause is over: one message tries it, and it stays down for the others
                # until that one has had time to fail.
                ids = ids[:1]
                probes.add(ids[0])
                await connection.execute(
                    providers.update()
                    .where(providers.c.id == provider_id)
                    .values(down_until=now + probe_window)
                )
                passed.add(provider_id)
            if locks:
                locked_up_to = max(locked_up_to, provider_id)
            capacity = await provider_capacity(connection, provider, now, lock=skip_locked)
            if capacity.free is not None:
                free = capacity.free - already
                if free < len(ids):
                    over = ids[max(free, 0) : fits]
                    if over and _can_fail_over(provider, fallbacks_by_id, by_id, now):
                        # Past its limit, its fallbacks take the rest (within their own).
                        why = (
                            capacity.blocked_by.describe()
                            if capacity.blocked_by is not None
                            else f"{provider.name}'s limits leave room for {max(free, 0)} more"
                        )
                        failing_over.update(dict.fromkeys(over, why))
                        chosen.extend(over)
                    else:
                        await _hold_for_limit(connection, ids[max(free, 0) :], capacity, now)
                    passed.add(provider_id)
                    fits = min(fits, max(free, 0))
            fits = min(fits, len(ids))
            chosen.extend(ids[:fits])
            taken[provider_id] = already + fits
    if not chosen:
        return Claimed([], frozenset(capped))

    token = token or secrets.token_hex(16)
    claimed = await connection.execute(
        _CLAIM,
        {
            "ids": chosen,
            "lease_until": now + lease,
            "token": token,
            "now": now,
            "worker_id": worker_id,
        },
    )
    taken_rows = claimed.all()
    # The mail of those kept whole: by key, in a statement of its own (RETURNING has no joins).
    kept = await _contents_of(connection, [row.id for row in taken_rows])
    suppressed = await _suppressed_of(connection, taken_rows)
    claims = [
        Claim(
            id=row.id,
            token=token,
            user_id=row.user_id,
            provider=by_id.get(row.provider_id) if row.provider_id is not None else None,
            message_id=row.message_id,
            envelope_from=row.from_email,
            envelope_to=list(row.envelope_to or []),
            raw=kept.get(row.id, b""),
            attempts=row.attempts,
            created_at=row.created_at,
            scheduled_at=row.scheduled_at,
            is_test=row.is_test,
            columns=row._mapping if row.id not in kept else None,
            probe=row.id in probes,
            suppressed=suppressed.get(row.id, frozenset()),
            delivered=frozenset(row.delivered_to or ()),
            fallbacks=_fallbacks_of(by_id.get(row.provider_id), fallbacks_by_id, by_id),
            fail_over_because=failing_over.get(row.id),
        )
        for row in taken_rows
    ]
    claims.sort(key=lambda claim: claim.id)
    return Claimed(claims, frozenset(capped))


def _fallbacks_of(
    provider: Provider | None, fallbacks: dict[int, Provider], providers_met: dict[int, Provider]
) -> tuple[Provider, ...]:
    if provider is None or not provider.fallbacks:
        return ()
    found = (fallbacks.get(i) or providers_met.get(i) for i in provider.fallbacks)
    return tuple(p for p in found if p is not None and p.user_id == provider.user_id)


def _can_fail_over(
    provider: Provider,
    fallbacks: dict[int, Provider],
    providers_met: dict[int, Provider],
    now: datetime,
) -> bool:
    """Whether one of the provider's fallbacks may take its mail now (one not down)."""
    return any(not p.is_down(now) for p in _fallbacks_of(provider, fallbacks, providers_met))


async def _suppressed_of(connection: Connection, rows: Sequence[Any]) -> dict[int, frozenset[str]]:
    """Of each claimed message, the recipients on its account's suppression list now: the list
    is checked when a message is accepted, and again at its turn, which for a scheduled message
    or a retry may come days later (after a bounce of one of its addresses)."""
    recipients = {row.id: {a.lower() for a in row.envelope_to or ()} for row in rows}
    emails = set().union(*recipients.values())
    if not emails:
        return {}
    found = await connection.execute(
        sa.select(suppressions.c.user_id, suppressions.c.email).where(
            suppressions.c.user_id.in_(sorted({row.user_id for row in rows})),
            suppressions.c.email.in_(sorted(emails)),
        )
    )
    listed = {(row.user_id, row.email) for row in found}
    if not listed:
        return {}
    return {
        row.id: frozenset(a for a in recipients[row.id] if (row.user_id, a) in listed)
        for row in rows
        if any((row.user_id, a) in listed for a in recipients[row.id])
    }


async def _contents_of(connection: Connection, message_pks: list[int]) -> dict[int, bytes]:
    """The composed mail of those of these messages that are kept whole, by primary key."""
    result = await connection.execute(_CONTENTS_OF, {"pks": message_pks})
    return {row.message_pk: bytes(row.raw) for row in result}


async def _due_candidates(
    connection: Connection, limit: int, now: datetime, skip_locked: bool, passed: list[int]
) -> list[Any]:
    """Rows of (id, provider_id) of due messages: the oldest due first; or, with ``passed``
    (the second look), those of other providers than these, provider by provider."""
    if passed:
        return await _others_due(connection, limit, now, skip_locked, set(passed))
    # Two queries, not one with OR: each walks its own index in order and stops at the limit,
    # where the OR made PostgreSQL fetch and sort every due message on every claim (133 ms
    # with 13,000 due).
    candidates: list[Any] = []
    for query in DUE_QUERIES_SKIP_LOCKED if skip_locked else DUE_QUERIES:
        found = await connection.execute(query, {"now": now, "limit": limit - len(candidates)})
        candidates.extend(found.all())
        if len(candidates) >= limit:
            break
    return candidates


async def _others_due(
    connection: Connection, limit: int, now: datetime, skip_locked: bool, passed: set[int]
) -> list[Any]:
    """Due queued mail of providers not ``passed``: a few indexed look-ups each, however much
    mail of the passed ones is due before theirs (reading past it was a scan of the backlog).
    A test key's mail (no provider) is never passed: the first look takes it in its turn."""
    sqlite = connection.dialect.name == "sqlite"
    next_provider = NEXT_PROVIDER_DUE_SQLITE if sqlite else NEXT_PROVIDER_DUE
    if sqlite:
        provider_due = PROVIDER_DUE_SQLITE
    else:
        provider_due = PROVIDER_DUE_SKIP_LOCKED if skip_locked else PROVIDER_DUE
    candidates: list[Any] = []
    after, providers_taken = 0, 0  # provider ids start at 1
    for _ in range(SECOND_LOOK_STEPS):
        if len(candidates) >= limit or providers_taken >= SECOND_LOOK_PROVIDERS:
            break
        found = await connection.execute(next_provider, {"now": now, "after": after})
        provider_id = found.scalar()
        if provider_id is None:
            break
        after = provider_id
        if provider_id in passed:
            continue
        params = {"now": now, "provider_id": provider_id, "limit": limit - len(candidates)}
        candidates.extend((await connection.execute(provider_due, params)).all())
        providers_taken += 1
    return candidates


def _held(ids: Sequence[int] | sa.Select[Any], until: datetime, reason: str) -> sa.Update:
    return (
        messages.update()
        .where(messages.c.id.in_(ids))
        .values(
            status=MessageStatus.QUEUED,
            next_attempt_at=until,
            lease_expires_at=None,
            claim_token=None,
            worker_id=None,
            held_reason=reason,
        )
    )


async def _hold_down(
    connection: Connection, provider: Provider, ids: list[int], now: datetime, *, skip_locked: bool
) -> None:
    """Hold the due mail of a provider that is down until its pause ends: ``ids`` (this claim's,
    locked) and every other queued message of it that is due, unless another claim has it
    locked (that claim holds it then)."""
    until = provider.down_until
    assert until is not None
    reason = describe_down(provider.name, until, provider.down_reason)
    await connection.execute(_held(ids, until, reason))
    others = sa.select(messages.c.id).where(
        messages.c.status == MessageStatus.QUEUED,
        messages.c.next_attempt_at <= now,
        messages.c.provider_id == provider.id,
    )
    await connection.execute(
        _held(others.with_for_update(skip_locked=True) if skip_locked else others, until, reason)
    )


async def _hold_for_limit(
    connection: Connection, ids: list[int], capacity: Capacity, now: datetime
) -> None:
    """Hold messages over their provider's limit until a slot frees (``free`` is 0 when
    blocked, so ``blocked_by`` is set then; else they are tried again in a second)."""
    if capacity.blocked_by is not None:
        wait, reason = capacity.blocked_by.retry_after, capacity.blocked_by.describe()
    else:
        wait, reason = 1, "the provider's limit leaves no slot for it in this claim"
    await connection.execute(_held(ids, now + timedelta(seconds=wait), reason))


async def write_outcomes(
    connection: Connection,
    outcomes: Sequence[Outcome],
    *,
    circuit: CircuitPolicy | None = None,
    lock: bool = False,
) -> dict[int, datetime]:
    """Record many outcomes in one transaction (one commit for a whole group of sends).

    With ``circuit``, what the attempts said of their providers moves the providers' breakers
    on (``lock``: on PostgreSQL). The providers this marked down, with until when.

    A failed attempt (``RETRY``, ``FAILED``) also writes its event, ``deferred`` or
    ``failed``; a sent one is told by the row itself (``sent_at``, ``provider_reply``). A
    message not sent to some or all of its recipients because they were suppressed by then
    writes a ``suppressed`` event naming them."""
    now = utcnow()
    # Before the updates, which let go of the claims the webhooks are written under.
    await _enqueue_webhooks(connection, outcomes, now)
    moved_back = [o for o in outcomes if o.provider_id is not None]
    if moved_back:
        await connection.execute(
            _RECORD_PROVIDER,
            [
                {"pk": o.claim.id, "token": o.claim.token, "provider": o.provider_id}
                for o in moved_back
            ],
        )
    partial = [o for o in outcomes if o.delivered]
    if partial:
        await connection.execute(
            _NOTE_DELIVERED,
            [
                {
                    "pk": o.claim.id,
                    "token": o.claim.token,
                    "delivered": sorted(o.claim.delivered.union(o.delivered)),
                }
                for o in partial
            ],
        )
    for kind in OutcomeKind:
        group = [outcome for outcome in outcomes if outcome.kind == kind]
        if not group:
            continue
        event_type = _ATTEMPT_EVENTS.get(kind)
        if event_type is not None:
            # Before the update, which lets go of the claim the event is written under.
            await connection.execute(
                _ATTEMPT_EVENT, [_attempt_event_params(o, event_type, now) for o in group]
            )
        left_out = [o for o in group if o.claim.suppressed]
        if left_out:
            await connection.execute(
                _ATTEMPT_EVENT, [_suppressed_event_params(o, now) for o in left_out]
            )
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
                    "recipients": o.claim.recipients,
                    "raw": o.claim.raw,
                    "created_at": o.finished_at,
                }
                for o in captured
            ],
        )
    if circuit is None:
        return {}
    attempts = _provider_attempts(outcomes)
    if not attempts:
        return {}
    return await note_attempts(connection, circuit, attempts, utcnow(), lock=lock)


_NOT_ATTEMPTED = (OutcomeKind.RELEASED, OutcomeKind.SUPPRESSED)
# The provider a message is recorded under, under the claim still held (``move_claim``).
_RECORD_PROVIDER = (
    messages.update()
    .where(
        messages.c.id == sa.bindparam("pk"),
        messages.c.claim_token == sa.bindparam("token"),
    )
    .values(provider_id=sa.bindparam("provider", type_=messages.c.provider_id.type))
)


async def move_claim(
    connection: Connection, claim: Claim, provider: Provider, now: datetime, *, lock: bool
) -> LimitReached | bool:
    """Record a claimed message under ``provider`` (a fallback of its own), taking a slot of
    that provider's limits: True once moved, False when the claim is no longer held, or what
    stops the provider taking it (its limit)."""
    over = await check_slot_free(connection, provider, now, lock=lock)
    if over is not None:
        return over
    result = await connection.execute(
        messages.update()
        .where(messages.c.id == claim.id, messages.c.claim_token == claim.token)
        .values(provider_id=provider.id, slot_at=now)
    )
    return bool(result.rowcount)


# The recipients a partly delivered message reached, under the claim still held.
_NOTE_DELIVERED = (
    messages.update()
    .where(
        messages.c.id == sa.bindparam("pk"),
        messages.c.claim_token == sa.bindparam("token"),
    )
    .values(delivered_to=sa.bindparam("delivered", type_=messages.c.delivered_to.type))
)


def _provider_attempts(outcomes: Sequence[Outcome]) -> dict[int, ProviderAttempts]:
    """What the outcomes say of their providers, leaving out what changes nothing: a provider
    that was healthy when claimed and worked again."""
    attempts: dict[int, ProviderAttempts] = {}
    for outcome in outcomes:
        provider, claim = outcome.claim.provider, outcome.claim
        if provider is None or claim.is_test or outcome.kind in _NOT_ATTEMPTED:
            continue
        if outcome.unreachable:
            seen = attempts.setdefault(provider.id, ProviderAttempts())
            seen.failed(outcome.error_message or "", probe=claim.probe)
        elif (claim.probe or not provider.is_healthy) and not outcome.failed_over:
            attempts.setdefault(provider.id, ProviderAttempts()).worked = True
    return attempts


def _outcome_params(outcome: Outcome) -> dict[str, Any]:
    return {
        "pk": outcome.claim.id,
        "token": outcome.claim.token,
        "error": outcome.error_message,
        "next_at": outcome.next_attempt_at,
        "finished": outcome.finished_at,
        "held": outcome.held_reason,
        "reply": outcome.reply,
        "provider_message_id": provider_message_id(outcome.reply),
    }


# The event of a failed attempt, written only while the worker still holds the claim: an
# outcome that comes too late (its lease expired, another worker took the message) leaves none.
_ATTEMPT_EVENTS = {OutcomeKind.RETRY: EventType.DEFERRED, OutcomeKind.FAILED: EventType.FAILED}
_ATTEMPT_EVENT = sa.insert(events).from_select(
    ["message_pk", "event_type", "data", "created_at"],
    sa.select(
        messages.c.id,
        sa.bindparam("event_type", type_=events.c.event_type.type),
        sa.bindparam("data", type_=events.c.data.type),
        sa.bindparam("at", type_=events.c.created_at.type),
    ).where(
        messages.c.id == sa.bindparam("pk"),
        messages.c.claim_token == sa.bindparam("token"),
    ),
)


def _attempt_event_params(outcome: Outcome, event_type: EventType, now: datetime) -> dict[str, Any]:
    data = attempt_data(outcome.error_message, outcome.claim.attempts + 1, outcome.next_attempt_at)
    return {
        "pk": outcome.claim.id,
        "token": outcome.claim.token,
        "event_type": event_type,
        "data": data,
        "at": now,
    }


_WEBHOOK_EVENTS = {
    OutcomeKind.SENT: EventType.SENT,
    OutcomeKind.RETRY: EventType.DEFERRED,
    OutcomeKind.FAILED: EventType.FAILED,
    OutcomeKind.SUPPRESSED: EventType.SUPPRESSED,
}


async def _enqueue_webhooks(
    connection: Connection, outcomes: Sequence[Outcome], now: datetime
) -> None:
    """The webhooks of the outcomes' events, for the accounts with endpoints (one query finds
    there are none, the common case), and only of the claims still held: a late outcome
    writes no event, so it sends none either."""
    relevant = [o for o in outcomes if o.kind in _WEBHOOK_EVENTS]
    users = await webhook_outbox.subscribed(connection, {o.claim.user_id for o in relevant})
    relevant = [o for o in relevant if o.claim.user_id in users]
    if not relevant:
        return
    held_query = sa.select(messages.c.id, messages.c.claim_token).where(
        messages.c.id.in_(sorted(o.claim.id for o in relevant))
    )
    if connection.dialect.name == "postgresql":
        held_query = held_query.with_for_update()
    tokens = {row.id: row.claim_token for row in await connection.execute(held_query)}
    by_user: dict[int, list[tuple[str, int, dict[str, Any]]]] = {}
    for outcome in relevant:
        claim = outcome.claim
        if tokens.get(claim.id) != claim.token:
            continue
        items = by_user.setdefault(claim.user_id, [])
        for event_type, at, data in _webhook_events(outcome, now):
            items.append(
                (event_type, claim.id, event_payload(event_type, at, claim.message_id, data))
            )
    for user_id, items in by_user.items():
        await webhook_outbox.enqueue(connection, user_id, items, now)


def _webhook_events(
    outcome: Outcome, now: datetime
) -> list[tuple[EventType, datetime, dict[str, Any]]]:
    """The events an outcome tells, as ``GET /status`` shows them."""
    claim = outcome.claim
    attempt = claim.attempts + 1
    told: list[tuple[EventType, datetime, dict[str, Any]]] = []
    if outcome.kind == OutcomeKind.SENT:
        sent: dict[str, Any] = {"attempt": attempt}
        if outcome.reply is not None:
            sent["smtp_reply"] = outcome.reply
        if outcome.error_message is not None:  # the recipients it refused
            sent["refused"] = outcome.error_message
        told.append((EventType.SENT, outcome.finished_at or now, sent))
    elif outcome.kind == OutcomeKind.RETRY:
        data = attempt_data(outcome.error_message, attempt, outcome.next_attempt_at)
        told.append((EventType.DEFERRED, now, data))
    elif outcome.kind == OutcomeKind.FAILED:
        told.append((EventType.FAILED, now, attempt_data(outcome.error_message, attempt)))
    if claim.suppressed:
        left_out = [a for a in claim.envelope_to if a.lower() in claim.suppressed]
        told.append((EventType.SUPPRESSED, now, {"recipients": left_out}))
    return told


def _suppressed_event_params(outcome: Outcome, now: datetime) -> dict[str, Any]:
    claim = outcome.claim
    left_out = [a for a in claim.envelope_to if a.lower() in claim.suppressed]
    return {
        "pk": claim.id,
        "token": claim.token,
        "event_type": EventType.SUPPRESSED,
        "data": {"recipients": left_out},
        "at": now,
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
        provider_reply=sa.bindparam("reply"),
        provider_message_id=sa.bindparam("provider_message_id"),
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
    OutcomeKind.SUPPRESSED: _update(
        status=MessageStatus.SUPPRESSED,
        error_message=sa.bindparam("error"),
        next_attempt_at=None,
        slot_at=None,
    ),
    OutcomeKind.RELEASED: _update(
        status=MessageStatus.QUEUED,
        next_attempt_at=sa.bindparam("next_at"),
        slot_at=None,
        held_reason=sa.bindparam("held"),
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
