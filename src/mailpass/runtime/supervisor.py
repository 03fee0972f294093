"""Running a function in several spawned processes, replacing one that dies.

The supervisor forwards SIGTERM and SIGINT, waits for every process to finish its graceful
shutdown, and starts a new process in place of one that died: after a second, and after twice
as long each time its replacements keep dying young (``restart_pause``). A process that exits
with uvicorn's ``STARTUP_FAILURE`` stops them all: another try would fail the same way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from uvicorn.config import STARTUP_FAILURE

from mailpass.runtime.metrics import process_gone, shared_measures

__all__ = [
    "RESTART_PAUSE",
    "RESTART_PAUSE_MAX",
    "STEADY_AFTER",
    "ServerStartFailed",
    "restart_pause",
    "supervise",
]

log = logging.getLogger("mailpass.server")

RESTART_PAUSE = 1.0  # seconds before a process that died is replaced (no busy crash loop)...
RESTART_PAUSE_MAX = 30.0  # ...doubling, up to this, while its replacements keep dying young
STEADY_AFTER = 60.0  # seconds a process must have run for its death to count as a first one
SUPERVISOR_TICK = 0.5  # seconds between the supervisor's looks at its processes


class ServerStartFailed(RuntimeError):
    """A process of ``serve --processes`` or ``worker --processes`` could not start (it logged
    why)."""


def supervise(
    processes: int,
    target: Callable[..., None],
    arguments: tuple[Any, ...],
    *,
    beside: Callable[[], None] | None = None,
) -> None:
    """Run ``target(*arguments)`` in ``processes`` spawned processes until SIGTERM or SIGINT,
    replacing one that dies (``restart_pause``); raise `ServerStartFailed` if one exits with
    uvicorn's ``STARTUP_FAILURE`` (another try would fail the same way).

    The processes share a directory for their measures (``runtime.metrics``). ``beside`` runs
    in a thread of the supervisor meanwhile (the metrics port, which tells all processes').
    """
    with shared_measures():
        if beside is not None:
            threading.Thread(target=beside, name="beside-supervisor", daemon=True).start()
        Supervisor(processes, target, arguments).run()


def restart_pause(previous: float | None, lived: float) -> float:
    """Seconds to wait before replacing a process that died after running ``lived`` seconds,
    when the replacement before it waited ``previous`` (None: there was none): a process that
    keeps failing is retried ever less often, not every second forever."""
    if previous is None or lived >= STEADY_AFTER:
        return RESTART_PAUSE
    return min(previous * 2, RESTART_PAUSE_MAX)


class ProcessSlot:
    """One of the supervisor's processes, and when it is to be replaced once it has died."""

    def __init__(self, process: BaseProcess) -> None:
        self.process = process
        self.started_at = time.monotonic()
        self.pause: float | None = None  # the last wait before a replacement
        self.restart_at: float | None = None  # set while a dead one waits to be replaced


class Supervisor:
    """Keeps ``count`` processes running ``target(*arguments)`` until told to stop."""

    def __init__(
        self, processes: int, target: Callable[..., None], arguments: tuple[Any, ...]
    ) -> None:
        self.count = processes
        self.target = target
        self.arguments = arguments
        self.context = multiprocessing.get_context("spawn")
        self.slots: list[ProcessSlot] = []
        self.stopping = threading.Event()
        self.failed = False

    def run(self) -> None:
        previous = {
            signum: signal.signal(signum, self._stop) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        # SIGHUP (read the certificates again) is every process's: passed on.
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._pass_on)
        try:
            self.slots = [ProcessSlot(self._start()) for _ in range(self.count)]
            while not self.stopping.wait(SUPERVISOR_TICK):
                for slot in self.slots:
                    self._look_after(slot)
            for slot in self.slots:
                child = slot.process
                if child.is_alive() and child.pid is not None:
                    os.kill(child.pid, signal.SIGTERM)
            for slot in self.slots:
                slot.process.join()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self.failed:
            raise ServerStartFailed("a process could not start; its log says why")

    def _pass_on(self, signum: int, _frame: object) -> None:
        for slot in self.slots:
            child = slot.process
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signum)

    def _look_after(self, slot: ProcessSlot) -> None:
        """Replace ``slot``'s process if it died, once its pause is over; the loop goes on
        looking after the others meanwhile."""
        child = slot.process
        if child.is_alive() or self.stopping.is_set():
            return
        now = time.monotonic()
        if slot.restart_at is None:
            if child.exitcode == STARTUP_FAILURE:
                # Another try would fail the same way: stop the others and say so.
                self.stopping.set()
                self.failed = True
                return
            if child.pid is not None:
                process_gone(child.pid)
            slot.pause = restart_pause(slot.pause, now - slot.started_at)
            slot.restart_at = now + slot.pause
            log.error(
                "process %s exited with %s after %.0f s; starting another in %g s",
                child.pid,
                child.exitcode,
                now - slot.started_at,
                slot.pause,
            )
        elif now >= slot.restart_at:
            slot.process = self._start()
            slot.started_at = time.monotonic()
            slot.restart_at = None

    def _start(self) -> BaseProcess:
        child = self.context.Process(target=self.target, args=self.arguments, daemon=False)
        child.start()
        return child

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()
