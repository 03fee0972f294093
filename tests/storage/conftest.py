"""A SQLite database of its own, whatever databases the suite runs on: for the tests of
SQLite's writes, syncs and checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailpass.storage.database import Database
from mailpass.storage.migrate import upgrade


@pytest.fixture
async def sqlite_database(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path / 'mailpass.sqlite3'}")
    await upgrade(database)
    yield database
    await database.dispose()
