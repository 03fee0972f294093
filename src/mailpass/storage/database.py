"""Connecting to SQLite or PostgreSQL, and the two kinds of transaction MailPass uses.

SQLite: one file in WAL mode with ``synchronous=FULL``, so an answered request survives a power
cut. Writers go through a pool of exactly one connection and start with ``BEGIN IMMEDIATE``:
SQLite allows one writer at a time anyway, and queueing writers on our own event loop is much
faster than letting them collide inside SQLite and sleep on its busy handler. Readers use their
own small pool and never block the writer (WAL).

PostgreSQL: one asyncpg pool serves both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = ["Database", "DatabaseUrlError", "normalize_database_url"]

SQLITE_BUSY_TIMEOUT = 15_000  # milliseconds another process's write may keep us waiting
SQLITE_READ_POOL_SIZE = 4
POSTGRES_POOL_SIZE = 10
POSTGRES_POOL_OVERFLOW = 10
POOL_TIMEOUT = 60.0  # seconds to wait for a free connection before failing the request

Dialect = Literal["sqlite", "postgresql"]


class DatabaseUrlError(ValueError):
    """The configured database URL is not one MailPass can use."""


def normalize_database_url(raw: str) -> URL:
    """Accept ``sqlite:///path`` and ``postgresql://…`` and choose the async driver ourselves.

    Users should not need to know driver names; an explicit ``+aiosqlite`` / ``+asyncpg`` is
    accepted as well.
    """
    try:
        url = make_url(raw)
    except Exception as exc:
        raise DatabaseUrlError(f"not a database URL: {raw!r}") from exc
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if url.get_driver_name() not in ("asyncpg", "psycopg2", "psycopg", ""):
            raise DatabaseUrlError(f"unsupported PostgreSQL driver in {raw!r}")
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise DatabaseUrlError("SQLite needs a file path, e.g. sqlite:////var/lib/mailpass/db")
        return url.set(drivername="sqlite+aiosqlite")
    raise DatabaseUrlError(f"MailPass runs on SQLite or PostgreSQL, not {backend!r}")


class Database:
    """The process's database: ``transaction()`` for writes, ``read()`` for reads."""

    def __init__(self, raw_url: str) -> None:
        self.url = normalize_database_url(raw_url)
        self.dialect: Dialect = (
            "sqlite" if self.url.get_backend_name() == "sqlite" else "postgresql"
        )
        if self.dialect == "sqlite":
            assert self.url.database is not None
            Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(self.url, immediate=True, pool_size=1)
            self.read_engine = _sqlite_engine(
                self.url, immediate=False, pool_size=SQLITE_READ_POOL_SIZE
            )
        else:
            self.write_engine = create_async_engine(
                self.url,
                pool_size=POSTGRES_POOL_SIZE,
                max_overflow=POSTGRES_POOL_OVERFLOW,
                pool_timeout=POOL_TIMEOUT,
                pool_pre_ping=True,
            )
            self.read_engine = self.write_engine

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed when the block exits without an exception."""
        async with self.write_engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot)."""
        async with self.read_engine.connect() as connection:
            yield connection

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def _sqlite_engine(url: URL, *, immediate: bool, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=0, pool_timeout=POOL_TIMEOUT
    )
    begin_statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module, whose implicit BEGIN is
        # deferred and issued lazily; we emit our own BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin_statement)

    return engine
