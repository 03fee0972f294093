"""Several processes writing one SQLite file queue on a lock file beside it: the next writer
starts the moment the current one commits, a writer that gives up its wait leaves nothing held,
and one that waits too long gets a clear "database is locked" error.

Each ``Database`` here stands for a process: it has its own connections and its own in-process
turn, and every transaction opens its own descriptor of the lock file, so ``flock`` treats two
``Database`` objects exactly as it treats two processes."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from mailpass.clock import utcnow
from mailpass.storage import database as database_module
from mailpass.storage.database import Database, PreparedWrite
from mailpass.storage.migrate import upgrade
from mailpass.storage.tables import users


@pytest.fixture
async def two_processes(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'mailpass.sqlite3'}"
    first, second = Database(url), Database(url)
    await upgrade(first)
    yield first, second
    await first.dispose()
    await second.dispose()


def _lock_file_is_held(database: Database) -> bool:
    """Whether some writer holds the flock of the lock file beside the database."""
    path = Path(f"{database.url.database}-writer.lock")
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


async def _add_user(database: Database, email: str) -> None:
    async with database.transaction() as connection:
        await connection.execute(users.insert().values(email=email, created_at=utcnow()))


# Single-statement writes (write_alone) take the writer lock in a thread of their own and run
# their whole transaction there: the same rules hold for them.
ADD_USER = PreparedWrite(
    users.insert().values(email=sa.bindparam("email"), created_at=sa.bindparam("now"))
)


async def _add_user_alone(database: Database, email: str) -> None:
    await database.write_alone(ADD_USER, email=email, now=utcnow())


async def _emails(database: Database) -> list[str]:
    async with database.read() as connection:
        rows = await connection.execute(sa.select(users.c.email).order_by(users.c.email))
        return [str(email) for (email,) in rows.all()]


@asynccontextmanager
async def _writing(database: Database) -> AsyncIterator[None]:
    """Hold a write transaction of ``database`` open for the length of the block."""
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with database.transaction():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    try:
        yield
    finally:
        release.set()
        await holder


WRITES = pytest.mark.parametrize(
    "add_user", [_add_user, _add_user_alone], ids=["transaction", "single-statement"]
)


@WRITES
async def test_a_waiting_writer_starts_as_soon_as_the_other_commits(
    two_processes, add_user
) -> None:
    first, second = two_processes
    async with _writing(first):
        waiter = asyncio.create_task(add_user(second, "b@example.com"))
        await asyncio.sleep(0.3)
        assert not waiter.done()  # it waits for the other "process"
        assert _lock_file_is_held(first)
    committed_at = time.monotonic()
    await waiter
    assert time.monotonic() - committed_at < 1.0
    assert not _lock_file_is_held(first)
    assert await _emails(first) == ["b@example.com"]


async def test_a_cancelled_wait_leaves_no_lock_behind(two_processes) -> None:
    first, second = two_processes
    async with _writing(first):
        waiter = asyncio.create_task(_add_user(second, "gave-up@example.com"))
        await asyncio.sleep(0.2)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    # The abandoned wait's thread got the lock after the holder let go, and gave it back:
    # both "processes" can still write, promptly.
    await asyncio.wait_for(_add_user(first, "first@example.com"), 5)
    await asyncio.wait_for(_add_user(second, "second@example.com"), 5)
    assert await _emails(second) == ["first@example.com", "second@example.com"]


@WRITES
async def test_waiting_too_long_is_a_clear_error(two_processes, monkeypatch, add_user) -> None:
    first, second = two_processes
    monkeypatch.setattr(database_module, "SQLITE_LOCK_WAIT", 0.3)
    async with _writing(first):
        with pytest.raises(OperationalError, match="database is locked"):
            await add_user(second, "late@example.com")
    # The wait that was given up got the lock once the holder let go, and gave it back
    # without writing.
    await asyncio.wait_for(add_user(second, "later@example.com"), 5)
    assert await _emails(first) == ["later@example.com"]
    assert not _lock_file_is_held(first)


async def test_a_commit_under_way_finishes_when_its_task_is_cancelled(two_processes) -> None:
    first, second = two_processes
    committing = asyncio.Event()

    async def writer() -> None:
        async with first.transaction() as connection:
            await connection.execute(
                users.insert().values(email="kept@example.com", created_at=utcnow())
            )
            committing.set()  # the next suspension is the COMMIT in its thread

    task = asyncio.create_task(writer())
    await committing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The COMMIT ran to its end: the row is there, the writer lock is free, and both
    # "processes" write on.
    assert await _emails(second) == ["kept@example.com"]
    assert not _lock_file_is_held(first)
    await asyncio.wait_for(_add_user(first, "after@example.com"), 5)
    await asyncio.wait_for(_add_user(second, "later@example.com"), 5)
    assert len(await _emails(first)) == 3


async def test_statements_wait_for_a_writer_that_does_not_take_the_lock_file(
    two_processes,
) -> None:
    first, _second = two_processes
    assert first.url.database is not None
    outsider = sqlite3.connect(first.url.database, isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")  # the sqlite3 shell, say
    waiter = asyncio.create_task(_add_user_alone(first, "a@example.com"))
    await asyncio.sleep(0.2)
    assert not waiter.done()
    outsider.execute("COMMIT")
    outsider.close()
    await asyncio.wait_for(waiter, 5)
    assert await _emails(first) == ["a@example.com"]


def _emails_in_the_database_file(database: Database, tmp_path: Path) -> list[str]:
    """The users in the database file itself, without its WAL: what a checkpoint copied."""
    copy = tmp_path / "without-wal.sqlite3"
    copy.write_bytes(Path(str(database.url.database)).read_bytes())
    connection = sqlite3.connect(copy)
    try:
        return [email for (email,) in connection.execute("SELECT email FROM users ORDER BY email")]
    except sqlite3.OperationalError:  # not even the tables yet
        return []
    finally:
        connection.close()


@WRITES
async def test_a_commit_is_copied_from_the_wal_soon_after_by_a_checkpoint_of_our_own(
    two_processes, add_user, tmp_path: Path
) -> None:
    # A few pages, far from the 1,000 that start SQLite's automatic checkpoint: only ours
    # copies them into the file.
    first, _second = two_processes
    await add_user(first, "a@example.com")
    deadline = time.monotonic() + 5
    while "a@example.com" not in _emails_in_the_database_file(first, tmp_path):
        assert time.monotonic() < deadline, "the commit stayed in the WAL"
        await asyncio.sleep(0.05)
    assert await _emails(first) == ["a@example.com"]


def test_a_checkpoint_never_creates_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "gone.sqlite3"
    with pytest.raises(sqlite3.OperationalError):
        database_module._checkpoint_passive(missing)
    assert not missing.exists()
