"""PostgreSQL behind ``Database``: one asyncpg pool through SQLAlchemy, and the hot statements on
asyncpg itself, merged into shared round trips.

Reads run in autocommit mode (no BEGIN/COMMIT round trips: each statement sees a committed
snapshot of its own); writes are transactions. A prepared statement (``prepared``) runs on a
kept asyncpg connection (``kept``) in autocommit mode; runs of the same statement made while one
is under way go together in the next round trip (``group_commit.Together``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from mailpass.storage.connection import POOL_TIMEOUT
from mailpass.storage.group_commit import Together
from mailpass.storage.kept import KeptConnections
from mailpass.storage.prepared import PreparedInsert, PreparedRead
from mailpass.storage.values import json_text

__all__ = ["POSTGRES_POOL_OVERFLOW", "POSTGRES_POOL_SIZE", "PostgresBackend"]

# Connections kept open per process. A request beyond them waits for one to come back instead
# of opening a connection of its own: under a steady load, such overflow connections were opened
# and closed again hundreds of times a second, and PostgreSQL's process per connection made
# that the most expensive part of a request. 20 per process leaves room for several processes
# within PostgreSQL's default max_connections of 100.
POSTGRES_POOL_SIZE = 20
POSTGRES_POOL_OVERFLOW = 0

Runs = Callable[[list[Any]], Awaitable[list[Any]]]


class PostgresBackend:
    """One PostgreSQL database: SQLAlchemy's engine, and asyncpg beneath it for the hot paths."""

    def __init__(self, url: URL, kept: KeptConnections) -> None:
        self.engine = create_async_engine(
            url,
            pool_size=POSTGRES_POOL_SIZE,
            max_overflow=POSTGRES_POOL_OVERFLOW,
            pool_timeout=POOL_TIMEOUT,
            json_serializer=json_text,
        )
        self._reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.dialect: Dialect = self.engine.dialect
        self._kept = kept
        # What waits for a round trip, by its read, its SQL or its insert.
        self._together: dict[Hashable, Together] = {}

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reads.connect() as connection:
            yield connection

    async def fetch(self, read: PreparedRead, values: list[Any]) -> list[Any]:
        """``read`` with ``values``, merged with the runs of it made meanwhile: asyncpg's
        ``fetchmany``, ``read.numbered`` telling their rows apart. At 16 clients this took the
        CPU of a /status request 350 -> 249 us in the API processes and 93 -> 49 us in
        PostgreSQL."""
        return cast(list[Any], await self.together(read, values, self._read_runs(read)))

    async def write(self, sql: str, values: list[Any], rows_each: int | None) -> list[Any]:
        """An INSERT or UPDATE in autocommit mode: one round trip, where a transaction through
        SQLAlchemy takes three (BEGIN, the statement, COMMIT) and its Python around them. When
        each run returns a known number of rows (``rows_each``), runs made while one is under
        way go together in the next round trip (asyncpg's ``fetchmany``: one implicit
        transaction, so all or none), and if that fails each runs again alone."""
        if rows_each is None:
            return await self.run_alone(sql, values)
        runs = self._statement_runs(sql, rows_each)
        return cast(list[Any], await self.together(sql, values, runs))

    async def insert(self, insert: PreparedInsert, rows: Sequence[dict[str, Any]]) -> list[int]:
        """``rows`` by one COPY in autocommit mode (``PreparedInsert.copy``), with the rows of
        the other inserts made while one is under way: a statement, so all of its rows or none,
        and if it fails each insert runs again alone."""

        async def copy(batches: list[Sequence[dict[str, Any]]]) -> list[list[int]]:
            return await self.on_driver(lambda asyncpg: insert.copy(asyncpg, self.dialect, batches))

        return cast(list[int], await self.together(insert, rows, copy))

    async def together(self, key: Hashable, item: Any, run: Runs) -> Any:
        """``item``'s result from ``run``, which takes together every item given for ``key``
        while its previous run was under way."""
        together = self._together.get(key)
        if together is None:
            together = self._together[key] = Together(run)
        return await together.submit(item)

    def _statement_runs(self, sql: str, rows_each: int) -> Runs:
        """``run`` for ``together``: ``sql`` once with each item's values, in one round trip;
        the rows of each run."""

        async def run(runs: list[list[Any]]) -> list[list[Any]]:
            if len(runs) == 1:
                return [await self.run_alone(sql, runs[0])]
            rows = await self.run_many(sql, runs)
            if len(rows) != rows_each * len(runs):
                raise RuntimeError(f"{len(rows)} rows back from {len(runs)} statements")
            return [rows[i * rows_each : (i + 1) * rows_each] for i in range(len(runs))]

        return run

    def _read_runs(self, read: PreparedRead) -> Runs:
        """``run`` for ``together``: ``read`` once with each item's values, in one round trip;
        the rows of each run."""

        async def run(runs: list[list[Any]]) -> list[list[Any]]:
            if len(runs) == 1:
                return [await self.run_alone(read.compiled_for(self.dialect).sql, runs[0])]
            numbered = read.numbered.compiled_for(self.dialect).sql
            rows = await self.run_many(
                numbered,
                [read.numbered_values(self.dialect, values, i) for i, values in enumerate(runs)],
            )
            each: list[list[Any]] = [[] for _ in runs]
            for row in rows:
                each[row[-1]].append(row)
            return each

        return run

    async def run_alone(self, sql: str, values: list[Any]) -> list[Any]:
        """One statement on a pooled asyncpg connection, in autocommit mode."""
        return await self.on_driver(lambda asyncpg: asyncpg.fetch(sql, *values))

    async def run_many(self, sql: str, values: list[list[Any]]) -> list[Any]:
        """A statement run once for each of ``values`` in one round trip and one transaction;
        the rows of every run, in order."""
        return await self.on_driver(lambda asyncpg: asyncpg.fetchmany(sql, values))

    async def on_driver(self, run: Callable[[Any], Awaitable[Any]]) -> list[Any]:
        """``run`` on an asyncpg connection of the pool's, kept for the next call (``kept``)."""
        pooled = self._kept.take()
        if pooled is None:
            pooled = await self.engine.raw_connection()
        try:
            asyncpg = pooled.driver_connection
            assert asyncpg is not None
            result = await run(asyncpg)
        except BaseException:
            pooled.invalidate()  # a failed or cancelled query may leave it mid-protocol
            pooled.close()
            raise
        self._kept.keep(pooled)
        return cast(list[Any], result)

    async def dispose(self) -> None:
        await self.engine.dispose()
