"""Outcomes of ``/send`` that the database refused after the provider had answered.

The message's row was durably written before the provider was contacted; once the provider has
answered, its answer is the request's answer, whatever the database does next. An outcome the
database cannot take now (an outage) is kept and written when it is back, so that a client
retrying on an error never sends the mail twice. If the process stops first, the message stays
``sending`` (as after a crash at that moment).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from mailpass.runtime.outages import Outage
from mailpass.storage.unavailable import database_unavailable

__all__ = ["LATE_OUTCOME_RETRY", "LateOutcomes"]

LATE_OUTCOME_RETRY = 1.0  # seconds between attempts to write what the database refused

log = logging.getLogger("mailpass.messages")

Write = Callable[[], Awaitable[None]]


class LateOutcomes:
    def __init__(self) -> None:
        self._pending: list[Write] = []
        self._retrying: asyncio.Task[None] | None = None
        self._outage = Outage(log, "recording the outcome of /send")

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def record(self, write: Write) -> None:
        """``write()`` now, or, in a database outage, as soon as the database is back."""
        try:
            await write()
        except Exception as exc:
            if database_unavailable(exc) is None:
                raise
            self._outage.failed(exc)
            self._pending.append(write)
            if self._retrying is None or self._retrying.done():
                self._retrying = asyncio.get_running_loop().create_task(self._retry())

    async def _retry(self) -> None:
        while self._pending:
            await asyncio.sleep(LATE_OUTCOME_RETRY)
            await self._write_pending()

    async def _write_pending(self) -> None:
        while self._pending:
            try:
                await self._pending[0]()
            except Exception as exc:
                self._outage.failed(exc)
                return
            self._pending.pop(0)
        self._outage.recovered()

    async def close(self) -> None:
        """One last try; what is still pending is logged (those messages stay ``sending``)."""
        if self._retrying is not None:
            self._retrying.cancel()
        await self._write_pending()
        if self._pending:
            log.error(
                "%d outcomes of /send could not be written: those messages stay 'sending'",
                len(self._pending),
            )
