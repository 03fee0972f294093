"""``Database.write``: concurrent write jobs share one transaction, and one failing job never
takes the others down with it (on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.storage.database import Connection, Database
from mailpass.storage.tables import users


async def _insert_user(connection: Connection, email: str) -> int:
    result = await connection.execute(
        users.insert().values(email=email, created_at=utcnow()).returning(users.c.id)
    )
    return int(result.scalar_one())


async def _emails(database: Database) -> list[str]:
    async with database.read() as connection:
        rows = await connection.execute(sa.select(users.c.email).order_by(users.c.email))
        return [str(email) for (email,) in rows.all()]


async def test_concurrent_jobs_commit_together(database: Database) -> None:
    transactions: list[Connection] = []  # kept alive, so their ids stay distinct

    def job(email: str):  # type: ignore[no-untyped-def]
        async def run(connection: Connection) -> int:
            transactions.append(connection)
            return await _insert_user(connection, email)

        return run

    ids = await asyncio.gather(*(database.write(job(f"u{n}@example.com")) for n in range(20)))

    assert len(set(ids)) == 20
    assert await _emails(database) == sorted(f"u{n}@example.com" for n in range(20))
    # The first job starts alone; everything queued while it commits shares the next one.
    assert len({id(connection) for connection in transactions}) < 20


async def test_a_failing_job_fails_alone(database: Database) -> None:
    async def duplicate(connection: Connection) -> int:
        await _insert_user(connection, "dup@example.com")
        return await _insert_user(connection, "dup@example.com")  # unique violation

    def good(email: str):  # type: ignore[no-untyped-def]
        return lambda connection: _insert_user(connection, email)

    results = await asyncio.gather(
        database.write(good("a@example.com")),
        database.write(good("b@example.com")),
        database.write(duplicate),
        database.write(good("c@example.com")),
        return_exceptions=True,
    )

    assert isinstance(results[2], sa.exc.IntegrityError)
    assert all(isinstance(result, int) for n, result in enumerate(results) if n != 2)
    # Nothing of the failing job is kept, everything of the others is, exactly once.
    assert await _emails(database) == ["a@example.com", "b@example.com", "c@example.com"]


async def test_a_result_is_returned_only_after_its_commit(database: Database) -> None:
    other = Database(str(database.url.render_as_string(hide_password=False)))
    try:
        user_id = await database.write(lambda c: _insert_user(c, "seen@example.com"))
        # Another connection pool (as another process would) sees it at once.
        async with other.read() as connection:
            found = await connection.execute(sa.select(users.c.id).where(users.c.id == user_id))
            assert found.scalar_one() == user_id
    finally:
        await other.dispose()


@pytest.mark.parametrize("jobs", [1, 5])
async def test_a_refusal_returned_by_a_job_rolls_nothing_back(
    database: Database, jobs: int
) -> None:
    async def refuse(connection: Connection) -> str:
        return "over the limit"

    results = await asyncio.gather(
        *(database.write(lambda c, n=n: _insert_user(c, f"k{n}@example.com")) for n in range(jobs)),
        database.write(refuse),
    )
    assert results[-1] == "over the limit"
    assert len(await _emails(database)) == jobs
