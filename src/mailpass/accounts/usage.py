"""Recording when a key was last used, without a write on every request."""

from __future__ import annotations

import time

from mailpass.accounts import repository
from mailpass.clock import utcnow
from mailpass.storage.database import Database

__all__ = ["KeyUsage"]

# Recording "last used" on every request would add a write to every read; once a minute per key
# and process is as precise as anyone reads it.
LAST_USED_RESOLUTION = 60.0  # seconds


class KeyUsage:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._last_recorded: dict[int, float] = {}

    async def record(self, key_id: int) -> None:
        now = time.monotonic()
        if now - self._last_recorded.get(key_id, -LAST_USED_RESOLUTION) < LAST_USED_RESOLUTION:
            return
        self._last_recorded[key_id] = now
        async with self._database.transaction() as connection:
            await repository.touch_key(connection, key_id, utcnow())
