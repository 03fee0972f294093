"""Waking workers the moment new mail is queued, instead of on their next poll.

In one process (``mailpass serve`` with its built-in worker) an ``asyncio.Event`` does it. Across
processes on PostgreSQL, ``NOTIFY mailpass_queue`` is issued inside the transaction that queues
the mail (PostgreSQL delivers it at commit, never before) and every worker ``LISTEN``s on a
connection of its own. SQLite has no such channel: other processes find new mail on their next
poll (``MAILPASS_QUEUE_POLL_INTERVAL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

import asyncpg
from sqlalchemy import text

from mailpass.storage.database import Connection, Database

__all__ = ["CHANNEL", "QueueWakeup"]

CHANNEL = "mailpass_queue"
RECONNECT_DELAY = 2.0  # seconds between attempts to re-establish a lost LISTEN connection

log = logging.getLogger("mailpass.delivery")


class QueueWakeup:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._event = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def announce(self, connection: Connection) -> None:
        """Call inside the transaction that queues mail; other processes hear it at commit."""
        if not self._database.is_sqlite:
            await connection.execute(text(f"NOTIFY {CHANNEL}"))

    def wake(self) -> None:
        """Call after that transaction committed, for the worker in this process."""
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Until woken or ``seconds`` pass, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()

    def start_listening(self) -> None:
        if self._database.is_sqlite or self._listener is not None:
            return
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        url = self._database.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            try:
                connection = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot LISTEN for queued mail (%s); polling meanwhile", exc)
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            lost = asyncio.Event()
            try:
                await connection.add_listener(CHANNEL, self._on_notify)
                connection.add_termination_listener(functools.partial(_set_event, lost))
                self._event.set()  # anything queued while we were not listening
                await lost.wait()
                log.warning("LISTEN connection lost; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()

    def _on_notify(self, *_args: Any) -> None:
        self._event.set()


def _set_event(event: asyncio.Event, *_args: Any) -> None:
    event.set()
