"""Reading the message log, as the dashboard shows it: pages of messages, one message with its
events, and the overview's hourly activity and queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailpass.messages import repository
from mailpass.messages.models import HourlyActivity, MessageFilter, QueueDepth
from mailpass.messages.results import MessageEvent, MessageRecord, timeline
from mailpass.providers import repository as provider_queries
from mailpass.providers.models import Provider
from mailpass.storage.database import Database

__all__ = [
    "MessageDetail",
    "Overview",
    "find_message",
    "list_messages",
    "message_detail",
    "overview",
]


@dataclass(frozen=True, slots=True)
class MessageDetail:
    message: sa.RowMapping
    events: list[MessageEvent]  # its whole story, oldest first (``results.timeline``)
    provider: Provider | None  # None when it had none (test keys) or it was deleted since


@dataclass(frozen=True, slots=True)
class Overview:
    activity: HourlyActivity
    queue: QueueDepth


async def list_messages(
    database: Database, user_id: int, conditions: MessageFilter, *, limit: int, offset: int = 0
) -> Sequence[sa.RowMapping]:
    """One page of the account's messages, newest first, with their open and click counts."""
    async with database.read() as connection:
        return await repository.list_messages(
            connection, user_id, conditions, limit=limit, offset=offset
        )


async def find_message(database: Database, user_id: int, message_pk: int) -> sa.RowMapping | None:
    """A message of the account by its primary key (``queue_id``); None for another's."""
    async with database.read() as connection:
        return await repository.get_message(connection, user_id, message_pk)


async def message_detail(database: Database, user_id: int, message_pk: int) -> MessageDetail | None:
    """The account's message with its events and provider, read in one snapshot."""
    async with database.read() as connection:
        message = await repository.get_message(connection, user_id, message_pk)
        if message is None:
            return None
        recorded = await repository.list_events(connection, message_pk)
        provider = None
        if message["provider_id"] is not None:
            provider = await provider_queries.get_provider(
                connection, message["provider_id"], user_id
            )
    story = timeline(
        MessageRecord.of(dict(message)), [MessageEvent.of(dict(event)) for event in recorded]
    )
    return MessageDetail(message, story, provider)


async def overview(
    database: Database, user_id: int, start: datetime, end: datetime, now: datetime
) -> Overview:
    """The account's activity per hour from ``start`` to ``end``, and its queue at ``now``."""
    async with database.read() as connection:
        activity = await repository.hourly_activity(connection, user_id, start, end)
        queue = await repository.queue_depth(connection, user_id, now)
    return Overview(activity, queue)
