"""A SQLite write is answered only once its commit is on disk.

The writer commits with ``synchronous=NORMAL`` (the COMMIT does not wait for the disk, and the
next writer gets the lock at once), then each write waits for an ``fdatasync`` of the WAL that
started after its COMMIT. These tests hold that sync and check that no write of any kind
(a transaction, a single statement, rows inserted together) returns before it is done, and
that what it waits for is the WAL holding the committed rows. A power cut cannot be staged
here; the sync being the last step before the answer is what can be checked."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.storage import sqlite_wal
from mailpass.storage.database import Database
from mailpass.storage.prepared import PreparedInsert, PreparedWrite
from mailpass.storage.tables import messages, users

ADD_USER = PreparedWrite(
    users.insert().values(email=sa.bindparam("email"), created_at=sa.bindparam("now"))
)


class HeldSync:
    """Stands in for the WAL sync: notes what was committed when it started, waits until
    released, then syncs for real."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.synced_files: list[str] = []
        self.emails_seen: list[str] = []

    def __call__(self, database: Path) -> None:
        # A connection of its own sees only what is committed.
        reader = sqlite3.connect(database)
        try:
            self.emails_seen = [email for (email,) in reader.execute("SELECT email FROM users")]
        finally:
            reader.close()
        self.started.set()
        assert self.release.wait(10)
        real_sync(database)
        self.synced_files.append(str(database))


real_sync = sqlite_wal.sync_wal_file


async def _in_a_transaction(database: Database, email: str) -> None:
    async with database.transaction() as connection:
        await connection.execute(users.insert().values(email=email, created_at=utcnow()))


async def _alone(database: Database, email: str) -> None:
    await database.execute(ADD_USER, email=email, now=utcnow())


async def _group_commit(database: Database, email: str) -> None:
    await database.write(
        lambda connection: connection.execute(
            users.insert().values(email=email, created_at=utcnow())
        )
    )


@pytest.mark.parametrize(
    "add_user",
    [_in_a_transaction, _alone, _group_commit],
    ids=["transaction", "single-statement", "group-commit"],
)
async def test_a_write_returns_only_after_the_wal_holding_it_is_synced(
    sqlite_database: Database,
    monkeypatch: pytest.MonkeyPatch,
    add_user: Callable[[Database, str], Awaitable[None]],
) -> None:
    held = HeldSync()
    monkeypatch.setattr(sqlite_wal, "sync_wal_file", held)

    writing = asyncio.create_task(add_user(sqlite_database, "a@example.com"))
    assert await asyncio.to_thread(held.started.wait, 10)
    await asyncio.sleep(0.05)
    assert not writing.done()  # committed, not yet on disk: no answer
    assert held.emails_seen == ["a@example.com"]  # the sync started after the COMMIT

    held.release.set()
    await asyncio.wait_for(writing, 10)
    assert held.synced_files == [str(sqlite_database.url.database)]


async def test_rows_inserted_together_return_their_keys_only_after_the_sync(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sqlite_database.transaction() as connection:
        await connection.execute(users.insert().values(id=1, email="o@x", created_at=utcnow()))
    held = HeldSync()
    monkeypatch.setattr(sqlite_wal, "sync_wal_file", held)
    row = {
        "user_id": 1,
        "from_email": "o@x",
        "to_email": "t@x",
        "subject": "s",
        "cc": [],
        "bcc": [],
        "tags": [],
        "user_metadata": {},
        "status": "queued",
        "is_test": False,
        "created_at": utcnow(),
    }
    insert = PreparedInsert(messages, [*row, "message_id"])
    rows = [{**row, "message_id": f"<{i}@x>"} for i in range(3)]

    inserting = asyncio.create_task(sqlite_database.insert(insert, rows))
    assert await asyncio.to_thread(held.started.wait, 10)
    await asyncio.sleep(0.05)
    assert not inserting.done()

    held.release.set()
    assert len(await asyncio.wait_for(inserting, 10)) == 3


async def test_one_sync_serves_every_write_committed_before_it_started(
    sqlite_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[Path] = []

    def counting_sync(database: Path) -> None:
        syncs.append(database)
        real_sync(database)

    monkeypatch.setattr(sqlite_wal, "sync_wal_file", counting_sync)
    await asyncio.gather(*(_alone(sqlite_database, f"u{i}@example.com") for i in range(30)))
    # Group commit: the 30 writes went in a few transactions, and a sync serves all the
    # transactions committed before it started.
    assert 1 <= len(syncs) < 30


def test_the_writer_leaves_syncing_to_mailpass_and_readers_keep_full(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'mailpass.sqlite3'}")
    try:
        assert database.sqlite is not None
        writer = database.sqlite.writer_engine.raw_connection()
        reader = database.sqlite.reader_engine.raw_connection()
        try:
            assert writer.driver_connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert writer.driver_connection.execute("PRAGMA synchronous").fetchone() == (1,)
            assert reader.driver_connection.execute("PRAGMA synchronous").fetchone() == (2,)
        finally:
            writer.close()
            reader.close()
    finally:
        asyncio.run(database.dispose())


def test_without_a_wal_file_the_database_file_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_file = tmp_path / "plain.sqlite3"
    sqlite3.connect(database_file).close()  # a rollback journal: no WAL beside it
    synced: list[int] = []
    real_fdatasync = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    real_sync(database_file)
    assert synced == [database_file.stat().st_ino]
