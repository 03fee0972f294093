"""PostgreSQL's LISTEN/NOTIFY: telling the processes that listen on a channel that something
happened, each on a connection of its own.

``notify`` runs ``pg_notify`` as a statement of its own (autocommit: heard at once).
``listening`` opens the listening connection and says when it is lost; what to do then
(reconnect, poll meanwhile) is the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import sqlalchemy as sa

from mailpass.storage.database import Database
from mailpass.storage.prepared import PreparedRead

__all__ = ["Channel", "ChannelUnavailable"]


class ChannelUnavailable(Exception):
    """The listening connection could not be opened (the database is down or refused it)."""


class Channel:
    """One notification channel of a PostgreSQL database."""

    def __init__(self, database: Database, name: str) -> None:
        self._database = database
        self.name = name
        self._notify = PreparedRead(sa.select(sa.func.pg_notify(name, "")))

    async def notify(self) -> None:
        """Tell every listener, now (a statement of its own)."""
        await self._database.fetch(self._notify)

    @asynccontextmanager
    async def listening(self, on_notify: Callable[[], None]) -> AsyncIterator[asyncio.Event]:
        """LISTEN on a connection of its own while the block runs, calling ``on_notify`` for
        each notification; the event yielded is set when that connection is lost. Raises
        ``ChannelUnavailable`` when the connection cannot be opened."""
        url = self._database.url.set(drivername="postgresql")
        try:
            connection = await asyncpg.connect(url.render_as_string(hide_password=False))
        except (OSError, asyncpg.PostgresError) as exc:
            raise ChannelUnavailable(str(exc)) from exc
        lost = asyncio.Event()

        def notified(*_args: Any) -> None:
            on_notify()

        def terminated(*_args: Any) -> None:
            lost.set()

        try:
            await connection.add_listener(self.name, notified)
            connection.add_termination_listener(terminated)
            yield lost
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
