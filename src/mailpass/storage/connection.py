"""What repositories are given: a ``Connection``, whose ``await connection.execute(statement)``
returns a buffered SQLAlchemy result, whichever database is behind it.

On PostgreSQL it is SQLAlchemy's ``AsyncConnection``; on SQLite a ``LoopConnection``, which
implements the part repositories may use: ``execute`` (a buffered result), ``run_sync`` and
``dialect``. Typing both as ``AsyncConnection`` keeps SQLAlchemy's precise result types in every
repository.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["POOL_TIMEOUT", "Connection", "LoopConnection", "upsert_insert"]

POOL_TIMEOUT = 60.0  # seconds to wait for a free connection before failing the request

P = ParamSpec("P")
T = TypeVar("T")

Connection = AsyncConnection


def upsert_insert(connection: Connection, table: sa.Table) -> Any:
    """An INSERT into ``table`` in the connection's dialect, which has ``on_conflict_do_nothing``
    and ``on_conflict_do_update`` (the same on SQLite and PostgreSQL)."""
    if connection.dialect.name == "sqlite":
        return sqlite_insert(table)
    return postgresql_insert(table)


class LoopConnection:
    """A SQLAlchemy connection used directly on the event loop's thread (SQLite)."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection

    @property
    def dialect(self) -> Dialect:
        return self._connection.dialect

    def driver_connection(self) -> sqlite3.Connection:
        """The sqlite3 connection underneath, in the same transaction."""
        driver = self._connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return driver

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        result = self._connection.execute(statement, parameters)
        if result.returns_rows:
            # Buffered, like asyncio results: safe to read after the transaction ends. (It is an
            # IteratorResult, not a CursorResult: everything but ``rowcount``, which callers only
            # read from statements that return no rows.)
            return cast(Any, result.freeze()())
        return result

    async def run_sync(
        self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return fn(self._connection, *args, **kwargs)
