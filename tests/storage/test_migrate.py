"""Migrations at start-up: a current schema is recognised with one query, without Alembic."""

from __future__ import annotations

import secrets
import subprocess
import sys

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from db_fixtures import DATABASES, POSTGRES_URL, _admin, _asyncpg_dsn, downgrade_to
from mailpass.storage.database import Database
from mailpass.storage.migrate import HEAD_REVISION, alembic_config, upgrade

PROBE = """
import asyncio, sys
from mailpass.storage.database import Database
from mailpass.storage.migrate import upgrade

async def main():
    database = Database(sys.argv[1])
    try:
        await upgrade(database)
    finally:
        await database.dispose()

asyncio.run(main())
print("alembic" in sys.modules)
"""


def test_head_revision_is_the_newest_migration():
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def run_upgrade(url: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", PROBE, url], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


def test_a_current_schema_is_left_alone_without_loading_alembic(database_url):
    first = run_upgrade(database_url)
    if database_url.startswith("sqlite"):  # a new file: every migration runs, through Alembic
        assert first == "True"
    assert run_upgrade(database_url) == "False"  # now current: one query says so


async def _compression_methods(url: str) -> list[str]:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        methods = await connection.fetchval(
            "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        return list(methods or [])
    finally:
        await connection.close()


async def _body_compression(url: str) -> dict[str, str]:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT attname, attcompression::text FROM pg_attribute"
            " WHERE attrelid = 'messages'::regclass AND attname IN ('raw', 'html', 'text')"
        )
        return {row["attname"]: row["attcompression"] for row in rows}
    finally:
        await connection.close()


@pytest.mark.skipif("postgresql" not in DATABASES, reason="PostgreSQL is not tested here")
async def test_message_bodies_are_compressed_with_lz4_on_postgresql() -> None:
    # On a database of its own: the downgrade must not touch the session's.
    name = f"mailpass_migrate_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    database = Database(url)
    try:
        # A server built without lz4 keeps the default ("").
        lz4 = "l" if "lz4" in await _compression_methods(url) else ""
        await upgrade(database)
        assert await _body_compression(url) == {"raw": lz4, "html": lz4, "text": lz4}
        await downgrade_to(database, "0005")
        assert await _body_compression(url) == {"raw": "", "html": "", "text": ""}
        await upgrade(database)
        assert await _body_compression(url) == {"raw": lz4, "html": lz4, "text": lz4}
    finally:
        await database.dispose()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
