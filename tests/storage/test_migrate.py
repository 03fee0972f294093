"""Migrations at start-up: a current schema is recognised with one query, without Alembic."""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import sys
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from db_fixtures import DATABASES, POSTGRES_URL, _admin, _asyncpg_dsn, downgrade_to
from mailpass.clock import utcnow
from mailpass.storage.database import Database
from mailpass.storage.migrate import HEAD_REVISION, alembic_config, upgrade
from mailpass.storage.tables import message_contents

PROBE = """
import asyncio, sys
from mailpass.clock import utcnow
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
    """How the bodies' columns are compressed, by ``table.column``."""
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT attrelid::regclass::text || '.' || attname AS name,"
            " attcompression::text AS method FROM pg_attribute"
            " WHERE NOT attisdropped AND ("
            "(attrelid = 'messages'::regclass AND attname IN ('raw', 'html', 'text'))"
            " OR (attrelid = to_regclass('message_contents') AND attname = 'raw'))"
        )
        return {row["name"]: row["method"] for row in rows}
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
        upgraded = {"messages.html": lz4, "messages.text": lz4, "message_contents.raw": lz4}
        await upgrade(database)
        assert await _body_compression(url) == upgraded
        await downgrade_to(database, "0005")
        assert await _body_compression(url) == {
            "messages.raw": "",
            "messages.html": "",
            "messages.text": "",
        }
        await upgrade(database)
        assert await _body_compression(url) == upgraded
    finally:
        await database.dispose()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_kept_mail_moves_to_its_own_table_and_back(fresh_database: Database) -> None:
    """0014 moves each message's kept mail out of ``messages`` and its downgrade brings it
    back, byte for byte; a message composed from its columns has no row either way. Going
    down and up loses no event either."""
    database = fresh_database
    mail = b"Subject: kept\r\n\r\n" + bytes(range(256)) * 600  # ~150 KB, every byte value
    await upgrade(database)
    await downgrade_to(database, "0013")
    async with database.transaction() as connection:
        await connection.execute(
            sa.text("INSERT INTO users (id, email, created_at) VALUES (1, 'o@example.com', :now)"),
            {"now": utcnow()},
        )
        for pk, raw in ((1, mail), (2, None)):
            await connection.execute(
                sa.text(
                    "INSERT INTO messages (id, user_id, message_id, from_email, to_email, cc,"
                    " bcc, subject, tags, user_metadata, status, is_test, created_at, raw)"
                    " VALUES (:pk, 1, :message_id, 'a@example.com', 'b@example.com', '[]',"
                    " '[]', 's', '[]', '{}', 'queued', false, :now, :raw)"
                ).bindparams(sa.bindparam("raw", type_=sa.LargeBinary)),
                {"pk": pk, "message_id": f"<{pk}@example.com>", "now": utcnow(), "raw": raw},
            )
        await connection.execute(
            sa.text(
                "INSERT INTO events (message_pk, event_type, created_at, is_machine)"
                " VALUES (1, 'open', :now, false)"
            ),
            {"now": utcnow()},
        )

    await upgrade(database)
    async with database.read() as connection:
        kept = (await connection.execute(sa.select(message_contents))).all()
        columns = {column["name"] for column in await connection.run_sync(_messages_columns)}
    assert [(row.message_pk, bytes(row.raw)) for row in kept] == [(1, mail)]
    dropped = not database.is_sqlite or sqlite3.sqlite_version_info >= (3, 35, 0)
    assert ("raw" not in columns) is dropped

    await downgrade_to(database, "0013")
    async with database.read() as connection:
        restored = (await connection.execute(sa.text("SELECT id, raw FROM messages"))).all()
        tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        opens = (await connection.execute(sa.text("SELECT count(*) FROM events"))).scalar()
    assert sorted((pk, raw and bytes(raw)) for pk, raw in restored) == [(1, mail), (2, None)]
    assert "message_contents" not in tables
    assert opens == 1  # no migration's way down took the events with it


def _messages_columns(sync: sa.Connection) -> list[Any]:
    return list(sa.inspect(sync).get_columns("messages"))


async def test_provider_hooks_come_and_go_without_touching_messages(
    fresh_database: Database,
) -> None:
    """0017 gives each existing provider its own hook token; its way down drops the columns
    without rebuilding ``providers``, whose rebuild on SQLite would set every message's
    provider to NULL (ON DELETE SET NULL)."""
    database = fresh_database
    await upgrade(database)
    await downgrade_to(database, "0016")
    async with database.transaction() as connection:
        now = utcnow()
        await connection.execute(
            sa.text("INSERT INTO users (id, email, created_at) VALUES (1, 'o@example.com', :now)"),
            {"now": now},
        )
        for pk in (1, 2):
            await connection.execute(
                sa.text(
                    "INSERT INTO providers (id, user_id, name, kind, host, port, security,"
                    " is_default, created_at, updated_at) VALUES (:pk, 1, :name, 'sendgrid',"
                    " 'smtp.sendgrid.net', 587, 'starttls', :is_default, :now, :now)"
                ),
                {"pk": pk, "name": f"p{pk}", "is_default": pk == 1, "now": now},
            )
        await connection.execute(
            sa.text(
                "INSERT INTO messages (id, user_id, provider_id, message_id, from_email,"
                " to_email, cc, bcc, subject, tags, user_metadata, status, is_test, created_at)"
                " VALUES (1, 1, 2, '<1@example.com>', 'a@example.com', 'b@example.com', '[]',"
                " '[]', 's', '[]', '{}', 'sent', false, :now)"
            ),
            {"now": now},
        )

    await upgrade(database)
    async with database.read() as connection:
        tokens = (
            (await connection.execute(sa.text("SELECT hook_token FROM providers ORDER BY id")))
            .scalars()
            .all()
        )
    assert all(token and len(token) == 32 for token in tokens)
    assert len(set(tokens)) == 2

    await downgrade_to(database, "0016")
    async with database.read() as connection:
        provider_of_message = (
            await connection.execute(sa.text("SELECT provider_id FROM messages"))
        ).scalar_one()
        tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    assert provider_of_message == 2
    assert "hook_receipts" not in tables
    assert "bounce_streaks" not in tables
