"""Failed API authentication, throttled per client address, across processes.

Every request answered 401 is recorded (``api_auth_failures``); when an address has had
``limit`` of them within ``AUTH_FAILURE_WINDOW``, this process answers it 429 RATE_LIMITED until
the oldest of them has aged out of the window. The failures are counted in the database, so an
address that guesses keys across several processes (or machines) is stopped as soon as it fails
once more on each. Requests with a valid key pay nothing for this: only an in-memory look-up of
blocked addresses, and only while there are some.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from mailpass.accounts import repository
from mailpass.clock import utcnow
from mailpass.storage.database import Database

__all__ = ["AUTH_FAILURE_WINDOW", "AuthThrottle"]

AUTH_FAILURE_WINDOW = timedelta(minutes=1)
# Rows older than the window are deleted by the failure that finds this many seconds passed since
# the last clean-up.
CLEANUP_INTERVAL = 60.0  # seconds


class AuthThrottle:
    def __init__(self, database: Database, limit: int) -> None:
        self._database = database
        self.limit = limit
        self._blocked: dict[str, float] = {}  # address -> time.monotonic() it is let in again
        self._cleaned_at = -math.inf

    @property
    def blocking(self) -> bool:
        """Whether any address is blocked here now (then ``retry_after`` is worth asking)."""
        return bool(self._blocked)

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None when it is not blocked."""
        until = self._blocked.get(address)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked[address]
            return None
        return max(1, math.ceil(left))

    async def failed(self, address: str, now: datetime | None = None) -> int | None:
        """Record a 401 answered to ``address``; the seconds it is now blocked for, if it is."""
        now = now or utcnow()
        since = now - AUTH_FAILURE_WINDOW
        async with self._database.transaction() as connection:
            await repository.record_auth_failure(connection, address, now)
            count, oldest = await repository.auth_failures_since(connection, address, since)
            if time.monotonic() - self._cleaned_at >= CLEANUP_INTERVAL:
                await repository.forget_auth_failures_before(connection, since)
                self._cleaned_at = time.monotonic()
        if count < self.limit or oldest is None:
            return None
        # The address may try again once enough of its failures have left the window: the
        # (count - limit + 1)-th oldest; the oldest is a safe lower bound to wait for.
        wait = max(1.0, (oldest + AUTH_FAILURE_WINDOW - now).total_seconds())
        self._blocked[address] = time.monotonic() + wait
        return math.ceil(wait)
