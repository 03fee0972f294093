"""Recording pixel hits in the background, with group commit: one transaction for all the hits
that arrive while the previous one commits.

The image is answered as soon as its hit is taken, before the hit is written. Waiting for the
commit would protect nothing: a mail client never fetches a pixel again because the answer was
slow or failed, so an open that a crash loses is lost whether or not its image went out. It
would only make every image wait for an fsync (and, with several processes on one SQLite file,
for their turn to write), which capped the route at a few hundred hits per second per process.
Hits are written in the order they were taken, in transactions of up to ``MAX_BATCH``; a
server that stops writes the ones it holds first (``flush``). Should the database fall behind,
a request waits for the backlog to shrink below ``MAX_BACKLOG`` before it is answered, so
memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailpass.clock import utcnow
from mailpass.core.statuses import EventType
from mailpass.storage.database import Connection, Database
from mailpass.tracking import repository
from mailpass.tracking.machines import machine_reason
from mailpass.tracking.repository import ClickTarget, OpenTarget
from mailpass.webhooks import repository as webhook_outbox
from mailpass.webhooks.payloads import event_payload

__all__ = ["Hit", "OpenRecorder", "enqueue_hit_webhooks", "event_row", "hit_data"]

MAX_BATCH = 500  # hits per transaction
MAX_BACKLOG = 10_000  # hits taken and not yet written, beyond which requests wait
MAX_USER_AGENT_CHARS = 1000  # longer ones are cut: no real browser sends more

log = logging.getLogger("mailpass.tracking")


@dataclass(frozen=True, slots=True)
class Hit:
    """One request to a tracking route."""

    method: str
    ip_address: str | None
    user_agent: str | None
    at: datetime  # naive UTC, when the request arrived


def hit_data(row: dict[str, Any]) -> dict[str, Any]:
    """An open's or a click's fields in its webhook, as ``GET /status`` shows a hit."""
    return {
        "ip_address": row["ip_address"],
        "user_agent": row["user_agent"],
        "url": row["url"],
        "machine": row["is_machine"],
        "machine_reason": row["machine_reason"],
    }


async def enqueue_hit_webhooks(
    connection: Connection, hits: Sequence[tuple[OpenTarget | ClickTarget, dict[str, Any]]]
) -> None:
    """The webhooks of hits just written, for the accounts with endpoints (one query finds
    there are none, the common case)."""
    users = await webhook_outbox.subscribed(connection, {target.user_id for target, _ in hits})
    by_user: dict[int, list[tuple[str, int, dict[str, Any]]]] = {}
    for target, row in hits:
        if target.user_id in users:
            payload = event_payload(
                row["event_type"], row["created_at"], target.message_id, hit_data(row)
            )
            by_user.setdefault(target.user_id, []).append(
                (row["event_type"], target.message_pk, payload)
            )
    for user_id, items in by_user.items():
        await webhook_outbox.enqueue(connection, user_id, items, utcnow())


def event_row(
    message_pk: int, event_type: str, hit: Hit, reason: str | None, url: str | None = None
) -> dict[str, Any]:
    return {
        "message_pk": message_pk,
        "event_type": event_type,
        "ip_address": hit.ip_address,
        "user_agent": hit.user_agent[:MAX_USER_AGENT_CHARS] if hit.user_agent else None,
        "url": url,
        "is_machine": reason is not None,
        "machine_reason": reason,
        "created_at": hit.at,
    }


_Pending = tuple[str, Hit]


class OpenRecorder:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._backlog_shrank = asyncio.Event()

    async def record(self, tracking_id: str, hit: Hit) -> None:
        """Take an open of the message with this tracking id, to be written shortly.

        Returns at once, unless ``MAX_BACKLOG`` hits are already waiting to be written. An
        unknown tracking id (a message deleted since) records nothing; a failed write is logged.
        """
        self._pending.append((tracking_id, hit))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        while len(self._pending) > MAX_BACKLOG:
            if self._flusher.done():  # stopped by a cancellation meanwhile
                self._flusher = asyncio.create_task(self._flush())
            self._backlog_shrank.clear()
            await self._backlog_shrank.wait()

    async def flush(self) -> None:
        """Wait until every hit taken so far has been written (or its write has failed)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                try:
                    await self._write(batch)
                except Exception:
                    log.exception("could not record %d open(s)", len(batch))
                self._backlog_shrank.set()
        finally:
            self._backlog_shrank.set()

    async def _write(self, batch: list[_Pending]) -> None:
        async with self.database.transaction() as connection:
            targets = await repository.find_open_targets(
                connection, {tracking_id for tracking_id, _ in batch}
            )
            rows = []
            hooked: list[tuple[OpenTarget, dict[str, Any]]] = []
            first_opens: dict[int, datetime] = {}
            for tracking_id, hit in batch:
                target = targets.get(tracking_id)
                if target is None:
                    continue
                reason = machine_reason(
                    method=hit.method,
                    user_agent=hit.user_agent,
                    hit_at=hit.at,
                    delivered_at=target.delivered_at,
                )
                rows.append(event_row(target.message_pk, EventType.OPEN, hit, reason))
                hooked.append((target, rows[-1]))
                if reason is None and target.first_opened_at is None:
                    first_opens.setdefault(target.message_pk, hit.at)
            if rows:
                await repository.insert_events(connection, rows)
                await enqueue_hit_webhooks(connection, hooked)
            if first_opens:
                await repository.set_first_opened(connection, first_opens)
