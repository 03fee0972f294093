"""The indexes of ``messages`` that hold only the rows whose last column is set, and the
queries that must still find their rows through them."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from db_fixtures import downgrade_to
from mailpass.delivery.queue import (
    DUE_QUERIES,
    NEXT_PROVIDER_DUE,
    NEXT_PROVIDER_DUE_SQLITE,
    PROVIDER_DUE,
    PROVIDER_DUE_SKIP_LOCKED,
    PROVIDER_DUE_SQLITE,
    QUEUED_BY_PROVIDER,
)
from mailpass.storage.database import Database
from mailpass.storage.migrate import upgrade
from mailpass.storage.tables import messages

NOW = datetime(2026, 12, 2, 12, 0)
# index: the column a row must have set to be in it
PARTIAL = {
    "ix_messages_provider_id_slot_at": "slot_at",
    "ix_messages_status_lease_expires_at": "lease_expires_at",
    "ix_messages_tracking_id": "tracking_id",
}
# The index each query must go through: the queue's two kinds of due messages, a provider's
# slots in a limit's window, a tracking token's message; and a provider's unsent mail, found by
# status alone, which the partial indexes cannot answer.
QUERIES = [
    ("ix_messages_status_lease_expires_at", DUE_QUERIES[0].params(now=NOW, limit=10)),
    ("ix_messages_status_next_attempt_at", DUE_QUERIES[1].params(now=NOW, limit=10)),
    (
        "ix_messages_provider_id_slot_at",
        sa.select(sa.func.count()).where(
            messages.c.provider_id == 1, messages.c.slot_at > NOW - timedelta(hours=1)
        ),
    ),
    (
        "ix_messages_tracking_id",
        sa.select(messages.c.id).where(messages.c.tracking_id.in_(["a" * 32, "b" * 32])),
    ),
    (
        "ix_messages_status_next_attempt_at",
        sa.select(sa.func.count()).where(
            messages.c.provider_id == 1, messages.c.status.in_(("queued", "sending"))
        ),
    ),
]
# A claim's second look, past providers with no room, provider by provider: (on SQLite, on
# PostgreSQL, parameters).
SECOND_LOOK = [
    (NEXT_PROVIDER_DUE_SQLITE, NEXT_PROVIDER_DUE, {"after": 0}),
    (PROVIDER_DUE_SQLITE, PROVIDER_DUE, {"provider_id": 3, "limit": 10}),
    (PROVIDER_DUE_SQLITE, PROVIDER_DUE_SKIP_LOCKED, {"provider_id": 3, "limit": 10}),
]


async def _index_definitions(database: Database) -> dict[str, str]:
    if database.is_sqlite:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'messages'"
    async with database.read() as connection:
        rows = (await connection.execute(sa.text(query))).all()
    return {str(name): str(sql or "") for name, sql in rows}


async def _plan(database: Database, query: sa.Executable) -> str:
    async with database.transaction() as connection:
        sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        if database.is_sqlite:
            rows = await connection.execute(sa.text("EXPLAIN QUERY PLAN " + sql))
            return "\n".join(str(row[-1]) for row in rows)
        # The table is nearly empty: without this PostgreSQL would rightly read it whole.
        await connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
        rows = await connection.execute(sa.text("EXPLAIN " + sql))
        return "\n".join(str(row[0]) for row in rows)


async def test_three_indexes_hold_only_rows_with_their_column_set_and_are_still_used(
    fresh_database,
):
    await upgrade(fresh_database)
    definitions = await _index_definitions(fresh_database)
    for index, column in PARTIAL.items():
        assert f"WHERE {column} IS NOT NULL" in definitions[index].replace("(", "").replace(
            ")", ""
        ), definitions[index]
    for whole in ("ix_messages_user_id_created_at", "ix_messages_status_next_attempt_at"):
        assert "WHERE" not in definitions[whole]
    for index, query in QUERIES:
        assert index in await _plan(fresh_database, query)


async def test_a_claims_second_look_goes_provider_by_provider_through_its_index(
    fresh_database,
):
    await upgrade(fresh_database)
    definition = (await _index_definitions(fresh_database))[QUEUED_BY_PROVIDER]
    assert "status = 'queued'" in definition.replace("(", "").replace(")", "").replace(
        "::text", ""
    ), definition
    for on_sqlite, on_postgres, params in SECOND_LOOK:
        query = on_sqlite if fresh_database.is_sqlite else on_postgres
        plan = await _plan(fresh_database, query.bindparams(now=NOW, **params))
        assert QUEUED_BY_PROVIDER in plan, plan
        assert "Sort" not in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    # And the first look, whose status is bound, never reads through it.
    assert QUEUED_BY_PROVIDER not in await _plan(
        fresh_database, DUE_QUERIES[1].params(now=NOW, limit=10)
    )


async def test_the_migration_goes_down_to_whole_indexes_and_up_again(fresh_database):
    await upgrade(fresh_database)
    await downgrade_to(fresh_database, "0006")
    definitions = await _index_definitions(fresh_database)
    assert all("WHERE" not in definitions[index] for index in PARTIAL)
    await upgrade(fresh_database)
    definitions = await _index_definitions(fresh_database)
    assert all("IS NOT NULL" in definitions[index] for index in PARTIAL)
