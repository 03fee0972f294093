"""A message kept whole is stored with its mail in one transaction: both or neither."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.messages import repository
from mailpass.storage.database import Database
from mailpass.storage.tables import message_contents, messages, users

MAIL = b"Subject: kept\r\n\r\n" + bytes(range(256)) * 400


async def _user(database: Database) -> int:
    async with database.transaction() as connection:
        return int(
            (
                await connection.execute(
                    users.insert()
                    .values(email="owner@example.com", created_at=utcnow())
                    .returning(users.c.id)
                )
            ).scalar_one()
        )


def _rows(user_id: int, count: int) -> list[dict[str, object]]:
    return [
        {
            "user_id": user_id,
            "message_id": f"<{index}@example.com>",
            "from_email": "a@example.com",
            "to_email": "b@example.com",
            "envelope_to": ["b@example.com"],
            "cc": [],
            "bcc": [],
            "subject": "s",
            "tags": [],
            "user_metadata": {},
            "status": "queued",
            "is_test": False,
            "created_at": utcnow(),
        }
        for index in range(count)
    ]


async def _stored(database: Database) -> tuple[list[int], dict[int, bytes]]:
    async with database.read() as connection:
        keys = (await connection.execute(sa.select(messages.c.id))).scalars().all()
        kept = (await connection.execute(sa.select(message_contents))).all()
    return sorted(keys), {row.message_pk: bytes(row.raw) for row in kept}


async def test_only_the_messages_kept_whole_have_their_mail_stored(database: Database) -> None:
    user_id = await _user(database)
    rows = _rows(user_id, 4)
    keys = await repository.store_messages(database, rows[:3], [MAIL, None, MAIL[:100]])
    alone = await repository.store_message(database, rows[3], MAIL[:50])
    assert await _stored(database) == (
        sorted([*keys, alone]),
        {keys[0]: MAIL, keys[2]: MAIL[:100], alone: MAIL[:50]},
    )


async def test_a_message_whose_mail_cannot_be_stored_is_not_stored_either(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await _user(database)

    async def broken(*_args: object) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(repository, "_insert_contents", broken)
    with pytest.raises(RuntimeError, match="the disk is full"):
        await repository.store_messages(database, _rows(user_id, 2), [None, MAIL])
    if database.is_sqlite:
        with pytest.raises(RuntimeError, match="the disk is full"):
            await repository.store_message(database, _rows(user_id, 1)[0], MAIL)
    else:
        # One statement stores both rows on PostgreSQL: its second insert fails in the server.
        async with database.transaction() as connection:
            for statement in FAILING_TRIGGER:
                await connection.execute(sa.text(statement))
        try:
            with pytest.raises(Exception, match="the disk is full"):
                await repository.store_message(database, _rows(user_id, 1)[0], MAIL)
        finally:
            async with database.transaction() as connection:
                await connection.execute(sa.text("DROP FUNCTION mailpass_test_full CASCADE"))
    assert await _stored(database) == ([], {})


FAILING_TRIGGER = (
    "CREATE FUNCTION mailpass_test_full() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the disk is full'; END $$",
    "CREATE TRIGGER mailpass_test_full BEFORE INSERT ON message_contents "
    "FOR EACH ROW EXECUTE FUNCTION mailpass_test_full()",
)


async def test_a_deleted_message_takes_its_mail_with_it(database: Database) -> None:
    user_id = await _user(database)
    (key,) = await repository.store_messages(database, _rows(user_id, 1), [MAIL])
    async with database.transaction() as connection:
        await connection.execute(messages.delete().where(messages.c.id == key))
    assert await _stored(database) == ([], {})
