"""Workers in other processes hear of newly queued mail at once on PostgreSQL (NOTIFY)."""

from __future__ import annotations

import asyncio

import pytest

from mailpass.config import Settings
from mailpass.delivery.wakeup import QueueWakeup
from mailpass.storage.database import Database


async def test_a_worker_elsewhere_hears_of_new_mail_at_once(
    settings: Settings, database: Database
) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite has no channel between processes: their workers poll")
    elsewhere = Database(settings.resolved_database_url)  # stands for another process
    listening = QueueWakeup(elsewhere)
    listening.start_listening()
    try:
        await listening.wait(5)  # woken once when it starts listening, for what it missed
        started = asyncio.get_running_loop().time()
        await QueueWakeup(database).announce()
        await listening.wait(5)
        assert asyncio.get_running_loop().time() - started < 1.0
    finally:
        await listening.stop_listening()
        await elsewhere.dispose()
