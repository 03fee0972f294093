"""SQLite's writes and the WAL's checkpoints: a group of statements whose writer lock is free,
and a transaction's COMMIT, run on the loop at once, and the WAL is copied into the database
file by a checkpoint in a thread that no write waits for (the writers' own checkpoints at
COMMIT are turned off)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.storage import sqlite as sqlite_backend_module
from mailpass.storage import sqlite_driver, sqlite_wal
from mailpass.storage.database import Database
from mailpass.storage.prepared import PreparedWrite
from mailpass.storage.sqlite import SqliteBackend
from mailpass.storage.sqlite_wal import WalSyncs
from mailpass.storage.tables import users

ADD_USER = PreparedWrite(
    users.insert().values(email=sa.bindparam("email"), created_at=sa.bindparam("now"))
)


async def _add_users(database: Database, count: int, prefix: str = "u") -> None:
    await asyncio.gather(
        *(
            database.execute(ADD_USER, email=f"{prefix}{n}@example.com", now=utcnow())
            for n in range(count)
        )
    )


async def _checkpoints_every(
    database: Database, monkeypatch: pytest.MonkeyPatch, seconds: float
) -> None:
    monkeypatch.setattr(sqlite_wal, "SQLITE_CHECKPOINT_INTERVAL", seconds)
    checkpointing = wal_of(database).checkpointing
    if checkpointing is not None:  # the migrations' writes started one
        await asyncio.wait_for(checkpointing, 10)


def backend_of(database: Database) -> SqliteBackend:
    assert database.sqlite is not None
    return database.sqlite


def wal_of(database: Database) -> WalSyncs:
    return backend_of(database).wal


def _file_path(database: Database) -> Path:
    assert database.url.database is not None
    return Path(database.url.database)


def _emails_in_the_database_file_alone(database: Database, scratch: Path) -> int:
    """How many users the database file holds by itself, without its WAL: what checkpoints
    have copied into it."""
    copy = scratch / "file-alone.sqlite3"
    shutil.copyfile(_file_path(database), copy)
    reader = sqlite3.connect(copy)
    try:
        (count,) = reader.execute("SELECT count(*) FROM users").fetchone()
        return int(count)
    finally:
        reader.close()


def _threads_running_statements(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The thread of each statement job run from now on, in order."""
    threads: list[threading.Thread] = []
    real_run = sqlite_driver.StatementJob.run

    def noting_run(self, sqlite):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        return real_run(self, sqlite)

    monkeypatch.setattr(sqlite_driver.StatementJob, "run", noting_run)
    return threads


