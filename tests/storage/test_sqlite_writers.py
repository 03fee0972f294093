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
from mailpass.storage import sqlite as sqlite_backend_module
from mailpass.storage.database import Database
from mailpass.storage.migrate import upgrade
from mailpass.storage.prepared import PreparedWrite
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


# Single-statement writes (execute) take the writer lock in a thread of their own and run
# their whole transaction there: the same rules hold for them.
ADD_USER = PreparedWrite(
    users.insert().values(email=sa.bindparam("email"), created_at=sa.bindparam("now"))
)


async def _add_user_alone(database: Database, email: str) -> None:
    await database.execute(ADD_USER, email=email, now=utcnow())


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
    monkeypatch.setattr(sqlite_backend_module, "SQLITE_LOCK_WAIT", 0.3)
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
            committing.set()  # the COMMIT follows, then the wait for the WAL's sync

    task = asyncio.create_task(writer())
    await committing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The COMMIT is not undone: the row is there, the writer lock is free, and both
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
