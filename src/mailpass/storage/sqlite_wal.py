"""SQLite's commits made durable outside the writer lock, and the WAL checkpointed in the
background.

The writer commits with ``synchronous=NORMAL`` (``sqlite_driver.sqlite_engine``): the COMMIT
appends to the WAL without waiting for the disk, and lets the next writer in. Before its answer,
each writer waits (``WalSyncs.synced``) for an ``fdatasync`` of the WAL that started after its
COMMIT, which makes it durable: what ``synchronous=FULL`` does inside the COMMIT, with the
writer lock held. One sync serves every commit made before it started, of this process or
another (the kernel flushes the file, whoever wrote it). Checkpoints sync the WAL before copying
it into the database file, and the file after, so a commit a checkpoint has taken in stays
durable too.

With the sync inside the COMMIT, the COMMIT of a batched row held the lock 23-25 us, ~15 us
without: two processes' writers waited for each other's syncs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sqlite3
import threading
import time
from pathlib import Path

from mailpass.storage.group_commit import Together
from mailpass.storage.sqlite_driver import SQLITE_READ_BUSY_TIMEOUT

__all__ = ["SQLITE_CHECKPOINT_INTERVAL", "WalSyncs", "sync_wal_file"]

# SQLite's writers do not checkpoint the WAL at their COMMIT: each process does, in a thread,
# after a sync of the WAL, at most this often. At its default (a COMMIT that leaves 1,000 pages
# or more in the WAL checkpoints), a COMMIT now and then copied the WAL into the database file
# and synced both, with the writer lock held. Under /send at 16 clients that point came several
# times a second; here the interval makes about as many checkpoints, and none of them holds up
# a writer.
SQLITE_CHECKPOINT_INTERVAL = 0.1  # seconds

log = logging.getLogger("mailpass.storage")


class WalSyncs:
    """The syncs and checkpoints of one SQLite file's WAL, for one process."""

    def __init__(self, database_file: Path) -> None:
        self.database_file = database_file
        self._syncs = Together(self._sync)
        # The connection that checkpoints the WAL (``checkpoint``), made at the first one;
        # the lock keeps ``close`` from closing it under a checkpoint.
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpointer_lock = threading.Lock()
        self._checkpointer_closed = False  # by close: no checkpoint opens it again
        # The checkpoint under way or last made, if any.
        self.checkpointing: asyncio.Future[None] | None = None
        self._checkpoint_started = -math.inf  # time.monotonic() of the last one

    @property
    def checkpointer_open(self) -> bool:
        """Whether the checkpointing connection is open (it is from the first checkpoint until
        ``close``)."""
        return self._checkpointer is not None

    async def synced(self) -> None:
        """Return once the WAL is on disk with every commit made before this call."""
        await self._syncs.submit(None)

    async def _sync(self, waiters: list[None]) -> list[None]:
        await asyncio.to_thread(sync_wal_file, self.database_file)
        self.checkpoint_soon()
        return [None] * len(waiters)

    def checkpoint_soon(self) -> None:
        """Start a checkpoint in a thread, unless one is under way or the last one started
        less than ``SQLITE_CHECKPOINT_INTERVAL`` ago. Nobody waits for it."""
        if self.checkpointing is not None and not self.checkpointing.done():
            return
        now = time.monotonic()
        if now - self._checkpoint_started < SQLITE_CHECKPOINT_INTERVAL:
            return
        self._checkpoint_started = now
        self.checkpointing = asyncio.ensure_future(asyncio.to_thread(self.checkpoint))
        self.checkpointing.add_done_callback(_log_checkpoint_failure)

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file, as far as no reader still needs
        the WAL's older pages (``PASSIVE``: it waits for nobody, and nobody waits for it).
        With ``synchronous=FULL`` it syncs the WAL before and the database file after, so a
        commit it copies stays durable when the WAL starts over."""
        with self._checkpointer_lock:
            if self._checkpointer_closed:
                return
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self.database_file, isolation_level=None, check_same_thread=False
                )
                self._checkpointer.execute("PRAGMA synchronous=FULL")
                self._checkpointer.execute(f"PRAGMA busy_timeout={SQLITE_READ_BUSY_TIMEOUT}")
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def close(self) -> None:
        """Close the checkpointing connection; no checkpoint opens it again."""
        if self.checkpointing is not None:  # a checkpoint may be opening its connection
            await asyncio.to_thread(self._close_checkpointer)

    def _close_checkpointer(self) -> None:
        with self._checkpointer_lock:
            self._checkpointer_closed = True
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None


def _log_checkpoint_failure(checkpoint: asyncio.Future[None]) -> None:
    # Not a write's failure: every commit is in the WAL, synced, and the next checkpoint
    # tries again.
    if not checkpoint.cancelled() and (exc := checkpoint.exception()) is not None:
        log.warning("checkpoint of the SQLite WAL failed: %s", exc)


def sync_wal_file(database: Path) -> None:
    """``fdatasync`` the WAL of ``database``; the database file itself when it has none (not in
    WAL mode, or the last connection checkpointed and removed it)."""
    try:
        fd = os.open(f"{database}-wal", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = os.open(database, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)
