"""Flow control for the SMTP relay, after Postfix's ``in_flow_delay``: when the queue falls
behind (more than ``MAILPASS_SMTP_FLOW_BACKLOG`` messages due while a worker is running), each
new message waits ``MAILPASS_SMTP_FLOW_DELAY`` before its MAIL FROM is answered. An application
flooding the relay then slows down instead of taking the machine from the workers that deliver
what is already queued; the queue catches up, and the relay goes back to full speed once the
backlog is below half the limit.

The queue is looked at four times a second per process (a count that stops at the limit, and the
workers' heartbeats), never per message. With no worker running (a relay in front of workers
started later, or a queue filled on purpose) nothing is delayed: nothing would catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.delivery.workers import count_live_workers, stale_after
from mailpass.messages.repository import due_beyond
from mailpass.storage.database import Database

__all__ = ["FlowControl"]

log = logging.getLogger("mailpass.relay")

LOOK_INTERVAL = 0.25  # seconds between looks at the queue


class FlowControl:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.backlog = settings.smtp_flow_backlog
        self.delay = settings.smtp_flow_delay
        self.stale = stale_after(settings.worker_heartbeat_interval)
        self.database = database
        self.behind = False
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.backlog > 0 and self.delay > 0

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._watch(), name="relay flow control")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait(self) -> None:
        """Before a new message: at once, or after the delay while the queue is behind."""
        if self.behind:
            await asyncio.sleep(self.delay)

    async def look(self) -> None:
        """Read the queue once and decide whether it is behind."""
        now = utcnow()
        # Behind above the limit; caught up again below half of it.
        limit = self.backlog if not self.behind else self.backlog // 2
        async with self.database.read() as connection:
            beyond = await due_beyond(connection, now, limit)
            workers = await count_live_workers(connection, now, self.stale) if beyond else 0
        behind = beyond and workers > 0
        if behind != self.behind:
            log.info(
                "the queue is %s: new messages through the relay %s",
                f"more than {limit} due behind" if behind else "catching up",
                f"wait {self.delay:g} s each" if behind else "no longer wait",
            )
        self.behind = behind

    async def _watch(self) -> None:
        while True:
            try:
                await self.look()
            except Exception as exc:  # the database away: no delay meanwhile (MAIL says 451)
                self.behind = False
                log.debug("flow control cannot read the queue: %s", exc)
            await asyncio.sleep(LOOK_INTERVAL)
