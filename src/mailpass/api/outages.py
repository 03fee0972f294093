"""Answering in a database outage: 503 SERVICE_UNAVAILABLE with Retry-After, and one log line
an outage (repeated at most every ``OUTAGE_LOG_INTERVAL`` while it lasts), not a traceback a
request."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from mailpass.api.responses import error_response
from mailpass.errors import ServiceUnavailable
from mailpass.storage.unavailable import database_unavailable

__all__ = [
    "OUTAGE_LOG_INTERVAL",
    "RETRY_AFTER_OUTAGE",
    "OutageLog",
    "OutageMiddleware",
    "as_service_unavailable",
]

RETRY_AFTER_OUTAGE = 5  # seconds, in Retry-After
OUTAGE_LOG_INTERVAL = 30.0  # seconds between two log lines about one outage

log = logging.getLogger("mailpass.api")


class OutageLog:
    """An app's log of database outages: the first 503 of an outage is told, then a line at
    most every ``OUTAGE_LOG_INTERVAL`` with how many were answered meanwhile."""

    def __init__(self) -> None:
        self._last = -OUTAGE_LOG_INTERVAL
        self._answered = 0  # 503 answers since the last line

    def note(self, reason: str) -> None:
        self._answered += 1
        now = time.monotonic()
        if now - self._last < OUTAGE_LOG_INTERVAL:
            return
        log.error(
            "the database is unavailable (%s): answering 503 (%d answers since the last line)",
            reason,
            self._answered,
        )
        self._last = now
        self._answered = 0


def as_service_unavailable(error: BaseException, outages: OutageLog) -> ServiceUnavailable | None:
    """The 503 to answer when ``error`` is a database outage (noted in ``outages``); else
    None."""
    reason = database_unavailable(error)
    if reason is None:
        return None
    outages.note(reason)
    return ServiceUnavailable(
        f"the database cannot be reached; retry in {RETRY_AFTER_OUTAGE} seconds",
        retry_after=RETRY_AFTER_OUTAGE,
    )


class OutageMiddleware:
    """Turns a database outage anywhere under it into the 503, before Starlette's handler of
    last resort (which would answer 500 and have the server log a traceback per request)."""

    def __init__(self, app: ASGIApp, *, outages: OutageLog) -> None:
        self.app = app
        self.outages = outages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            unavailable = as_service_unavailable(exc, self.outages)
            if unavailable is None or scope["type"] != "http":
                raise
            await error_response(unavailable)(scope, receive, send)
