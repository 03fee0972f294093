"""Items that arrive while a run is under way go together in the next run.

The pattern behind group commit (``Database.write``: concurrent small write transactions
committed together), PostgreSQL's merged round trips (``postgres.PostgresBackend``) and
SQLite's shared WAL syncs (``sqlite_wal.WalSyncs``). Nobody waits for a group to fill: an item
joins whatever is queued while the previous run is under way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["GROUP_COMMIT_MAX_JOBS", "Pending", "Together", "run_each_alone_on_failure"]

# Items run together at most: enough to amortise a commit, few enough to keep transactions
# (and the locks they hold on PostgreSQL) short.
GROUP_COMMIT_MAX_JOBS = 64

Pending = list[tuple[Any, asyncio.Future[Any]]]  # what waits to be run, and who waits
Run = Callable[[list[Any]], Awaitable[list[Any]]]  # a group's items -> one result each


class Together:
    """Runs items given to ``submit`` with ``run``, a group at a time: what is given while a
    run is under way goes into the next group."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._pending: Pending = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Any) -> Any:
        """``item``'s own result (or exception) from the run it went in."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(_run_until_none_pending(self._pending, self._run))
        return await future


async def _run_until_none_pending(pending: Pending, run: Run) -> None:
    """Run what is ``pending``, a group at a time, until nothing is; what joins meanwhile goes
    in the next group. If the running task itself is cancelled (shutdown), everyone waiting is
    told."""
    while pending:
        group = pending[:GROUP_COMMIT_MAX_JOBS]
        del pending[:GROUP_COMMIT_MAX_JOBS]
        try:
            await run_each_alone_on_failure(group, run)
        except BaseException as exc:
            for _item, future in group + pending:
                if not future.done():
                    future.set_exception(exc)
            pending.clear()
            raise


async def run_each_alone_on_failure(group: Pending, run: Run) -> None:
    """``run`` the group; if that fails, each item again alone, so that one failing item never
    takes the others down with it. Each waiter gets its own result or exception."""
    try:
        results = await run([item for item, _future in group])
    except Exception as exc:
        if len(group) == 1:
            if not group[0][1].done():
                group[0][1].set_exception(exc)
            return
        for single in group:
            await run_each_alone_on_failure([single], run)
        return
    for (_item, future), result in zip(group, results, strict=True):
        if not future.done():
            future.set_result(result)
