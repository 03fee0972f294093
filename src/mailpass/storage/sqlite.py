"""SQLite behind ``Database``: one file in WAL mode, statements on the event loop's thread.

An answered request survives a power cut: the writer commits with ``synchronous=NORMAL`` and
every write waits, before it returns, for an ``fdatasync`` of the WAL made after its COMMIT
(``sqlite_wal``), outside the writer lock. Statements run with the standard ``sqlite3`` driver
directly on the event loop's thread. That is deliberate: an indexed read in WAL mode takes
microseconds and never waits for a writer, while handing each statement to a driver thread
(aiosqlite) cost about 300 µs of CPU per query here, most of the time of a request. Writers
take turns on an ``asyncio.Lock`` (SQLite allows one writer at a time anyway) and start with
``BEGIN IMMEDIATE``; when another process holds the write lock, we wait for it with
``asyncio.sleep`` instead of blocking the loop in SQLite's busy handler. Between processes,
writers queue on an ``flock`` of a lock file beside the database, taken in a thread: the next
writer wakes the moment the lock is free, where polling SQLite's lock would wake on a timer. A
group of single statements whose lock is free runs from BEGIN to COMMIT on the loop, and so
does every COMMIT in WAL mode: it only appends to the WAL, in microseconds. The waits for
another process's lock, the syncs and the checkpoints of the WAL run in threads, so the loop
serves other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from mailpass.storage.connection import Connection, LoopConnection
from mailpass.storage.kept import KeptConnections
from mailpass.storage.sqlite_driver import (
    COMMIT_SYNCS,
    SQLITE_READ_CONNECTIONS,
    LockRace,
    StatementJob,
    commit_and_unlock,
    sqlite_engine,
    uncancellable,
)
from mailpass.storage.sqlite_wal import WalSyncs

__all__ = ["SQLITE_LOCK_WAIT", "SqliteBackend", "begin_immediate", "locked_too_long"]

SQLITE_LOCK_WAIT = 15.0  # seconds another process's write may keep us waiting
SQLITE_LOCK_POLL_MIN = 0.001  # seconds, first pause when the write lock is taken...
SQLITE_LOCK_POLL_MAX = 0.05  # ...doubling up to this


class SqliteBackend:
    """One SQLite file: a writer connection, a few readers, and the WAL's syncs."""

    def __init__(self, url: URL, kept: KeptConnections) -> None:
        assert url.database is not None
        self.file = Path(url.database).expanduser()
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.writer_engine = sqlite_engine(url, begin="BEGIN IMMEDIATE", size=1)
        self.reader_engine = sqlite_engine(url, begin="BEGIN", size=SQLITE_READ_CONNECTIONS)
        self.wal = WalSyncs(self.file)
        self._kept = kept
        self._write_turn = asyncio.Lock()
        self._writer_lock_path = Path(f"{self.file}-writer.lock")
        self._read_places = asyncio.Semaphore(SQLITE_READ_CONNECTIONS)

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[Connection]:
        """A write transaction on the loop, committed when the block exits without an
        exception; the caller waits for the disk (``wal.synced``)."""
        async with self._write_turn:
            writer_lock = await self._take_writer_lock()
            unlock_here = True
            try:
                sqlite = await self.begin_write()
                try:
                    yield cast(Connection, LoopConnection(sqlite))
                except BaseException:
                    sqlite.rollback()
                    sqlite.close()
                    raise
                if not sqlite.info.get(COMMIT_SYNCS, True):
                    # In WAL mode the COMMIT only appends to the WAL: at once, on the loop.
                    unlock_here = False  # commit_and_unlock closes it
                    commit_and_unlock(sqlite, writer_lock)
                    return
                # The thread that commits also lets the next writer in, the moment the commit
                # is done: waiting for this loop to come back to it (it may be busy with a
                # whole batch for milliseconds) would keep every other process waiting too.
                committing = asyncio.ensure_future(
                    asyncio.to_thread(commit_and_unlock, sqlite, writer_lock)
                )
                unlock_here = False  # the thread closes it
                await uncancellable(committing)
            finally:
                if unlock_here:
                    os.close(writer_lock)  # closing the descriptor releases its flock

    async def fetch(self, sql: str, values: list[Any]) -> list[Any]:
        """One statement on a reader connection; its rows as the driver gives them."""
        async with self._read_places:
            # As on PostgreSQL, the connection is kept for the next read rather than checked
            # in and out of the pool (~14 of a read's ~23 µs). Nothing here waits, so one is
            # enough.
            pooled = self._kept.take()
            if pooled is None:
                pooled = self.reader_engine.raw_connection()
            try:
                sqlite = pooled.driver_connection
                assert sqlite is not None
                rows = sqlite.execute(sql, values).fetchall()
            except BaseException:
                pooled.close()
                raise
            self._kept.keep(pooled)
        return cast(list[Any], rows)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """A read-only connection holding a consistent snapshot for the whole block."""
        async with self._read_places:
            with self.reader_engine.connect() as sqlite, sqlite.begin():
                yield cast(Connection, LoopConnection(sqlite))

    async def run_statements(self, statements: list[StatementJob]) -> list[list[Any]]:
        """Run ``statements`` in one write transaction, from the writer lock to the COMMIT
        without a pause: the other processes wait for as long as a writer holds the lock.
        (Awaiting the loop between the steps kept them waiting for whatever else the loop had
        to do meanwhile: two ``/send`` processes spent most of their time waiting for each
        other's turns.)

        When the lock is free, the whole transaction runs at once on the loop: BEGIN, the
        statements and a COMMIT that writes to the WAL without waiting for the disk
        (``WalSyncs.synced`` does that, in a thread) take tens of microseconds for a
        ``/send``, and the checkpoints that would make a COMMIT long run in a thread instead
        (``WalSyncs.checkpoint_soon``). Handing that work to a thread cost more than doing it:
        at 16 clients /send's rate on SQLite went 1,870 -> 2,100 msg/s, its API CPU 848 -> 799
        µs a message. When another process holds the lock, a thread waits for it and runs the
        transaction, and the loop serves other requests meanwhile.
        """
        turn = LockRace()
        async with self._write_turn:
            fd = os.open(self._writer_lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                results = self._statements_if_free(fd, statements)
            except BaseException:
                os.close(fd)
                raise
            if results is not None:
                os.close(fd)
                return results
            # Another writer: wait in a thread (which closes fd). The flock may be held already
            # (when only SQLite's own lock was taken, by the sqlite3 shell say); taking it
            # again on the same descriptor is then a no-op.
            running = asyncio.ensure_future(
                asyncio.to_thread(self._run_statements, fd, statements, turn)
            )
            try:
                await asyncio.wait_for(asyncio.shield(running), SQLITE_LOCK_WAIT)
            except TimeoutError:
                if turn.give_up():
                    raise locked_too_long() from None
            except asyncio.CancelledError:
                if turn.give_up():
                    raise
                # It has the lock already: it runs to its end (its COMMIT cannot be stopped
                # halfway), then the cancellation goes on.
                await uncancellable(running)
                raise
            await uncancellable(running)  # the same if a cancellation comes from now on
            return cast(list[list[Any]], running.result())

    def _statements_if_free(
        self, fd: int, statements: list[StatementJob]
    ) -> list[list[Any]] | None:
        """``statements`` committed at once when no other writer holds the lock file (``fd``
        is then left holding it) or SQLite's own lock; None, having written nothing, when
        one does."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        return self._committed(statements, wait=False)

    def _run_statements(self, fd: int, statements: list[StatementJob], turn: LockRace) -> Any:
        """``run_statements``'s thread. Closes ``fd`` (releasing the writer lock)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not turn.start():
                return None  # the caller gave up waiting: touch nothing
            return self._committed(statements, wait=True)
        finally:
            os.close(fd)

    def _committed(self, statements: list[StatementJob], *, wait: bool) -> list[list[Any]] | None:
        """BEGIN IMMEDIATE, ``statements``, COMMIT, with the writer lock file held; their
        results. Without ``wait`` (on the loop), None at once if a writer that does not take
        the lock file holds SQLite's lock, or if the COMMIT would wait for the disk."""
        pooled = self.writer_engine.raw_connection()
        try:
            sqlite = pooled.driver_connection
            assert isinstance(sqlite, sqlite3.Connection)
            if not wait and pooled.info.get(COMMIT_SYNCS, True):
                return None
            if not begin_immediate(sqlite, wait=wait):
                return None
            try:
                results = [job.run(sqlite) for job in statements]
                sqlite.execute("COMMIT")
            except BaseException:
                sqlite.rollback()
                raise
            return results
        finally:
            pooled.close()

    async def _take_writer_lock(self) -> int:
        """Queue behind other processes writing this SQLite file; returns the descriptor whose
        ``flock`` is held (close it to release).

        The flock only orders writers, so that the next one wakes the moment the file is free;
        SQLite's own lock (``BEGIN IMMEDIATE``) still guards the data. Each transaction opens
        its own descriptor: a wait that is given up (cancelled, or past ``SQLITE_LOCK_WAIT``)
        cannot stop its thread, so that thread's descriptor is closed whenever it returns,
        without touching a lock some later transaction holds.
        """
        fd = os.open(self._writer_lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        waiting = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.wait_for(asyncio.shield(waiting), SQLITE_LOCK_WAIT)
        except TimeoutError:
            waiting.add_done_callback(lambda _: os.close(fd))
            raise locked_too_long() from None
        except BaseException:
            waiting.add_done_callback(lambda _: os.close(fd))
            raise
        return fd

    async def begin_write(self) -> sa.Connection:
        """``BEGIN IMMEDIATE``, waiting without blocking the loop while another process writes."""
        deadline = time.monotonic() + SQLITE_LOCK_WAIT
        pause = SQLITE_LOCK_POLL_MIN
        while True:
            connection = self.writer_engine.connect()
            try:
                connection.begin()
                return connection
            except OperationalError as exc:
                connection.close()
                if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, SQLITE_LOCK_POLL_MAX)

    async def dispose(self) -> None:
        self.writer_engine.dispose()
        self.reader_engine.dispose()
        await self.wal.close()


def begin_immediate(sqlite: sqlite3.Connection, *, wait: bool) -> bool:
    """``BEGIN IMMEDIATE``. Other MailPass writers wait on the lock file first; with ``wait``
    (in a thread) this waits for a writer that does not (the sqlite3 shell, a backup), and
    without, it returns False at once when there is one."""
    deadline = time.monotonic() + SQLITE_LOCK_WAIT
    pause = SQLITE_LOCK_POLL_MIN
    while True:
        try:
            sqlite.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            if not wait:
                return False
            if time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, SQLITE_LOCK_POLL_MAX)


def locked_too_long() -> OperationalError:
    return OperationalError(
        "BEGIN IMMEDIATE",
        None,
        sqlite3.OperationalError(
            f"database is locked: another process has been writing for {SQLITE_LOCK_WAIT:g} s"
        ),
    )
