"""``Database.fetch``: a prepared read on the driver returns exactly what SQLAlchemy's own
execution returns (types included: datetimes, JSON, booleans, bytes), on SQLite and
PostgreSQL; on PostgreSQL reads made together go in one round trip, each getting its own
rows."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.storage.database import Database
from mailpass.storage.prepared import PreparedRead
from mailpass.storage.tables import messages, users

EVERY_COLUMN = PreparedRead(
    sa.select(messages).where(messages.c.user_id == sa.bindparam("user_id")).order_by(messages.c.id)
)
# Parameters before and after the run number of PreparedRead.numbered, which ends the SELECT
# list.
LABELLED = PreparedRead(
    sa.select(sa.bindparam("label", type_=sa.String).label("label"), messages.c.message_id)
    .where(messages.c.user_id == sa.bindparam("user_id"))
    .where(messages.c.subject == sa.bindparam("subject"))
    .order_by(messages.c.message_id.desc())
)


async def make_messages(database: Database, *message_ids: str) -> int:
    """A new account with these messages; its id."""
    now = utcnow()
    async with database.transaction() as connection:
        user_id = (
            await connection.execute(
                users.insert()
                .values(email=f"{len(message_ids)}-{now.timestamp()}@example.com", created_at=now)
                .returning(users.c.id)
            )
        ).scalar_one()
        for message_id in message_ids:
            await connection.execute(
                messages.insert().values(
                    user_id=user_id,
                    message_id=message_id,
                    from_email="a@example.com",
                    to_email="b@example.com",
                    subject="Hello",
                    envelope_to=["b@example.com"],
                    cc=[],
                    bcc=[],
                    is_test=False,
                    tags=[],
                    user_metadata={},
                    status="sent",
                    created_at=now,
                )
            )
    return int(user_id)


async def test_rows_match_sqlalchemys(database: Database) -> None:
    now = utcnow()
    async with database.transaction() as connection:
        user_id = (
            await connection.execute(
                users.insert()
                .values(email="owner@example.com", created_at=now)
                .returning(users.c.id)
            )
        ).scalar_one()
        common = {
            "user_id": user_id,
            "from_email": "a@example.com",
            "to_email": "b@example.com",
            "subject": "Subject ü",
            "envelope_to": ["b@example.com"],
            "cc": [],
            "bcc": [],
            "status": "sent",
            "created_at": now,
        }
        await connection.execute(
            messages.insert().values(
                **common,
                message_id="<one@example.com>",
                html="<p>html ü</p>",
                tags=["a", "b"],
                user_metadata={"order": "42", "nested": {"n": 1}},
                is_test=True,
                sent_at=now + timedelta(microseconds=123456),
            )
        )
        await connection.execute(
            messages.insert().values(
                **common,
                message_id="<two@example.com>",
                html="",
                is_test=False,
                tags=[],
                user_metadata={},
            )
        )
    async with database.read() as connection:
        expected = [
            dict(row)
            for row in (
                await connection.execute(EVERY_COLUMN.statement, {"user_id": user_id})
            ).mappings()
        ]

    fetched = await database.fetch(EVERY_COLUMN, user_id=user_id)

    assert fetched == expected
    assert [type(value) for value in fetched[0].values()] == [
        type(value) for value in expected[0].values()
    ]
    assert fetched[0]["tags"] == ["a", "b"]
    assert fetched[0]["is_test"] is True
    assert fetched[0]["sent_at"] == now + timedelta(microseconds=123456)
    assert await database.fetch(EVERY_COLUMN, user_id=user_id + 1) == []


def spy_on_round_trips(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many runs each round trip to PostgreSQL that succeeded carried, in order."""
    carried: list[int] = []
    postgres = database.postgres
    if postgres is None:  # SQLite: no round trips
        return carried
    many, alone = postgres.run_many, postgres.run_alone

    async def counted_many(sql: str, values: list[list[Any]]) -> list[Any]:
        rows = await many(sql, values)
        carried.append(len(values))
        return rows

    async def counted_alone(sql: str, values: list[Any]) -> list[Any]:
        rows = await alone(sql, values)
        carried.append(1)
        return rows

    monkeypatch.setattr(postgres, "run_many", counted_many)
    monkeypatch.setattr(postgres, "run_alone", counted_alone)
    return carried


async def test_reads_made_together_each_get_their_own_rows(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    three = await make_messages(database, "<c@x>", "<a@x>", "<b@x>")
    one = await make_messages(database, "<d@x>")
    none = await make_messages(database)
    asked = [
        {"label": "three", "user_id": three, "subject": "Hello"},
        {"label": "none", "user_id": none, "subject": "Hello"},
        {"label": "one", "user_id": one, "subject": "Hello"},
        {"label": "other subject", "user_id": three, "subject": "Bye"},
        {"label": "three again", "user_id": three, "subject": "Hello"},
    ]
    alone = [await database.fetch(LABELLED, **parameters) for parameters in asked]
    carried = spy_on_round_trips(database, monkeypatch)

    together = await asyncio.gather(*(database.fetch(LABELLED, **p) for p in asked))

    assert together == alone
    assert together == [
        [{"label": "three", "message_id": m} for m in ("<c@x>", "<b@x>", "<a@x>")],
        [],
        [{"label": "one", "message_id": "<d@x>"}],
        [],
        [{"label": "three again", "message_id": m} for m in ("<c@x>", "<b@x>", "<a@x>")],
    ]
    if not database.is_sqlite:
        assert carried == [5]  # one round trip for the five


async def test_on_postgresql_a_failing_read_does_not_fail_the_others_made_with_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.is_sqlite:
        pytest.skip("reads are grouped on PostgreSQL")
    user_id = await make_messages(database, "<a@x>")
    carried = spy_on_round_trips(database, monkeypatch)

    outcomes = await asyncio.gather(
        database.fetch(EVERY_COLUMN, user_id=user_id),
        database.fetch(EVERY_COLUMN, user_id=2**40),  # no PostgreSQL integer
        database.fetch(EVERY_COLUMN, user_id=user_id),
        return_exceptions=True,
    )

    assert carried == [1, 1]  # the three together failed; then each alone, two of them well
    assert isinstance(outcomes[1], Exception)
    assert "out of int32 range" in str(outcomes[1])
    for outcome in (outcomes[0], outcomes[2]):
        assert isinstance(outcome, list)
        assert [row["message_id"] for row in outcome] == ["<a@x>"]
    assert len(await database.fetch(EVERY_COLUMN, user_id=user_id)) == 1
