"""Long-running tasks that are never silently dead: one that crashes is logged with its
traceback and started again, after a pause that doubles while it keeps crashing young."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from mailpass.runtime.outages import backoff_delays

__all__ = ["RESTART_FIRST", "RESTART_MOST", "STEADY_AFTER", "run_supervised"]

RESTART_FIRST = 1.0  # seconds before a crashed task is started again...
RESTART_MOST = 30.0  # ...doubling up to this while it keeps crashing young
STEADY_AFTER = 60.0  # seconds a task must have run for its crash to count as a first one


async def run_supervised(
    name: str, run: Callable[[], Awaitable[None]], log: logging.Logger
) -> None:
    """``run()`` until it returns (or this task is cancelled), starting it again whenever it
    raises."""
    delays = backoff_delays(RESTART_FIRST, RESTART_MOST)
    crashes = 0
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except Exception:
            if time.monotonic() - started >= STEADY_AFTER:
                crashes = 0
            pause = delays[min(crashes, len(delays) - 1)]
            log.exception("%s crashed; starting it again in %g s", name, pause)
            crashes += 1
        await asyncio.sleep(pause)
