"""Every query about messages, their events and the capture inbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from mailpass.accounts.keys import ApiKey
from mailpass.accounts.repository import KEY_COLUMNS, find_key_by_hash, key_in
from mailpass.clock import utcnow
from mailpass.core.events import attempt_data
from mailpass.core.ids import provider_message_id
from mailpass.core.statuses import EventType, MessageStatus
from mailpass.messages.models import HourlyActivity, MessageFilter, QueueDepth
from mailpass.storage.database import Connection, Database
from mailpass.storage.prepared import PreparedInsert, PreparedRead, PreparedWrite
from mailpass.storage.tables import (
    api_keys,
    captured_mail,
    events,
    message_contents,
    messages,
)
from mailpass.webhooks import repository as webhook_outbox
from mailpass.webhooks.payloads import event_payload

__all__ = [
    "MessageWithEvents",
    "find_key_and_message_status",
    "get_message",
    "hourly_activity",
    "insert_captured",
    "insert_message",
    "list_events",
    "list_messages",
    "mark_failed",
    "mark_sent",
    "queue_depth",
    "store_captured",
    "store_message",
    "store_messages",
]


# The statements of /send and /status are built once, with bound parameters: SQLAlchemy then only
# looks them up in its compiled cache. Building one per call, with its values coerced into
# literals, cost three to six times as much CPU as running it (measured on SQLite).
# Events oldest first by when they happened: opens are written shortly after their hit, so a
# click may be written before an open that came first.
_EVENTS_OF_MESSAGE = (
    sa.select(events)
    .where(events.c.message_pk == sa.bindparam("message_pk"))
    .order_by(events.c.created_at, events.c.id)
)
_MARK_SENT = PreparedWrite(
    messages.update()
    .where(messages.c.id == sa.bindparam("message_pk"))
    .values(
        status=MessageStatus.SENT,
        sent_at=sa.bindparam("when"),
        error_message=sa.bindparam("note"),
        provider_reply=sa.bindparam("reply"),
        provider_message_id=sa.bindparam("provider_message_id"),
        attempts=messages.c.attempts + 1,
        lease_expires_at=None,
        next_attempt_at=None,
    )
)
_MARK_FAILED = PreparedWrite(
    messages.update()
    .where(messages.c.id == sa.bindparam("message_pk"))
    .values(
        status=MessageStatus.FAILED,
        error_message=sa.bindparam("reason"),
        attempts=messages.c.attempts + 1,
        slot_at=None,
        lease_expires_at=None,
        next_attempt_at=None,
    )
)
# What /status shows of a message: not its raw bytes, html or text.
STATUS_COLUMNS = (
    messages.c.id,
    messages.c.message_id,
    messages.c.from_email,
    messages.c.from_name,
    messages.c.to_email,
    messages.c.cc,
    messages.c.bcc,
    messages.c.reply_to,
    messages.c.subject,
    messages.c.status,
    messages.c.error_message,
    messages.c.attempts,
    messages.c.next_attempt_at,
    messages.c.held_reason,
    messages.c.tags,
    messages.c.user_metadata,
    messages.c.is_test,
    messages.c.sent_at,
    messages.c.created_at,
    messages.c.first_opened_at,
    messages.c.first_clicked_at,
    messages.c.attachments,
    messages.c.scheduled_at,
    messages.c.accepted_as,
    messages.c.provider_reply,
)
STATUS_EVENT_COLUMNS = (
    events.c.id.label("event_id"),
    events.c.event_type,
    events.c.ip_address,
    events.c.user_agent,
    events.c.url,
    events.c.is_machine,
    events.c.machine_reason,
    events.c.data,
    events.c.created_at.label("event_created_at"),
)
# /status reads its key, the message and the message's events in one query: a row per event,
# one row with NULL event columns when there are none, NULL message columns when the account has
# no such message, and no row when there is no such key. One round trip, one snapshot.
_KEY_AND_MESSAGE_STATUS = PreparedRead(
    sa.select(*KEY_COLUMNS, *STATUS_COLUMNS, *STATUS_EVENT_COLUMNS)
    .select_from(
        api_keys.outerjoin(
            messages.outerjoin(events, events.c.message_pk == messages.c.id),
            sa.and_(
                messages.c.user_id == api_keys.c.user_id,
                messages.c.message_id == sa.bindparam("message_id"),
            ),
        )
    )
    .where(api_keys.c.key_hash == sa.bindparam("key_hash"))
    .order_by(events.c.created_at, events.c.id)
)
_STATUS_KEYS = tuple(str(column.key) for column in STATUS_COLUMNS)
_STATUS_EVENT_KEYS = tuple(str(column.key) for column in STATUS_EVENT_COLUMNS)

# A message (its ``STATUS_COLUMNS``) and its events, oldest first (``STATUS_EVENT_COLUMNS``,
# with ``created_at``).
MessageWithEvents = tuple[dict[str, Any], list[dict[str, Any]]]


async def insert_message(
    connection: Connection, values: dict[str, Any], raw: bytes | None = None
) -> int:
    """Record a message, and its composed mail when it is kept whole (``raw``); returns its
    primary key (the batch API's ``queue_id``)."""
    (key,) = await _message_insert(values).run(connection, [values])
    if raw is not None:
        await _insert_contents(connection, [(key, raw)])
    return key


async def store_messages(
    database: Database, rows: list[dict[str, Any]], raws: Sequence[bytes | None] | None = None
) -> list[int]:
    """Record many messages (rows with the same columns) in a transaction of their own, with
    the composed mail of those kept whole (``raws``, one for each row or None); their primary
    keys, in order."""
    if raws is None or all(raw is None for raw in raws):
        return await database.insert(_message_insert(rows[0]), rows)
    whole = raws

    async def store(connection: Connection) -> list[int]:
        keys = await _message_insert(rows[0]).run(connection, rows)
        kept = [(key, raw) for key, raw in zip(keys, whole, strict=True) if raw is not None]
        await _insert_contents(connection, kept)
        return keys

    return await database.write(store)


async def store_message(
    database: Database, values: dict[str, Any], raw: bytes | None = None
) -> int:
    """Record a message (with its composed mail when it is kept whole: ``raw``) in a
    transaction of its own; returns its primary key."""
    if raw is not None and not database.is_sqlite:
        # Both rows by one statement, in autocommit, merged with the same statement's other
        # runs meanwhile (``Database.execute``): one round trip where a transaction took four.
        (row,) = await database.execute(_whole_insert(values), **values, raw=raw)
        return int(row["message_pk"])
    if raw is not None:
        return await database.write(lambda connection: insert_message(connection, values, raw))
    (row,) = await database.execute(_message_insert(values).returning_key, **values)
    return int(row["id"])


# /send and /send-batch insert rows with one of a few column sets (see messages.service).
_MESSAGE_INSERTS: dict[frozenset[str], PreparedInsert] = {}


def _message_insert(row: dict[str, Any]) -> PreparedInsert:
    columns = frozenset(row)
    insert = _MESSAGE_INSERTS.get(columns)
    if insert is None:
        insert = _MESSAGE_INSERTS[columns] = PreparedInsert(messages, sorted(columns))
    return insert


_CONTENTS_INSERT = PreparedInsert(message_contents, ["message_pk", "raw"])
# A message and its kept mail in one statement (PostgreSQL's data-modifying WITH), by the
# message's columns.
_WHOLE_INSERTS: dict[frozenset[str], PreparedWrite] = {}


def _whole_insert(row: dict[str, Any]) -> PreparedWrite:
    columns = frozenset(row)
    write = _WHOLE_INSERTS.get(columns)
    if write is None:
        inserted = (
            messages.insert()
            .values({name: sa.bindparam(name, type_=messages.c[name].type) for name in sorted(row)})
            .returning(messages.c.id)
            .cte("inserted")
        )
        raw = sa.bindparam("raw", type_=message_contents.c.raw.type)
        write = _WHOLE_INSERTS[columns] = PreparedWrite(
            message_contents.insert()
            .from_select(["message_pk", "raw"], sa.select(inserted.c.id, raw))
            .returning(message_contents.c.message_pk)
        )
    return write


async def _insert_contents(connection: Connection, kept: list[tuple[int, bytes]]) -> None:
    """The kept mail of messages just inserted in this transaction."""
    await _CONTENTS_INSERT.run_keyed(
        connection, [{"message_pk": key, "raw": raw} for key, raw in kept]
    )


async def mark_sent(
    database: Database,
    message_pk: int,
    now: datetime,
    note: str | None = None,
    reply: str | None = None,
    *,
    webhook: tuple[int, str] | None = None,
) -> None:
    """The provider took the message with ``reply`` (``note``: the recipients it refused, if
    any). ``webhook``: (its account, its Message-ID) when the account has webhook endpoints,
    whose ``sent`` goes into the outbox in the same transaction."""
    values = {
        "message_pk": message_pk,
        "when": now,
        "note": note,
        "reply": reply,
        "provider_message_id": provider_message_id(reply),
    }
    if webhook is None:
        await database.execute(_MARK_SENT, **values)
        return
    user_id, message_id = webhook
    data: dict[str, Any] = {"attempt": 1}
    if reply is not None:
        data["smtp_reply"] = reply
    if note is not None:
        data["refused"] = note
    payload = event_payload(EventType.SENT, now, message_id, data)

    async def mark(connection: Connection) -> None:
        await connection.execute(_MARK_SENT.statement, values)
        await webhook_outbox.enqueue(
            connection, user_id, [(EventType.SENT, message_pk, payload)], now
        )

    await database.write(mark)


async def mark_failed(database: Database, message_pk: int, error_message: str) -> None:
    """A permanent failure of /send's one attempt, with its ``failed`` event: the message
    gives back its slot of the provider's limits."""
    failed = _MARK_FAILED.statement
    event = _event(message_pk, EventType.FAILED, utcnow(), attempt_data(error_message, 1))

    async def mark(connection: Connection) -> None:
        await connection.execute(failed, {"message_pk": message_pk, "reason": error_message})
        await connection.execute(events.insert().values(event))
        await _enqueue_event_webhook(connection, message_pk, event)

    await database.write(mark)


async def move_to_provider(
    connection: Connection, message_pk: int, provider_id: int, now: datetime
) -> None:
    """/send's message goes to a fallback of its provider (``delivery.failover``), taking a
    slot of the fallback's limits."""
    await connection.execute(
        messages.update()
        .where(messages.c.id == message_pk)
        .values(provider_id=provider_id, slot_at=now)
    )


async def mark_partly_sent(
    database: Database,
    message_pk: int,
    *,
    delivered: list[str],
    note: str,
    reply: str,
    retry_at: datetime,
) -> None:
    """/send's attempt reached some recipients and was deferred for the others (direct
    delivery: one domain greylisted): back to the queue, for those others alone, with its
    ``deferred`` event."""
    event = _event(message_pk, EventType.DEFERRED, utcnow(), attempt_data(note, 1, retry_at))

    async def mark(connection: Connection) -> None:
        await connection.execute(
            messages.update()
            .where(messages.c.id == message_pk)
            .values(
                status=MessageStatus.QUEUED,
                delivered_to=delivered,
                error_message=note,
                provider_reply=reply,
                attempts=messages.c.attempts + 1,
                next_attempt_at=retry_at,
                lease_expires_at=None,
            )
        )
        await connection.execute(events.insert().values(event))
        await _enqueue_event_webhook(connection, message_pk, event)

    await database.write(mark)


async def _enqueue_event_webhook(
    connection: Connection, message_pk: int, event: dict[str, Any]
) -> None:
    """The webhook of an event just written, when the message's account has endpoints (a
    path that is not hot: one more query)."""
    owner = (
        await connection.execute(
            sa.select(messages.c.user_id, messages.c.message_id).where(messages.c.id == message_pk)
        )
    ).first()
    if owner is None:
        return
    payload = event_payload(
        event["event_type"], event["created_at"], owner.message_id, event["data"] or {}
    )
    await webhook_outbox.enqueue(
        connection, owner.user_id, [(event["event_type"], message_pk, payload)], event["created_at"]
    )


def _event(
    message_pk: int, event_type: EventType, at: datetime, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An ``events`` row of a message's delivery (not an open or a click)."""
    return {"message_pk": message_pk, "event_type": event_type, "data": data, "created_at": at}


async def cancel_queued(database: Database, message_pk: int) -> bool:
    """Mark a queued message cancelled, unless a worker claimed it (or it left the queue)
    first; whether it was. The claim changes the status too, so one of the two wins."""
    async with database.transaction() as connection:
        result = await connection.execute(
            messages.update()
            .where(messages.c.id == message_pk, messages.c.status == MessageStatus.QUEUED)
            .values(
                status=MessageStatus.CANCELLED,
                next_attempt_at=None,
                held_reason=None,
                lease_expires_at=None,
            )
            .returning(messages.c.id)
        )
        if result.first() is None:
            return False
        event = _event(message_pk, EventType.CANCELLED, utcnow())
        await connection.execute(events.insert().values(event))
        await _enqueue_event_webhook(connection, message_pk, event)
        return True


async def current_status(database: Database, message_pk: int) -> MessageStatus | None:
    async with database.read() as connection:
        status = (
            await connection.execute(
                sa.select(messages.c.status).where(messages.c.id == message_pk)
            )
        ).scalar_one_or_none()
    return MessageStatus(status) if status is not None else None


async def find_key_and_message_status(
    database: Database, key_hash: str, message_id: str
) -> tuple[ApiKey | None, MessageWithEvents | None]:
    """The API key with this hash and its account's message with this Message-ID, with the
    message's events; None for either that is not there."""
    if "\x00" in message_id:  # in no Message-ID, and PostgreSQL text cannot hold it
        return await find_key_by_hash(database, key_hash), None
    rows = await database.fetch(_KEY_AND_MESSAGE_STATUS, key_hash=key_hash, message_id=message_id)
    if not rows:
        return None, None
    key = key_in(rows[0])
    if rows[0]["id"] is None:
        return key, None
    message = {name: rows[0][name] for name in _STATUS_KEYS}
    found = [
        {"created_at": row["event_created_at"], **{name: row[name] for name in _STATUS_EVENT_KEYS}}
        for row in rows
        if row["event_id"] is not None
    ]
    return key, (message, found)


async def list_events(connection: Connection, message_pk: int) -> Sequence[sa.RowMapping]:
    result = await connection.execute(_EVENTS_OF_MESSAGE, {"message_pk": message_pk})
    return result.mappings().all()


async def insert_captured(
    connection: Connection,
    *,
    user_id: int,
    message_id: str,
    envelope_from: str,
    recipients: list[str],
    raw: bytes,
    now: datetime,
) -> None:
    await connection.execute(
        captured_mail.insert().values(
            user_id=user_id,
            message_id=message_id,
            envelope_from=envelope_from,
            recipients=recipients,
            raw=raw,
            created_at=now,
        )
    )


async def store_captured(
    database: Database,
    row: dict[str, Any],
    raw: bytes,
    *,
    envelope_from: str,
    recipients: list[str],
    now: datetime,
) -> None:
    """A test key's message, in one transaction: its row (recorded as sent) and its mail in
    the capture inbox."""
    async with database.transaction() as connection:
        await insert_message(connection, row, raw)
        await insert_captured(
            connection,
            user_id=row["user_id"],
            message_id=row["message_id"],
            envelope_from=envelope_from,
            recipients=recipients,
            raw=raw,
            now=now,
        )


# Opens and clicks by machines (mail scanners, link checkers) are kept but not counted as a
# person's.
_HUMAN_EVENT: sa.ColumnElement[bool] = events.c.is_machine.is_not(True)


def _event_count(event_type: str) -> sa.ScalarSelect[int]:
    return (
        sa.select(sa.func.count())
        .where(events.c.message_pk == messages.c.id, events.c.event_type == event_type)
        .where(_HUMAN_EVENT)
        .scalar_subquery()
    )


def _has_tag(dialect: str, tag: str) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        return sa.cast(messages.c.tags, JSONB).contains([tag])
    tags = sa.func.json_each(messages.c.tags).table_valued("value")
    return sa.select(sa.literal(1)).select_from(tags).where(tags.c.value == tag).exists()


async def list_messages(
    connection: Connection,
    user_id: int,
    conditions: MessageFilter,
    *,
    limit: int,
    offset: int = 0,
) -> Sequence[sa.RowMapping]:
    """One page of the account's messages, newest first, with their open and click counts."""
    query = (
        sa.select(
            messages.c.id,
            messages.c.message_id,
            messages.c.to_email,
            messages.c.subject,
            messages.c.status,
            messages.c.tags,
            messages.c.is_test,
            messages.c.source,
            messages.c.attempts,
            messages.c.created_at,
            messages.c.sent_at,
            _event_count(EventType.OPEN).label("opens"),
            _event_count(EventType.CLICK).label("clicks"),
        )
        .where(messages.c.user_id == user_id)
        .order_by(messages.c.created_at.desc(), messages.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if conditions.status:
        query = query.where(messages.c.status == conditions.status)
    if conditions.tag:
        query = query.where(_has_tag(connection.dialect.name, conditions.tag))
    if conditions.recipient:
        query = query.where(
            sa.func.lower(messages.c.to_email).contains(
                conditions.recipient.lower(), autoescape=True
            )
        )
    if conditions.since:
        query = query.where(messages.c.created_at >= _midnight(conditions.since))
    if conditions.until:
        query = query.where(messages.c.created_at < _midnight(conditions.until) + timedelta(days=1))
    return (await connection.execute(query)).mappings().all()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


async def get_message(
    connection: Connection, user_id: int, message_pk: int
) -> sa.RowMapping | None:
    """A message of the account by its primary key (``queue_id``), with ``raw``, its composed
    mail when it is kept whole (else None); None for another's."""
    row = (
        await connection.execute(
            sa.select(messages, message_contents.c.raw)
            .outerjoin(message_contents, message_contents.c.message_pk == messages.c.id)
            .where(messages.c.id == message_pk, messages.c.user_id == user_id)
        )
    ).first()
    return row._mapping if row else None


def _hour_of(dialect: str, column: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
    """The hour a time falls in, as text ``YYYY-MM-DDTHH`` (the same on both databases)."""
    if dialect == "postgresql":
        return sa.func.to_char(column, sa.literal('YYYY-MM-DD"T"HH24'))
    return sa.func.strftime("%Y-%m-%dT%H", column)


async def hourly_activity(
    connection: Connection, user_id: int, start: datetime, end: datetime
) -> HourlyActivity:
    """Per hour between ``start`` and ``end``: messages sent (by ``sent_at``), messages failed
    (by ``created_at``: a failure's time is not kept), and messages a person opened or clicked
    (each message once per hour)."""
    dialect = connection.dialect.name

    async def per_hour(query: sa.Select[str, int]) -> dict[datetime, int]:
        result: dict[datetime, int] = {}
        for hour, count in (await connection.execute(query)).all():
            result[datetime.strptime(hour, "%Y-%m-%dT%H")] = int(count)
        return result

    def messages_by(
        column: sa.ColumnElement[datetime], *statuses: MessageStatus
    ) -> sa.Select[str, int]:
        hour = _hour_of(dialect, column).label("hour")
        return (
            sa.select(hour, sa.func.count())
            .where(messages.c.user_id == user_id, messages.c.status.in_(statuses))
            .where(column >= start, column < end)
            .group_by(hour)
        )

    def events_of(event_type: str) -> sa.Select[str, int]:
        hour = _hour_of(dialect, events.c.created_at).label("hour")
        return (
            sa.select(hour, sa.func.count(sa.distinct(events.c.message_pk)))
            .join(messages, messages.c.id == events.c.message_pk)
            .where(messages.c.user_id == user_id, events.c.event_type == event_type)
            .where(events.c.created_at >= start, events.c.created_at < end, _HUMAN_EVENT)
            .group_by(hour)
        )

    return HourlyActivity(
        # Sent, and still so when a recipient's server bounced it or complained later.
        sent=await per_hour(messages_by(messages.c.sent_at, *MessageStatus.delivered_ones())),
        failed=await per_hour(messages_by(messages.c.created_at, MessageStatus.FAILED)),
        opened=await per_hour(events_of(EventType.OPEN)),
        clicked=await per_hour(events_of(EventType.CLICK)),
    )


async def due_beyond(connection: Connection, now: datetime, limit: int) -> bool:
    """Whether more than ``limit`` queued messages (of every account) are due at ``now``:
    a count that stops at ``limit + 1``, so its cost does not grow with the queue."""
    due = (
        sa.select(sa.literal(1))
        .where(messages.c.status == MessageStatus.QUEUED, messages.c.next_attempt_at <= now)
        .limit(limit + 1)
        .subquery()
    )
    counted = await connection.execute(sa.select(sa.func.count()).select_from(due))
    return int(counted.scalar_one()) > limit


async def queue_depth(connection: Connection, user_id: int, now: datetime) -> QueueDepth:
    due = sa.case((messages.c.next_attempt_at <= now, 1), else_=0)
    queued, due_now = (
        await connection.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(due), 0)).where(
                messages.c.user_id == user_id, messages.c.status == MessageStatus.QUEUED
            )
        )
    ).one()
    sending = (
        await connection.execute(
            sa.select(sa.func.count()).where(
                messages.c.user_id == user_id, messages.c.status == MessageStatus.SENDING
            )
        )
    ).scalar_one()
    return QueueDepth(queued=int(queued), due=int(due_now), sending=int(sending))
