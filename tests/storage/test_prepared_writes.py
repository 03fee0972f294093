"""``Database.execute``: one INSERT or UPDATE committed on its own (on PostgreSQL in
autocommit mode on the driver, on SQLite in the group commit), on both databases."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailpass.clock import utcnow
from mailpass.storage.database import Database
from mailpass.storage.prepared import PreparedInsert, PreparedWrite
from mailpass.storage.sqlite_driver import insert_rows
from mailpass.storage.tables import messages, users

ROW = {
    "from_email": "a@example.com",
    "to_email": "b@example.com",
    "subject": "Subject ü",
    "envelope_to": ["b@example.com"],
    "cc": [],
    "bcc": [],
    "tags": ["x"],
    "user_metadata": {"order": "42"},
    "is_test": False,
    "html": "<p>html ü</p>",
    "status": "sending",
}
INSERT = PreparedInsert(messages, [*ROW, "user_id", "message_id", "created_at"])
MARK_SENT = PreparedWrite(
    messages.update()
    .where(messages.c.id == sa.bindparam("pk"))
    .values(status="sent", sent_at=sa.bindparam("when"), attempts=messages.c.attempts + 1)
)


async def make_user(database: Database) -> int:
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


def rows_of(user_id: int) -> Callable[..., list[dict[str, object]]]:
    """Rows of ``user_id`` made now, one for each Message-ID name given."""
    now = utcnow()

    def rows(*names: str) -> list[dict[str, object]]:
        return [
            {**ROW, "user_id": user_id, "message_id": f"<{name}@example.com>", "created_at": now}
            for name in names
        ]

    return rows


async def stored(database: Database) -> list[dict[str, object]]:
    async with database.read() as connection:
        result = await connection.execute(sa.select(messages).order_by(messages.c.id))
        return [dict(row) for row in result.mappings()]


async def test_an_insert_returns_its_key_and_is_committed(database: Database) -> None:
    user_id = await make_user(database)
    now = utcnow()
    values = {**ROW, "user_id": user_id, "message_id": "<one@example.com>", "created_at": now}

    (returned,) = await database.execute(INSERT.returning_key, **values)
    sent_at = now + timedelta(microseconds=5)
    assert await database.execute(MARK_SENT, pk=returned["id"], when=sent_at) == []

    (row,) = await stored(database)
    assert row["id"] == returned["id"]
    assert {name: row[name] for name in ROW if name != "status"} == {
        name: value for name, value in ROW.items() if name != "status"
    }
    assert (row["status"], row["sent_at"], row["attempts"]) == ("sent", sent_at, 1)


async def test_a_failed_write_leaves_nothing_and_the_next_one_works(database: Database) -> None:
    user_id = await make_user(database)
    values = {**ROW, "user_id": user_id, "message_id": "<same@example.com>", "created_at": utcnow()}
    await database.execute(INSERT.returning_key, **values)

    with pytest.raises(Exception, match=r"(?i)unique"):
        await database.execute(INSERT.returning_key, **{**values, "subject": "the second"})

    await database.execute(INSERT.returning_key, **{**values, "message_id": "<other@example.com>"})
    assert [row["message_id"] for row in await stored(database)] == [
        "<same@example.com>",
        "<other@example.com>",
    ]
    assert {row["subject"] for row in await stored(database)} == {"Subject ü"}


async def test_a_failing_statement_does_not_take_the_others_of_its_group_down(
    database: Database,
) -> None:
    user_id = await make_user(database)
    values = {**ROW, "user_id": user_id, "created_at": utcnow()}
    await database.execute(INSERT.returning_key, **values, message_id="<taken@example.com>")

    # Sent together, so that they are committed as one group.
    outcomes = await asyncio.gather(
        database.execute(INSERT.returning_key, **values, message_id="<a@example.com>"),
        database.execute(INSERT.returning_key, **values, message_id="<taken@example.com>"),
        database.execute(INSERT.returning_key, **values, message_id="<b@example.com>"),
        return_exceptions=True,
    )

    assert [isinstance(outcome, Exception) for outcome in outcomes] == [False, True, False]
    assert [row["message_id"] for row in await stored(database)] == [
        "<taken@example.com>",
        "<a@example.com>",
        "<b@example.com>",
    ]


async def test_statements_sent_together_each_get_their_own_rows_back(database: Database) -> None:
    user_id = await make_user(database)
    values = {**ROW, "user_id": user_id, "created_at": utcnow()}
    names = [f"<{n}@example.com>" for n in range(40)]

    returned = await asyncio.gather(
        *(database.execute(INSERT.returning_key, **values, message_id=name) for name in names)
    )
    await asyncio.gather(
        *(database.execute(MARK_SENT, pk=row["id"], when=utcnow()) for (row,) in returned[::2])
    )

    by_name = {row["message_id"]: row for row in await stored(database)}
    assert [by_name[name]["id"] for name in names] == [row["id"] for (row,) in returned]
    assert [by_name[name]["status"] for name in names] == ["sent", "sending"] * 20


async def test_rows_inserted_together_get_their_keys_in_order(database: Database) -> None:
    rows = rows_of(await make_user(database))

    first = await database.insert(INSERT, rows("a", "b", "c"))
    async with database.transaction() as connection:  # the newest row goes: its key is free
        await connection.execute(sa.delete(messages).where(messages.c.id == first[-1]))
    keys = await database.insert(INSERT, rows("d", "e", "f", "g"))
    by_key = {row["id"]: row["message_id"] for row in await stored(database)}
    assert [by_key[key] for key in first[:2] + keys] == [
        f"<{name}@example.com>" for name in "abdefg"
    ]


async def test_a_failing_insert_of_rows_leaves_none_of_them_and_not_the_others_of_its_group(
    database: Database,
) -> None:
    rows = rows_of(await make_user(database))

    await database.insert(INSERT, rows("taken"))
    # Sent together, so that they are committed as one group.
    outcomes = await asyncio.gather(
        database.insert(INSERT, rows("a", "b")),
        database.insert(INSERT, rows("c", "taken", "d")),
        database.insert(INSERT, rows("e")),
        return_exceptions=True,
    )

    assert [isinstance(outcome, Exception) for outcome in outcomes] == [False, True, False]
    assert "unique" in str(outcomes[1]).lower()
    by_key = {row["id"]: row["message_id"] for row in await stored(database)}
    assert sorted(by_key.values()) == sorted(
        f"<{name}@example.com>" for name in ("taken", "a", "b", "e")
    )
    assert [by_key[key] for key in outcomes[0] + outcomes[2]] == [  # type: ignore[operator]
        f"<{name}@example.com>" for name in "abe"
    ]


async def test_on_postgresql_inserts_made_together_go_in_by_one_copy(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database.is_sqlite:
        pytest.skip("PostgreSQL's COPY")
    rows = rows_of(await make_user(database))
    copied: list[list[int]] = []
    copy = PreparedInsert.copy

    async def counted(self, asyncpg, dialect, batches):  # type: ignore[no-untyped-def]
        copied.append([len(batch) for batch in batches])
        return await copy(self, asyncpg, dialect, batches)

    monkeypatch.setattr(PreparedInsert, "copy", counted)
    keys = await asyncio.gather(
        database.insert(INSERT, rows("a", "b")),
        database.insert(INSERT, rows("c")),
        database.insert(INSERT, rows("d", "e", "f")),
    )

    assert copied == [[2, 1, 3]]
    by_key = {row["id"]: row["message_id"] for row in await stored(database)}
    assert [[by_key[key] for key in batch] for batch in keys] == [
        [f"<{name}@example.com>" for name in names] for names in ("ab", "c", "def")
    ]


def test_on_sqlite_rows_beyond_the_limit_of_bound_values_go_in_further_statements() -> None:
    sqlite = sqlite3.connect(":memory:")
    sqlite.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
    sqlite.execute("INSERT INTO t (name, n) VALUES ('before', 0)")
    sqlite.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 7)  # three rows of two values
    names = [f"row {i}" for i in range(10)]
    keys = insert_rows(
        sqlite, "INSERT INTO t (name, n) VALUES (?, ?)", [[name, i] for i, name in enumerate(names)]
    )
    assert keys == list(range(2, 12))
    stored_names = dict(sqlite.execute("SELECT id, name FROM t WHERE id > 1"))
    assert stored_names == dict(zip(keys, names, strict=True))


async def test_rows_inserted_together_store_what_a_row_inserted_alone_stores(
    database: Database,
) -> None:
    user_id = await make_user(database)
    now = utcnow()
    varied = [
        {"from_name": "Ü Shop", "reply_to": None, "tags": [], "user_metadata": {"n": [1, None]}},
        {"from_name": None, "reply_to": "r@example.com", "html": "", "is_test": True},
        {"from_name": None, "reply_to": None, "html": None, "envelope_to": None},
    ]
    columns = [*ROW, "user_id", "message_id", "created_at", "from_name", "reply_to"]
    insert = PreparedInsert(messages, columns)
    rows = [
        {**ROW, **values, "user_id": user_id, "message_id": f"<together{i}@x>", "created_at": now}
        for i, values in enumerate(varied)
    ]
    alone = [{**row, "message_id": row["message_id"].replace("together", "alone")} for row in rows]

    await database.insert(insert, rows)
    for row in alone:
        await database.execute(insert.returning_key, **row)

    stored_rows = {row["message_id"]: row for row in await stored(database)}
    for together_row, alone_row in zip(rows, alone, strict=True):
        together = stored_rows[together_row["message_id"]]
        by_itself = stored_rows[alone_row["message_id"]]
        assert {k: v for k, v in together.items() if k not in ("id", "message_id")} == {
            k: v for k, v in by_itself.items() if k not in ("id", "message_id")
        }
        assert {name: together[name] for name in columns if name != "message_id"} == {
            name: value for name, value in together_row.items() if name != "message_id"
        }