async def test_a_free_lock_lets_the_statements_commit_on_the_loop(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _threads_running_statements(monkeypatch)
    await _add_users(sqlite_database, 5)
    # No hand-off to a thread and back: the loop's own thread ran them.
    assert threads
    assert set(threads) == {threading.current_thread()}


async def test_statements_whose_commit_would_sync_go_to_a_thread(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As without a WAL (a file system that cannot share memory), where SQLite's COMMIT syncs:
    # the writer's pool (one connection) hands out this one again.
    writer = backend_of(sqlite_database).writer_engine.raw_connection()
    writer.info[sqlite_driver.COMMIT_SYNCS] = True
    writer.close()
    threads = _threads_running_statements(monkeypatch)
    await _add_users(sqlite_database, 3)
    assert threads
    assert threading.current_thread() not in threads


async def test_a_transaction_in_wal_mode_commits_on_the_loop(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    real_commit = sqlite_backend_module.commit_and_unlock

    def noting_commit(sqlite, writer_lock):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        real_commit(sqlite, writer_lock)

    monkeypatch.setattr(sqlite_backend_module, "commit_and_unlock", noting_commit)
    async with sqlite_database.transaction() as connection:
        await connection.execute(users.insert().values(email="a@example.com", created_at=utcnow()))
    # The COMMIT only appends to the WAL (the sync comes after, in a thread): no hand-off.
    assert threads == [threading.current_thread()]


async def test_the_writer_leaves_checkpoints_to_mailpass(sqlite_database: Database) -> None:
    writer = backend_of(sqlite_database).writer_engine.raw_connection()
    try:
        assert writer.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    finally:
        writer.close()


async def test_a_checkpoint_copies_the_wal_into_the_database_file(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await _checkpoints_every(sqlite_database, monkeypatch, 0.0)
    await _add_users(sqlite_database, 300)
    checkpointing = wal_of(sqlite_database).checkpointing
    assert checkpointing is not None
    await asyncio.wait_for(checkpointing, 10)
    await _add_users(sqlite_database, 1, prefix="last")  # its sync starts the next checkpoint
    assert wal_of(sqlite_database).checkpointing is not None
    await asyncio.wait_for(wal_of(sqlite_database).checkpointing, 10)
    assert _emails_in_the_database_file_alone(sqlite_database, tmp_path) == 301


async def test_no_write_waits_for_a_checkpoint(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _checkpoints_every(sqlite_database, monkeypatch, 0.0)
    started, release = threading.Event(), threading.Event()
    real_checkpoint = WalSyncs.checkpoint

    def held_checkpoint(self: WalSyncs) -> None:
        started.set()
        assert release.wait(10)
        real_checkpoint(self)

    monkeypatch.setattr(WalSyncs, "checkpoint", held_checkpoint)
    try:
        await _add_users(sqlite_database, 1, prefix="first")
        assert await asyncio.to_thread(started.wait, 10)
        # A checkpoint is under way and held: writes go on, each synced and answered.
        await asyncio.wait_for(_add_users(sqlite_database, 20), 10)
    finally:
        release.set()
    assert wal_of(sqlite_database).checkpointing is not None
    await asyncio.wait_for(wal_of(sqlite_database).checkpointing, 10)


async def test_checkpoints_start_at_most_once_an_interval(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _checkpoints_every(sqlite_database, monkeypatch, 1.0)
    await asyncio.sleep(1.0)
    checkpoints: list[None] = []
    real_checkpoint = WalSyncs.checkpoint

    def counted_checkpoint(self: WalSyncs) -> None:
        checkpoints.append(None)
        real_checkpoint(self)

    monkeypatch.setattr(WalSyncs, "checkpoint", counted_checkpoint)
    await _add_users(sqlite_database, 20)  # a few syncs, all within the interval
    assert wal_of(sqlite_database).checkpointing is not None
    await asyncio.wait_for(wal_of(sqlite_database).checkpointing, 10)
    assert len(checkpoints) == 1


async def test_a_failed_checkpoint_is_logged_and_fails_no_write(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await _checkpoints_every(sqlite_database, monkeypatch, 0.0)

    def failing_checkpoint(self: WalSyncs) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(WalSyncs, "checkpoint", failing_checkpoint)
    with caplog.at_level(logging.WARNING, logger="mailpass.storage"):
        await _add_users(sqlite_database, 3)
        assert wal_of(sqlite_database).checkpointing is not None
        with pytest.raises(sqlite3.OperationalError):
            await wal_of(sqlite_database).checkpointing
        await asyncio.sleep(0)  # the done callback runs
    assert "checkpoint of the SQLite WAL failed: disk I/O error" in caplog.text
    async with sqlite_database.read() as connection:
        count = (await connection.execute(sa.select(sa.func.count()).select_from(users))).scalar()
    assert count == 3


async def test_dispose_closes_the_checkpointing_connection(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _checkpoints_every(sqlite_database, monkeypatch, 0.0)
    await _add_users(sqlite_database, 2)
    assert wal_of(sqlite_database).checkpointing is not None
    await asyncio.wait_for(wal_of(sqlite_database).checkpointing, 10)
    assert wal_of(sqlite_database).checkpointer_open
    await sqlite_database.dispose()
    assert not wal_of(sqlite_database).checkpointer_open
