"""Waking workers the moment new mail is queued, instead of on their next poll.

In one process (``mailpass serve`` with its built-in worker) an ``asyncio.Event`` does it. Across
processes on PostgreSQL, ``NOTIFY mailpass_queue`` is issued right after the transaction that
queues the mail has committed, and every worker ``LISTEN``s on a connection of its own. SQLite
has no such channel: other processes find new mail on their next poll
(``MAILPASS_QUEUE_POLL_INTERVAL``).

A process sends its NOTIFYs one at a time, in the background, at most one every
``NOTIFY_INTERVAL``: the mail is queued before its request is answered, and the workers need to
hear that there is new mail, not how many requests brought it. Under load that was a round trip
and a transaction for every /send-batch request (2-3 % of the API's CPU), and the request
waited for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailpass.runtime.outages import Outage
from mailpass.storage.channels import Channel
from mailpass.storage.database import Database

__all__ = ["CHANNEL", "QueueWakeup"]

CHANNEL = "mailpass_queue"
RECONNECT_DELAY = 2.0  # seconds between attempts to re-establish a lost LISTEN connection
# The longest a worker elsewhere hears of new mail later than it would with a NOTIFY for each
# announcement; a quiet process's first announcement is sent at once.
NOTIFY_INTERVAL = 0.02  # seconds

log = logging.getLogger("mailpass.delivery")


class QueueWakeup:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._channel = Channel(database, CHANNEL)
        self._listening = Outage(log, "listening for queued mail (the workers poll meanwhile)")
        self._event = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._notifier: asyncio.Task[None] | None = None
        self._notify_due = False
        self._closing = asyncio.Event()

    async def announce(self) -> None:
        """Call once the transaction that queued mail has committed: the worker in this process
        wakes now, and on PostgreSQL every listening one, by a NOTIFY that starts after this
        call (in the background: see the module's docstring)."""
        self._event.set()
        if self._database.is_sqlite:
            return
        self._notify_due = True
        if self._notifier is None:
            self._notifier = asyncio.get_running_loop().create_task(self._notify_while_due())

    async def _notify_while_due(self) -> None:
        try:
            while self._notify_due:
                self._notify_due = False
                await self._notify()
                # Announcements meanwhile are told by the next NOTIFY (at once when closing).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), NOTIFY_INTERVAL)
        finally:
            self._notifier = None

    async def _notify(self) -> None:
        try:
            await self._channel.notify()
        except Exception as exc:  # the mail is queued: nothing else must fail for this
            log.warning(
                "cannot NOTIFY the workers (%s); they find the mail on their next poll", exc
            )

    async def close(self) -> None:
        """Send the NOTIFY still due, if any, without waiting out the interval; call before
        the database is closed."""
        self._closing.set()
        if self._notifier is not None:
            await self._notifier

    def wake(self) -> None:
        """Wake the worker in this process (to stop, say)."""
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Until woken or ``seconds`` pass, whichever is first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()

    def start_listening(self) -> None:
        if self._database.is_sqlite or self._listener is not None:
            return
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        while True:
            try:
                async with self._channel.listening(self._event.set) as lost:
                    self._event.set()  # anything queued while we were not listening
                    self._listening.recovered()
                    await lost.wait()
                    log.warning("LISTEN connection lost; reconnecting")
            except Exception as exc:  # ChannelUnavailable, or lost while being set up
                # Poll meanwhile, and try again: this task must never end by itself.
                self._listening.failed(exc)
                await asyncio.sleep(RECONNECT_DELAY)
