"""The ``Idempotency-Key`` hook of /send and /send-batch (see ``mailpass.idempotency``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from mailpass.accounts.keys import ApiKey
from mailpass.api.outages import as_service_unavailable
from mailpass.api.responses import error_response
from mailpass.errors import ApiError, InternalError
from mailpass.idempotency import (
    REPLAYED_HEADER,
    Claim,
    StoredAnswer,
    claim_key,
    keeps_answer,
    read_idempotency_key,
    release_key,
    request_fingerprint,
    store_answer,
)
from mailpass.storage.database import Database

__all__ = ["respond_idempotently"]

log = logging.getLogger("mailpass.api")


async def respond_idempotently(
    request: Request,
    database: Database,
    api_key: ApiKey,
    body: bytes,
    respond: Callable[[], Awaitable[Response]],
) -> Response:
    """``respond()``, unless the request's ``Idempotency-Key`` already has an answer.

    Without the header this is just ``respond()``.
    """
    key = read_idempotency_key(request.headers)
    if key is None:
        return await respond()
    path = request.url.path
    outcome = await claim_key(
        database,
        user_id=api_key.user_id,
        test=api_key.is_test,
        key=key,
        path=path,
        fingerprint=request_fingerprint(path, body),
    )
    if isinstance(outcome, StoredAnswer):
        return Response(
            outcome.body,
            status_code=outcome.status,
            media_type="application/json",
            headers={REPLAYED_HEADER: "true"},
        )
    try:
        response = await respond()
    except ApiError as error:
        if keeps_answer(error.code):
            await _keep(database, outcome, error.http_status, bytes(error_response(error).body))
        else:
            await release_key(database, outcome)
        raise
    except Exception as exc:
        unavailable = as_service_unavailable(exc, request.app.state.outage_log)
        if unavailable is not None:
            # Nothing was done: the key is let go (if the database allows it by now; if not,
            # its lease runs out) so that a retry with it runs the request.
            with contextlib.suppress(Exception):
                await release_key(database, outcome)
            return error_response(unavailable)
        # Answered here rather than by the app's handler so that the very answer is kept: the
        # failure may have come after the mail left.
        log.exception("unexpected error answering %s %s", request.method, path)
        internal = InternalError("an unexpected error occurred; it has been logged")
        await _keep(database, outcome, internal.http_status, bytes(error_response(internal).body))
        return error_response(internal)
    await _keep(database, outcome, response.status_code, bytes(response.body))
    return response


async def _keep(database: Database, claim: Claim, status: int, body: bytes) -> None:
    """Store an answer; if that fails the client still gets it, and the key's lease runs out."""
    try:
        await store_answer(database, claim, status, body)
    except Exception:
        log.exception("could not store the answer of idempotency key %s", claim.key_pk)
