"""Recording pixel hits with group commit: one transaction for all the hits that arrive while
the previous one commits.

Each hit still answers only after its event is committed, so an answered hit survives a crash,
but the cost of a commit (an fsync on SQLite) is shared: under load hundreds of hits ride one
transaction, and a lone hit is written at once, without waiting for company.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailpass.storage.database import Database
from mailpass.tracking import repository
from mailpass.tracking.machines import machine_reason

__all__ = ["Hit", "OpenRecorder", "event_row"]

MAX_BATCH = 500  # hits per transaction
MAX_USER_AGENT_CHARS = 1000  # longer ones are cut: no real browser sends more

log = logging.getLogger("mailpass.tracking")


@dataclass(frozen=True, slots=True)
class Hit:
    """One request to a tracking route."""

    method: str
    ip_address: str | None
    user_agent: str | None
    at: datetime  # naive UTC, when the request arrived


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


_Pending = tuple[str, Hit, "asyncio.Future[None]"]


class OpenRecorder:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, tracking_id: str, hit: Hit) -> None:
        """Record an open of the message with this tracking id; returns once it is committed.

        An unknown tracking id (a message deleted since) records nothing.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((tracking_id, hit, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def close(self) -> None:
        """Wait for the hits already taken to be written."""
        if self._flusher is not None:
            await self._flusher

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            try:
                await self._write(batch)
            except Exception as exc:
                log.exception("could not record %d open(s)", len(batch))
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _write(self, batch: list[_Pending]) -> None:
        async with self.database.transaction() as connection:
            targets = await repository.find_open_targets(
                connection, {tracking_id for tracking_id, _, _ in batch}
            )
            rows = []
            first_opens: dict[int, datetime] = {}
            for tracking_id, hit, _ in batch:
                target = targets.get(tracking_id)
                if target is None:
                    continue
                reason = machine_reason(
                    method=hit.method,
                    user_agent=hit.user_agent,
                    hit_at=hit.at,
                    delivered_at=target.delivered_at,
                )
                rows.append(event_row(target.message_pk, "open", hit, reason))
                if reason is None and target.first_opened_at is None:
                    first_opens.setdefault(target.message_pk, hit.at)
            if rows:
                await repository.insert_events(connection, rows)
            if first_opens:
                await repository.set_first_opened(connection, first_opens)
