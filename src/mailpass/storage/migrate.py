"""Applying the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from mailpass.storage.database import Database

__all__ = ["alembic_config", "upgrade", "upgrade_url"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every MailPass process.
POSTGRES_MIGRATION_LOCK = 0x6D61696C70617373


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to run from several processes at once."""
    async with database.transaction() as connection:
        if not database.is_sqlite:
            # Two processes starting together must not both create the tables. (SQLite's
            # BEGIN IMMEDIATE already serialises them.)
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_MIGRATION_LOCK}
            )
        await connection.run_sync(_upgrade, revision)


async def upgrade_url(url: str) -> None:
    """``upgrade`` on a connection of its own, closed afterwards (``mailpass db upgrade``, and
    ``serve --processes`` before it starts its processes)."""
    database = Database(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)
