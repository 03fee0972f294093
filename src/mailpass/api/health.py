"""``GET /readyz``: 200 while the database answers and the queue moves, else 503
``SERVICE_UNAVAILABLE`` in the envelope, with what was found. (``GET /healthz`` says only that
the process answers.)"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.responses import Response

from mailpass.api.responses import error_response, success_response
from mailpass.clock import utcnow
from mailpass.delivery import workers
from mailpass.delivery.health import queue_health
from mailpass.errors import ServiceUnavailable
from mailpass.services import Services

__all__ = ["READINESS_TIMEOUT", "readiness_answer"]

READINESS_TIMEOUT = 2.0  # seconds the database has to answer before it counts as unreachable
RETRY_READINESS_AFTER = 5  # seconds, in Retry-After

log = logging.getLogger("mailpass.api")


async def readiness_answer(services: Services) -> Response:
    stale_after = workers.stale_after(services.settings.worker_heartbeat_interval)
    try:
        health = await asyncio.wait_for(
            queue_health(services.database, utcnow(), stale_after), READINESS_TIMEOUT
        )
    except Exception as exc:  # unreachable, refused, timed out
        log.debug("readiness: the database did not answer (%r)", exc)
        return error_response(
            ServiceUnavailable(
                "the database cannot be reached",
                retry_after=RETRY_READINESS_AFTER,
                details=[{"database": "unreachable"}],
            )
        )
    found: dict[str, Any] = {
        "database": "ok",
        "workers": health.live_workers,
        "oldest_due_seconds": round(health.oldest_due_seconds, 1),
    }
    if health.stalled:
        return error_response(
            ServiceUnavailable(
                "mail is due and no queue worker is running",
                retry_after=RETRY_READINESS_AFTER,
                details=[found],
            )
        )
    return success_response({"status": "ready", **found})
