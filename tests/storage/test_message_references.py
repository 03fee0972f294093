"""A message's account and provider: on SQLite foreign keys, on PostgreSQL triggers that check
a statement's rows together (migration 0008). Both keep the same promises, tested here on both
databases: no message refers to a row that is not there, deleting an account deletes its
messages, deleting a provider leaves its messages without one, and a transaction that wrote
messages holds the rows they refer to until it ends."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from db_fixtures import _asyncpg_dsn, downgrade_to
from mailpass.accounts import service as accounts
from mailpass.messages import repository
from mailpass.storage.database import Database
from mailpass.storage.migrate import upgrade
from mailpass.storage.tables import events, messages, providers, users

NOW = datetime(2026, 12, 2, 12, 0)
MISSING = 999_999
# What either database raises for a reference to a row that is not there: SQLAlchemy's error,
# or the driver's own when the rows went in on the driver (a batch).
REFERENCE_ERRORS = (sa.exc.IntegrityError, sqlite3.IntegrityError, asyncpg.ForeignKeyViolationError)


def _row(number: int, user_id: int, provider_id: int | None) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "provider_id": provider_id,
        "message_id": f"<{number}.references@shop.example>",
        "from_email": "sender@shop.example",
        "to_email": f"customer{number}@example.com",
        "cc": [],
        "bcc": [],
        "subject": f"Order #{number}",
        "text": "Thank you.",
        "tags": [],
        "user_metadata": {},
        "status": "queued",
        "is_test": False,
        "created_at": NOW,
        "next_attempt_at": NOW,
    }


async def _scalar(database: Database, query: sa.Executable) -> Any:
    async with database.read() as connection:
        return (await connection.execute(query)).scalar()


async def _count(database: Database, table: sa.Table = messages) -> int:
    return int(await _scalar(database, sa.select(sa.func.count()).select_from(table)))


async def _execute(database: Database, statement: sa.Executable) -> None:
    async with database.transaction() as connection:
        await connection.execute(statement)


@pytest.fixture
async def account(make_account):  # type: ignore[no-untyped-def]
    return await make_account(sink=SimpleNamespace(port=2525))


# How the statement's rows name the missing row: one message; a batch whose every row names it
# (rows that name one account and one provider are checked by one lookup each on PostgreSQL);
# a batch that also names other rows, or none (checked as a set).
SHAPES = ["one", "batch-all", "batch-mixed"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("missing", ["user_id", "provider_id"])
async def test_a_message_naming_a_missing_row_is_refused_and_nothing_is_written(
    database, account, shape, missing
):
    user_id, provider_id = account.user.id, account.provider.id
    bad = _row(3, user_id, provider_id) | {missing: MISSING}
    if shape == "one":
        insert = repository.store_message(database, bad)
    elif shape == "batch-all":
        rows = [_row(n, user_id, provider_id) | {missing: MISSING} for n in range(3)]
        insert = repository.store_messages(database, rows)
    else:
        rows = [_row(1, user_id, provider_id), _row(2, user_id, None), bad]
        insert = repository.store_messages(database, rows)
    with pytest.raises(REFERENCE_ERRORS) as refused:
        await insert
    if not database.is_sqlite:
        table = "users" if missing == "user_id" else "providers"
        assert f"fk_messages_{missing}_{table}" in str(refused.value)
        assert f"Key ({missing})=({MISSING}) is not present" in str(refused.value.detail)
    assert await _count(database) == 0


async def test_messages_naming_existing_rows_go_in(database, account, make_account):
    other = await make_account("other@example.com", sink=SimpleNamespace(port=2525))
    user_id, provider_id = account.user.id, account.provider.id
    one_of_each = [_row(1, user_id, provider_id), _row(2, user_id, provider_id)]
    several = [_row(3, user_id, provider_id), _row(4, user_id, None)]
    several.append(_row(5, other.user.id, other.provider.id))
    none_named = [_row(6, user_id, None)]
    keys = [
        *await repository.store_messages(database, one_of_each),
        *await repository.store_messages(database, several),
        *await repository.store_messages(database, none_named),
        await repository.store_message(database, _row(7, user_id, provider_id)),
    ]
    assert len(set(keys)) == 7
    assert await _count(database) == 7


async def test_deleting_a_provider_leaves_its_messages_without_one(database, account):
    user_id, provider_id = account.user.id, account.provider.id
    await repository.store_messages(
        database, [_row(1, user_id, provider_id), _row(2, user_id, provider_id)]
    )
    await _execute(database, providers.delete().where(providers.c.id == provider_id))
    assert await _count(database) == 2
    assert await _scalar(database, sa.select(sa.func.count(messages.c.provider_id))) == 0


async def test_deleting_an_account_deletes_its_messages_and_their_events(
    database, account, make_account
):
    other = await make_account("other@example.com", sink=SimpleNamespace(port=2525))
    (gone, _) = await repository.store_messages(
        database,
        [_row(1, account.user.id, account.provider.id), _row(2, account.user.id, None)],
    )
    await repository.store_messages(database, [_row(3, other.user.id, other.provider.id)])
    await _execute(
        database, events.insert().values(message_pk=gone, event_type="opened", created_at=NOW)
    )
    await _execute(database, users.delete().where(users.c.id == account.user.id))
    async with database.read() as connection:
        remaining = (await connection.execute(sa.select(messages.c.user_id))).scalars().all()
    assert remaining == [other.user.id]
    assert await _count(database, events) == 0


@pytest.mark.parametrize("column", ["user_id", "provider_id"])
async def test_a_message_cannot_be_changed_to_name_a_missing_row(database, account, column):
    key = await repository.store_message(database, _row(1, account.user.id, account.provider.id))
    with pytest.raises(sa.exc.IntegrityError):
        await _execute(
            database, messages.update().where(messages.c.id == key).values({column: MISSING})
        )
    await _execute(database, messages.update().where(messages.c.id == key).values(provider_id=None))
    await _execute(
        database,
        messages.update()
        .where(messages.c.id == key)
        .values(provider_id=account.provider.id, status="sent"),
    )
    assert await _scalar(database, sa.select(messages.c.provider_id)) == account.provider.id


async def test_the_id_of_a_row_messages_name_cannot_change(database, account):
    # An account that only messages name (no key, no provider), and a provider.
    user = await accounts.create_user(database, "messages-only@example.com")
    await repository.store_message(database, _row(1, user.id, None))
    await repository.store_message(database, _row(2, account.user.id, account.provider.id))
    for table, own_id in ((users, user.id), (providers, account.provider.id)):
        with pytest.raises(sa.exc.IntegrityError):
            await _execute(database, table.update().where(table.c.id == own_id).values(id=MISSING))
    # An id no message names can change.
    unnamed = await accounts.create_user(database, "unnamed@example.com")
    await _execute(database, users.update().where(users.c.id == unnamed.id).values(id=MISSING))


async def _postgres(database: Database) -> asyncpg.Connection:
    return await asyncpg.connect(_asyncpg_dsn(database.url.render_as_string(hide_password=False)))


async def test_postgresql_a_writing_transaction_holds_off_the_deletion_of_its_provider(
    database, account
):
    if database.is_sqlite:
        pytest.skip("SQLite has one writer at a time")
    writer, deleter = await _postgres(database), await _postgres(database)
    try:
        async with writer.transaction():
            await writer.execute(
                "INSERT INTO messages (user_id, provider_id, message_id, from_email, to_email,"
                " cc, bcc, subject, tags, user_metadata, status, is_test, created_at)"
                " VALUES ($1, $2, '<held@x>', 'a@x', 'b@x', '[]', '[]', 's', '[]', '{}',"
                " 'queued', false, now())",
                account.user.id,
                account.provider.id,
            )
            deletion = asyncio.create_task(
                deleter.execute("DELETE FROM providers WHERE id = $1", account.provider.id)
            )
            await asyncio.sleep(0.3)
            assert not deletion.done()  # waiting for the writer's lock on the provider's row
        await asyncio.wait_for(deletion, 5)
    finally:
        await writer.close()
        await deleter.close()
    # The deletion saw the message the writer committed, and unlinked it.
    assert await _count(database) == 1
    assert await _scalar(database, sa.select(messages.c.provider_id)) is None


async def test_postgresql_a_batch_naming_a_provider_being_deleted_fails_when_it_is(
    database, account
):
    if database.is_sqlite:
        pytest.skip("SQLite has one writer at a time")
    deleter = await _postgres(database)
    try:
        async with deleter.transaction():
            await deleter.execute("DELETE FROM providers WHERE id = $1", account.provider.id)
            rows = [_row(n, account.user.id, account.provider.id) for n in range(3)]
            batch = asyncio.create_task(repository.store_messages(database, rows))
            await asyncio.sleep(0.3)
            assert not batch.done()  # waiting for the deletion to commit or not
        with pytest.raises(REFERENCE_ERRORS):
            await asyncio.wait_for(batch, 5)
    finally:
        await deleter.close()
    assert await _count(database) == 0


async def _foreign_keys_of_messages(database: Database) -> set[tuple[str, str, str | None]]:
    """(column, table it refers to, ON DELETE) of each foreign key."""
    if database.is_sqlite:
        # On a connection of its own: a pooled one that read the file before it was migrated
        # may answer this pragma from the schema it read then.
        with closing(sqlite3.connect(str(database.url.database))) as sqlite:
            found = sqlite.execute("PRAGMA foreign_key_list('messages')").fetchall()
        return {(column, table, on_delete) for _, _, table, column, _, _, on_delete, _ in found}
    async with database.read() as connection:
        found = await connection.run_sync(lambda c: sa.inspect(c).get_foreign_keys("messages"))
    return {
        (key["constrained_columns"][0], key["referred_table"], key["options"].get("ondelete"))
        for key in found
    }


async def test_the_migration_goes_down_to_foreign_keys_and_up_again(fresh_database):
    await upgrade(fresh_database)
    keys = {("user_id", "users", "CASCADE"), ("provider_id", "providers", "SET NULL")}
    expected_at_head = keys if fresh_database.is_sqlite else set()
    assert await _foreign_keys_of_messages(fresh_database) == expected_at_head
    await downgrade_to(fresh_database, "0007")
    assert await _foreign_keys_of_messages(fresh_database) == keys
    await upgrade(fresh_database)
    assert await _foreign_keys_of_messages(fresh_database) == expected_at_head
