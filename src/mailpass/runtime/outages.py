"""One log line when something starts failing, one when it works again: never a traceback per
attempt while a database or a provider is down."""

from __future__ import annotations

import logging
import time

__all__ = ["Outage", "backoff_delays"]


class Outage:
    """The state of one repeated operation (claiming mail, writing outcomes, beating)."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self.what = what
        self.since: float | None = None  # time.monotonic() of the first failure

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        """Log the first failure of an outage, with its traceback; the next ones not."""
        if self.since is not None:
            return
        self.since = time.monotonic()
        self._log.error(
            "%s failed: %s; retrying", self.what, str(exc) or type(exc).__name__, exc_info=exc
        )

    def recovered(self) -> float | None:
        """Log the end of an outage; its length in seconds, or None when there was none."""
        if self.since is None:
            return None
        lasted = time.monotonic() - self.since
        self.since = None
        self._log.warning("%s works again, after %.1f s", self.what, lasted)
        return lasted


def backoff_delays(first: float, most: float) -> list[float]:
    """Pauses between attempts: ``first`` doubling up to ``most`` (the last repeats)."""
    delays = [first]
    while delays[-1] * 2 < most:
        delays.append(delays[-1] * 2)
    delays.append(most)
    return delays
