"""Migrations at start-up: a current schema is recognised with one query, without Alembic."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory

from mailpass.storage.migrate import HEAD_REVISION, alembic_config

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
