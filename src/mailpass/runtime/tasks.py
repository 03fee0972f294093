"""Long-running tasks that are never silently dead: one that crashes is logged with its
traceback and started again, after a pause that doubles while it keeps crashing young (the
same policy as the supervisor's for processes)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from mailpass.runtime.supervisor import restart_pause

__all__ = ["run_supervised"]


async def run_supervised(
    name: str, run: Callable[[], Awaitable[None]], log: logging.Logger
) -> None:
    """``run()`` until it returns (or this task is cancelled), starting it again whenever it
    raises, after the pause a crashed process of the supervisor waits (``restart_pause``)."""
    pause: float | None = None
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except Exception:
            pause = restart_pause(pause, time.monotonic() - started)
            log.exception("%s crashed; starting it again in %g s", name, pause)
        await asyncio.sleep(pause)
