"""The ``idempotency_keys`` table the migration makes is the one the code describes."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from db_fixtures import downgrade_to
from mailpass.storage.database import Database
from mailpass.storage.migrate import upgrade
from mailpass.storage.tables import metadata


def _differences(connection: sa.Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [
        diff for diff in compare_metadata(context, metadata) if "idempotency_keys" in repr(diff)
    ]


async def test_the_migrated_table_matches_the_code(database):
    async with database.read() as connection:
        assert await connection.run_sync(_differences) == []


async def test_the_migration_goes_down_and_up_again(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'mailpass.sqlite3'}")
    try:
        await upgrade(database, "0004")
        await downgrade_to(database, "0003")
        async with database.read() as connection:
            tables = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert "idempotency_keys" not in tables
        await upgrade(database, "0004")
        async with database.read() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await database.dispose()
