"""SQLite's driver as MailPass uses it: the engines and their pragmas, statement jobs run on the
driver, ``BEGIN IMMEDIATE`` without blocking, and the writer's COMMIT.

``sqlite.SqliteBackend`` puts these together; ``sqlite_wal`` makes the commits durable.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import QueuePool

from mailpass.storage.connection import POOL_TIMEOUT, Connection, LoopConnection
from mailpass.storage.values import json_text

__all__ = [
    "COMMIT_SYNCS",
    "SQLITE_READ_CONNECTIONS",
    "LockRace",
    "StatementJob",
    "commit_and_unlock",
    "insert_rows",
    "sqlite_engine",
    "uncancellable",
]

# A reader may meet a lock only in rare moments (a checkpoint resetting the WAL, a file being
# opened): SQLite's own short busy wait is fine there.
SQLITE_READ_BUSY_TIMEOUT = 100  # milliseconds
# Bytes a page, for new database files (SQLite's default). A COMMIT writes every page it
# changed to the WAL whole, and a message's row (~1 KB) changes a page of the table and one of
# each of its indexes: a /send's COMMIT of its row took 43 µs on 4 KiB pages and 100 µs on
# 16 KiB ones (a batch's 100 rows 1.4 ms and 2.0 ms), and at 16 clients /send went 2,020 ->
# 2,350 msg/s.
SQLITE_PAGE_SIZE = 4096
SQLITE_READ_CONNECTIONS = 8  # read transactions open at once in one process

# Whether a SQLite connection's COMMIT waits for the disk (in its pool record's ``info``): the
# writer's does not in WAL mode (synchronous=NORMAL, no checkpoints of its own); without a WAL
# (a file system that cannot share memory) it syncs, and runs in a thread.
COMMIT_SYNCS = "mailpass_commit_syncs"


@dataclass(frozen=True, slots=True)
class StatementJob:
    """A write job made of statements on the driver: ``sql`` run once with each of ``runs``.
    It returns the rows of its one run, or with ``keys`` the new row id of every run. It runs
    on the loop in a group with other jobs, or, in a group of such jobs only, in a thread
    (``SqliteBackend.run_statements``)."""

    sql: str
    runs: list[list[Any]]
    keys: bool = False

    def run(self, sqlite: sqlite3.Connection) -> list[Any]:
        if self.keys:
            return insert_rows(sqlite, self.sql, self.runs)
        (values,) = self.runs
        return sqlite.execute(self.sql, values).fetchall()

    async def __call__(self, connection: Connection) -> list[Any]:
        return self.run(cast(LoopConnection, connection).driver_connection())


def insert_rows(sqlite: sqlite3.Connection, sql: str, rows: list[list[Any]]) -> list[int]:
    """Run a one-row ``INSERT ... VALUES (?, ...)`` for every row of ``rows``, as few many-row
    statements as SQLite's limit on bound values allows; the new rows' keys, in order.

    One statement for a whole batch, not one for each row: the sqlite3 module lets go of the
    GIL around every statement, and a thread that must take it back from a busy event loop
    waits up to the switch interval (5 ms) each time, with the writer lock held. Beside a thread
    kept busy, 100 rows took ~600 ms one a statement, and ~40 ms as one statement.

    The keys are counted back from the last one: a table whose key is its rowid gives each
    new row the largest rowid plus one, and no other writer can come between the rows of a
    statement. (SQLite picks at random only once the largest rowid is 2**63 - 1.)
    """
    if not rows:
        return []
    width = len(rows[0])
    head, _, one_row = sql.rpartition(" VALUES ")
    per_statement = max(1, sqlite.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // max(width, 1))
    keys: list[int] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        statement = f"{head} VALUES {', '.join([one_row] * len(chunk))}"
        last = sqlite.execute(statement, [value for row in chunk for value in row]).lastrowid
        if last is None:
            raise RuntimeError("SQLite gave no rowid for an INSERT")
        keys.extend(range(last - len(chunk) + 1, last + 1))
    return keys


class LockRace:
    """Decides, once, between a thread that got the writer lock and starts its transaction and
    a caller that gave up waiting for it: exactly one of them wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: Literal["waiting", "started", "given up"] = "waiting"

    def start(self) -> bool:
        with self._lock:
            if self._state == "waiting":
                self._state = "started"
            return self._state == "started"

    def give_up(self) -> bool:
        with self._lock:
            if self._state == "waiting":
                self._state = "given up"
            return self._state == "given up"


def commit_and_unlock(sqlite: sa.Connection, writer_lock: int) -> None:
    """COMMIT, then release the writer lock: on the loop when the COMMIT does not wait for
    the disk, in a thread when it does (``COMMIT_SYNCS``)."""
    try:
        try:
            sqlite.commit()
        except BaseException:
            sqlite.rollback()
            raise
        finally:
            sqlite.close()
    finally:
        os.close(writer_lock)


async def uncancellable(operation: asyncio.Future[None]) -> None:
    """Wait for ``operation`` even when cancelled meanwhile, then pass the cancellation on:
    a COMMIT in a thread cannot be stopped halfway, and the connection it uses must not be
    touched until it is over."""
    cancelled = False
    while not operation.done():
        try:
            await asyncio.shield(operation)
        except asyncio.CancelledError:
            cancelled = True
    operation.result()
    if cancelled:
        raise asyncio.CancelledError


def sqlite_engine(url: URL, *, begin: str, size: int) -> Engine:
    # The pool never makes anyone wait: the lock and the semaphore above hand out places first.
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        pool_size=size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT,
        connect_args={"check_same_thread": False},
        json_serializer=json_text,
    )
    # The writer must not sleep inside SQLite (that would stop the event loop): it fails at once
    # and SqliteBackend.begin_write waits asynchronously.
    busy_timeout = 0 if begin == "BEGIN IMMEDIATE" else SQLITE_READ_BUSY_TIMEOUT

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Take transaction control away from the sqlite3 module, whose implicit BEGIN is
        # deferred and issued lazily; we emit our own BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Only takes effect on a new file, before its first table.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        (journal_mode,) = cursor.execute("PRAGMA journal_mode=WAL").fetchone()
        # The writer's commits are made durable by WalSyncs.synced, outside the lock;
        # without a WAL (a file system that cannot share memory), SQLite syncs them itself.
        writer = begin == "BEGIN IMMEDIATE"
        wal = journal_mode.lower() == "wal"
        synchronous = "NORMAL" if writer and wal else "FULL"
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        if writer and wal:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # WalSyncs.checkpoint_soon does
        record.info[COMMIT_SYNCS] = synchronous == "FULL"
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine
