"""``Database.fetch``: a prepared read on the driver returns exactly what SQLAlchemy's own
execution returns (types included: datetimes, JSON, booleans, bytes), on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.storage.database import Database, PreparedRead
from mailpass.storage.tables import messages, users

EVERY_COLUMN = PreparedRead(
    sa.select(messages).where(messages.c.user_id == sa.bindparam("user_id")).order_by(messages.c.id)
)


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
                raw=b"raw \x00\xff bytes",
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
                raw=b"",
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
