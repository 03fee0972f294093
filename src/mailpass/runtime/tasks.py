"""Long-running tasks that are never silently dead: one that crashes is logged with its
traceback and started again, after a pause that doubles while it keeps crashing young (the
same policy as the supervisor's for processes). One that cannot be kept running (it crashed
``GIVE_UP_AFTER`` times in a row, each soon after it started) ends with ``TaskFailed``: the
process is then to exit non-zero (``EXIT_TASK_FAILED``), so that its supervisor or service
manager starts a fresh one, rather than go on serving without it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from mailpass.runtime.supervisor import STEADY_AFTER, restart_pause

__all__ = ["EXIT_TASK_FAILED", "GIVE_UP_AFTER", "TaskFailed", "run_supervised"]

GIVE_UP_AFTER = 5  # crashes in a row, each within STEADY_AFTER of its start (~15 s of pauses)
EXIT_TASK_FAILED = 70  # the process's exit status then (EX_SOFTWARE, sysexits.h)


class TaskFailed(RuntimeError):
    """A supervised task kept crashing: the process should exit and be started afresh."""


async def run_supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    log: logging.Logger,
    *,
    give_up_after: int = GIVE_UP_AFTER,
) -> None:
    """``run()`` until it returns (or this task is cancelled), starting it again whenever it
    raises, after the pause a crashed process of the supervisor waits (``restart_pause``);
    `TaskFailed` once it crashed ``give_up_after`` times in a row, each young."""
    pause: float | None = None
    crashes = 0
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except Exception as exc:
            lived = time.monotonic() - started
            crashes = crashes + 1 if lived < STEADY_AFTER else 1
            if crashes >= give_up_after:
                log.critical(
                    "%s crashed %d times in a row; giving up on it: this process exits so that "
                    "a fresh one is started",
                    name,
                    crashes,
                    exc_info=True,
                )
                raise TaskFailed(f"{name} crashed {crashes} times in a row") from exc
            pause = restart_pause(pause, lived)
            log.exception("%s crashed; starting it again in %g s", name, pause)
        await asyncio.sleep(pause)
