"""Applying the Alembic migrations that ship inside the package.

Every server and worker process makes sure the schema is current when it starts. When it is
(``HEAD_REVISION`` is recorded), one query says so and Alembic is not even imported: loading it
(with Mako and its script directory) was a fifth of a worker's start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Connection, text

from mailpass.storage.database import Database
from mailpass.storage.prepared import PreparedRead

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD_REVISION", "alembic_config", "upgrade", "upgrade_url"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The newest migration in MIGRATIONS_DIR (a test holds the two together).
HEAD_REVISION = "0023"
_RECORDED_REVISION = PreparedRead(
    sa.select(sa.column("version_num", sa.String)).select_from(sa.table("alembic_version"))
)
# Any constant works; it only has to be the same in every MailPass process.
POSTGRES_MIGRATION_LOCK = 0x6D61696C70617373


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to run from several processes at once."""
    if revision == "head" and await _recorded_revision(database) == HEAD_REVISION:
        return
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


async def _recorded_revision(database: Database) -> str | None:
    """The revision the database says it is at; None when it has none (a new database)."""
    try:
        rows = await database.fetch(_RECORDED_REVISION)
    except Exception:  # no alembic_version table yet: every migration is to run
        return None
    return rows[0]["version_num"] if len(rows) == 1 else None


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revision)
