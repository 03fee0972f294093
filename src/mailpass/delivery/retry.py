"""When to try a message again: the retry policy as a value.

Transient failures (4xx replies, timeouts, dropped connections) are retried after a delay that
doubles with each attempt, from ``base_delay`` up to ``max_delay``, spread by 20 % of jitter so
that messages which failed together do not all come back together. Once the next attempt would
fall more than ``give_up_after`` after the message was queued, the message fails instead.
With the defaults that is about 2 days and some 16 attempts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailpass.config import Settings

__all__ = ["RetryDecision", "RetryPolicy"]

JITTER = 0.2  # ± fraction of each delay


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """``retry_at`` is when to try again, or None: give up and fail the message."""

    retry_at: datetime | None

    @property
    def gives_up(self) -> bool:
        return self.retry_at is None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_delay: float = 60.0  # seconds
    max_delay: float = 4 * 3600.0  # seconds
    give_up_after: float = 2 * 86400.0  # seconds after the message was queued
    jitter: float = JITTER

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
            give_up_after=settings.retry_give_up_after,
        )

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based), before jitter."""
        exponent = min(attempts - 1, 62)  # 2**62 seconds is past any max_delay anyone sets
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def decide(
        self, *, attempts: int, queued_at: datetime, now: datetime, rng: random.Random | None = None
    ) -> RetryDecision:
        """What to do after the ``attempts``-th attempt failed transiently."""
        spread = 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        retry_at = now + timedelta(seconds=self.delay(attempts) * spread)
        if retry_at > queued_at + timedelta(seconds=self.give_up_after):
            return RetryDecision(None)
        return RetryDecision(retry_at)
