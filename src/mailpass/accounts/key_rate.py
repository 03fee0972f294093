"""An optional cap on each API key's request rate (``MAILPASS_KEY_RATE_LIMIT``, per second).

A token bucket per key, in this process's memory: a key may make up to a second's worth of
requests at once, then one every 1/rate seconds. It costs a dictionary look-up and a clock read
per request, nothing on the database; in exchange it is counted per server process, so with
``serve --processes N`` a key gets up to N times the rate. Off (0) by default.
"""

from __future__ import annotations

import math
import time

__all__ = ["KeyRate"]


class KeyRate:
    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, when counted)

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def take(self, key_id: int, now: float | None = None) -> int | None:
        """Count one request of ``key_id``: None when it may go ahead, else the seconds until
        it may (at least 1)."""
        if not self.enabled:
            return None
        now = time.monotonic() if now is None else now
        burst = max(1.0, self.per_second)
        tokens, counted = self._buckets.get(key_id, (burst, now))
        tokens = min(burst, tokens + (now - counted) * self.per_second)
        if tokens < 1:
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.per_second))
        self._buckets[key_id] = (tokens - 1, now)
        return None
