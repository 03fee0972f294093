"""The process's database, SQLite or PostgreSQL, behind one small façade.

Repositories take a ``Connection`` (``storage.connection``). The request, job or command that
calls them owns the transaction: ``transaction()`` or ``write(job)`` for writes, ``read()`` for
reads, and for the hot paths the prepared statements (``storage.prepared``) through ``fetch``,
``execute`` and ``insert``.

``write(job)`` is group commit: concurrent small write transactions (``/send``'s two writes,
``/send-batch``'s inserts) are run back to back in one transaction and committed together, so
one COMMIT (SQLite) or one BEGIN/COMMIT round trip pair (PostgreSQL) serves all of them; on
SQLite one sync also serves every commit made before it started (``storage.sqlite_wal``).

The rest is each database's own: ``storage.sqlite`` (the writer lock, statements on the loop,
the WAL) and ``storage.postgres`` (asyncpg beneath SQLAlchemy, merged round trips, COPY).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar, cast

from sqlalchemy.engine import Dialect

from mailpass.storage.connection import Connection
from mailpass.storage.group_commit import Together
from mailpass.storage.kept import KeptConnections
from mailpass.storage.postgres import PostgresBackend
from mailpass.storage.prepared import PreparedInsert, PreparedRead, PreparedWrite
from mailpass.storage.sqlite import SqliteBackend
from mailpass.storage.sqlite_driver import StatementJob
from mailpass.storage.urls import DatabaseUrlError, normalize_database_url

__all__ = ["Connection", "Database", "DatabaseUrlError", "normalize_database_url"]

T = TypeVar("T")
WriteJob = Callable[[Connection], Awaitable[Any]]


class Database:
    """The process's database: ``transaction()`` and ``write()`` for writes, ``read()`` for
    reads, ``fetch``/``execute``/``insert`` for prepared statements."""

    def __init__(self, raw_url: str) -> None:
        self.url = normalize_database_url(raw_url)
        self.dialect: Literal["sqlite", "postgresql"] = (
            "sqlite" if self.url.get_backend_name() == "sqlite" else "postgresql"
        )
        # Connections out of the pool, kept for the next read (``fetch``) and, on PostgreSQL,
        # the next statement on the driver.
        self.kept = KeptConnections()
        self.sqlite: SqliteBackend | None = None
        self.postgres: PostgresBackend | None = None
        if self.dialect == "sqlite":
            self.sqlite = SqliteBackend(self.url, self.kept)
            self._dialect: Dialect = self.sqlite.reader_engine.dialect
        else:
            self.postgres = PostgresBackend(self.url, self.kept)
            self._dialect = self.postgres.dialect
        self._write_jobs = Together(self._run_jobs)

    @property
    def is_sqlite(self) -> bool:
        return self.sqlite is not None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A write transaction, committed when the block exits without an exception; on
        SQLite the block's exit also waits until the commit is on disk."""
        async with self._write_transaction() as connection:
            yield connection
        if self.sqlite is not None:
            await self.sqlite.wal.synced()

    def _write_transaction(self) -> Any:
        """``transaction`` without the wait for the disk on SQLite (``write`` waits itself)."""
        if self.sqlite is not None:
            return self.sqlite.write_transaction()
        assert self.postgres is not None
        return self.postgres.write_transaction()

    async def write(self, job: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``job`` in a write transaction that may be shared with other ``write`` calls
        made meanwhile (group commit); returns its result once that transaction is committed.

        A job only touches the database (it may run twice: see below) and reports an expected
        refusal by returning it rather than raising. If any job of a group raises, the group is
        rolled back and each of its jobs runs again in a transaction of its own, so one failing
        job never takes the others down with it.
        """
        result = cast(T, await self._write_jobs.submit(job))
        if self.sqlite is not None:
            await self.sqlite.wal.synced()
        return result

    async def _run_jobs(self, jobs: list[WriteJob]) -> list[Any]:
        """``jobs`` in one transaction; their results."""
        if self.sqlite is not None and all(isinstance(job, StatementJob) for job in jobs):
            return await self.sqlite.run_statements(cast(list[StatementJob], jobs))
        results = []
        async with self._write_transaction() as connection:
            for job in jobs:
                results.append(await job(connection))
        return results

    async def fetch(self, read: PreparedRead, **parameters: Any) -> list[dict[str, Any]]:
        """Run a prepared SELECT on a connection of its own; its rows as dicts by column key.

        Each call is one statement, so it sees one committed snapshot on either database. On
        PostgreSQL, runs of ``read`` made while one is under way go together in the next
        round trip (``PostgresBackend.fetch``).
        """
        compiled = read.compiled_for(self._dialect)
        values = compiled.bind(parameters)
        if self.sqlite is not None:
            rows = await self.sqlite.fetch(compiled.sql, values)
        else:
            assert self.postgres is not None
            rows = await self.postgres.fetch(read, values)
        return compiled.rows(rows)

    async def execute(self, write: PreparedWrite, **parameters: Any) -> list[dict[str, Any]]:
        """Run a prepared INSERT or UPDATE as a transaction of its own; the rows it returns
        (RETURNING), once it is committed.

        On PostgreSQL it runs on the driver in autocommit mode, merged with the runs of the
        same statement made meanwhile (``PostgresBackend.write``). On SQLite it joins the group
        commit of ``write``; a group made only of such statements runs from the writer lock to
        the COMMIT without a pause (``SqliteBackend.run_statements``).
        """
        compiled = write.compiled_for(self._dialect)
        values = compiled.bind(parameters)
        if self.sqlite is not None:
            rows = await self.write(StatementJob(compiled.sql, [values]))
        else:
            assert self.postgres is not None
            rows = await self.postgres.write(compiled.sql, values, write.rows_each)
        return compiled.rows(rows)

    async def insert(self, insert: PreparedInsert, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` (each with exactly the insert's columns) as one transaction of their
        own; their primary keys, in order.

        On SQLite their values are made the driver's before anything waits for the database,
        and the rows join the group commit as a statement job (in a thread with other such
        writes: the writer lock is held only while SQLite works). On PostgreSQL they go in by
        one COPY in autocommit mode, with the rows of the other inserts made while one is under
        way (``PostgresBackend.insert``). Three round trips (the keys, the COPY's two) for
        every batch waiting, where a transaction through SQLAlchemy took five for one (BEGIN,
        the keys, the COPY's two, COMMIT), each round trip costing both processes a few system
        calls. (asyncpg's ``fetchmany`` of one INSERT a row had cost twice the CPU of a
        many-row INSERT for a batch of 100.)
        """
        if self.postgres is not None:
            return await self.postgres.insert(insert, rows)
        compiled = insert.compiled_for(self._dialect)
        keys = await self.write(
            StatementJob(compiled.sql, [compiled.bind(row) for row in rows], keys=True)
        )
        return cast(list[int], keys)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """A read-only connection (on SQLite a consistent snapshot for the whole block)."""
        if self.sqlite is not None:
            async with self.sqlite.read() as connection:
                yield connection
            return
        assert self.postgres is not None
        async with self.postgres.read() as connection:
            yield connection

    async def dispose(self) -> None:
        self.kept.close_all()
        if self.sqlite is not None:
            await self.sqlite.dispose()
        if self.postgres is not None:
            await self.postgres.dispose()
