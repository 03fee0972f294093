"""The connections kept out of the pool between uses: for reads (``Database.fetch``) on both
databases, and on PostgreSQL for every statement run on asyncpg directly
(``PostgresBackend.on_driver``). A few at most, never one a statement failed or was cancelled on,
none after ``dispose``; and a kept connection sees every commit made since its last use."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mailpass.clock import utcnow
from mailpass.config import Settings
from mailpass.storage import kept as kept_module
from mailpass.storage.database import Database
from mailpass.storage.postgres import PostgresBackend
from mailpass.storage.prepared import PreparedRead
from mailpass.storage.tables import users

USERS = PreparedRead(sa.select(sa.func.count().label("n")).select_from(users))
MISSING = PreparedRead(sa.select(sa.column("n")).select_from(sa.table("no_such_table")))


async def count_users(database: Database) -> int:
    (row,) = await database.fetch(USERS)
    return int(row["n"])


async def add_user(database: Database, email: str) -> None:
    async with database.transaction() as connection:
        await connection.execute(users.insert().values(email=email, created_at=utcnow()))


async def test_a_kept_connection_reads_what_was_committed_since_it_last_read(
    database: Database,
) -> None:
    assert await count_users(database) == 0
    kept = list(database.kept.connections)
    assert len(kept) == 1
    await add_user(database, "one@example.com")
    assert await count_users(database) == 1
    await add_user(database, "two@example.com")
    assert await count_users(database) == 2
    assert database.kept.connections == kept  # the same connection read all three


async def test_a_reads_connection_is_not_kept_when_the_read_fails(database: Database) -> None:
    await count_users(database)
    with pytest.raises(Exception, match="no_such_table"):
        await database.fetch(MISSING)
    assert database.kept.connections == []
    assert await count_users(database) == 0
    assert len(database.kept.connections) == 1


@pytest.fixture
def postgres(database: Database) -> Database:
    if database.is_sqlite:
        pytest.skip("SQLite runs its statements on connections of its own engines")
    return database


def postgres_backend(database: Database) -> PostgresBackend:
    assert database.postgres is not None
    return database.postgres


def postgres_engine(database: Database) -> AsyncEngine:
    return postgres_backend(database).engine


async def backend_pid(database: Database) -> int:
    pid = await postgres_backend(database).on_driver(
        lambda asyncpg: asyncpg.fetchval("SELECT pg_backend_pid()")
    )
    return int(pid)  # type: ignore[call-overload]


async def test_the_next_statement_runs_on_the_connection_the_last_one_used(
    postgres: Database,
) -> None:
    first = await backend_pid(postgres)
    assert [await backend_pid(postgres) for _ in range(5)] == [first] * 5
    assert postgres_engine(postgres).pool.checkedout() == 1  # type: ignore[attr-defined]


async def test_beyond_the_few_kept_the_connections_go_back_to_the_pool(
    postgres: Database,
) -> None:
    pool = postgres_engine(postgres).pool
    at_once = kept_module.KEPT_CONNECTIONS + 3

    async def slow(asyncpg: object) -> object:
        return await asyncpg.fetchval("SELECT pg_sleep(0.2)")  # type: ignore[attr-defined]

    await asyncio.gather(*(postgres_backend(postgres).on_driver(slow) for _ in range(at_once)))
    kept = kept_module.KEPT_CONNECTIONS
    assert len(postgres.kept.connections) == kept
    assert pool.checkedout() == kept  # type: ignore[attr-defined]


async def test_a_connection_a_statement_failed_on_is_not_used_again(postgres: Database) -> None:
    before = await backend_pid(postgres)
    with pytest.raises(Exception, match="division by zero"):
        await postgres_backend(postgres).on_driver(lambda asyncpg: asyncpg.fetchval("SELECT 1 / 0"))
    assert postgres.kept.connections == []
    after = await backend_pid(postgres)
    assert after != before


async def test_a_connection_a_statement_was_cancelled_on_is_not_used_again(
    postgres: Database,
) -> None:
    before = await backend_pid(postgres)
    sleeping = asyncio.ensure_future(
        postgres_backend(postgres).on_driver(
            lambda asyncpg: asyncpg.fetchval("SELECT pg_sleep(30)")
        )
    )
    await asyncio.sleep(0.2)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    assert postgres.kept.connections == []
    assert await backend_pid(postgres) != before
    assert (
        await postgres_backend(postgres).on_driver(
            lambda asyncpg: asyncpg.fetchval("SELECT 41 + 1")
        )
        == 42
    )


async def test_dispose_closes_the_kept_connections(postgres: Database, settings: Settings) -> None:
    kept = await backend_pid(postgres)
    await postgres.dispose()
    observer = Database(settings.resolved_database_url)
    try:
        for _ in range(50):  # the server notices the closed connection a moment later
            alive = await postgres_backend(observer).on_driver(
                lambda asyncpg: asyncpg.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", kept
                )
            )
            if alive == 0:
                break
            await asyncio.sleep(0.05)
        assert alive == 0
    finally:
        await observer.dispose()
