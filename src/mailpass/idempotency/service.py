"""Claiming an idempotency key, keeping the answer of its request, and replaying it.

A request with a key first *claims* it in a short transaction of its own: a new key is recorded
as in progress (with a lease), a key with a stored answer is replayed, a key still held by a
running request is ``IDEMPOTENCY_IN_PROGRESS``, and a key first used for another request is
``IDEMPOTENCY_CONFLICT``. When the request has answered, its answer is stored (or, for answers
that say nothing happened, the key is let go so a retry runs anew).

A process killed while it holds a key cannot store anything: its lease runs out after
``IN_PROGRESS_LEASE`` and the next request with the key runs again.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailpass.clock import utcnow
from mailpass.errors import IdempotencyConflict, IdempotencyInProgress
from mailpass.idempotency import repository
from mailpass.idempotency.keys import IDEMPOTENCY_HEADER, KEY_LIFETIME
from mailpass.storage.database import Database

__all__ = [
    "IN_PROGRESS_LEASE",
    "RETRY_IN_PROGRESS_AFTER",
    "Claim",
    "StoredAnswer",
    "claim_key",
    "keeps_answer",
    "release_key",
    "store_answer",
]

log = logging.getLogger("mailpass.idempotency")

# Longer than any /send can take (a few SMTP commands of MAILPASS_SMTP_TIMEOUT each), so that a
# request still talking to its provider is never taken over; short enough that a key whose
# server died is usable again within minutes.
IN_PROGRESS_LEASE = timedelta(minutes=5)
RETRY_IN_PROGRESS_AFTER = 1  # seconds, the Retry-After of IDEMPOTENCY_IN_PROGRESS
CLAIM_TOKEN_BYTES = 16  # 32 hex characters
# Error answers after which a retry may run again: they say for certain that nothing was sent or
# queued, and a retry can succeed once the account has changed (a provider added, a slot freed).
# Every other answer (success, SEND_FAILED, INTERNAL_ERROR) is kept: after it the mail may have
# left, so running the request again could send it twice.
RELEASING_ERROR_CODES = frozenset(
    {"VALIDATION_ERROR", "NO_SMTP_PROVIDER", "SEND_LIMIT_EXCEEDED", "SERVICE_UNAVAILABLE"}
)


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key until it stores its answer or lets the key go."""

    key_pk: int
    token: str


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer of the first request with this key, to be replayed."""

    status: int
    body: bytes


def keeps_answer(error_code: str | None) -> bool:
    """Whether an answer (None: a success) is stored for the key's retries."""
    return error_code not in RELEASING_ERROR_CODES


async def claim_key(
    database: Database,
    *,
    user_id: int,
    test: bool,
    key: str,
    path: str,
    fingerprint: str,
    now: datetime | None = None,
) -> Claim | StoredAnswer:
    """Claim ``key`` for a request, or return the answer already stored for it.

    Keys are the account's, and those used with test API keys are apart from the others: a
    live request must never be answered with a test request's (captured, unsent) answer.

    Raises ``IdempotencyConflict`` when the key was first used for another request and
    ``IdempotencyInProgress`` while the first request with it is still running.
    """
    now = now or utcnow()
    token = secrets.token_hex(CLAIM_TOKEN_BYTES)
    async with database.transaction() as connection:
        await repository.delete_expired_keys(connection, user_id, now)
        key_pk = await repository.insert_key(
            connection,
            {
                "user_id": user_id,
                "is_test": test,
                "idempotency_key": key,
                "request_path": path,
                "request_hash": fingerprint,
                "claim_token": token,
                "locked_until": now + IN_PROGRESS_LEASE,
                "created_at": now,
                "expires_at": now + KEY_LIFETIME,
            },
        )
        if key_pk is not None:
            return Claim(key_pk, token)
        existing = await repository.find_key(connection, user_id, test, key)
        if existing is None:
            # Expired and deleted by a concurrent request between our insert and our look:
            # that request now owns the key.
            raise _in_progress()
        if existing["request_hash"] != fingerprint:
            raise IdempotencyConflict(
                f"this {IDEMPOTENCY_HEADER} was already used for a different request "
                f"(POST {existing['request_path']}); use a new key for a new request",
                details=[{"field": IDEMPOTENCY_HEADER, "message": "used for a different request"}],
            )
        if existing["claim_token"] is None:
            return StoredAnswer(existing["response_status"], existing["response_body"])
        if existing["locked_until"] > now:
            raise _in_progress()
        log.warning(
            "idempotency key %s of account %s: its request never answered; running it again",
            existing["id"],
            user_id,
        )
        await repository.take_over_key(connection, existing["id"], token, now + IN_PROGRESS_LEASE)
        return Claim(existing["id"], token)


async def store_answer(database: Database, claim: Claim, status: int, body: bytes) -> None:
    async with database.transaction() as connection:
        stored = await repository.store_response(
            connection, claim.key_pk, claim.token, status, body
        )
    if not stored:
        log.warning("idempotency key %s was taken over before its answer was stored", claim.key_pk)


async def release_key(database: Database, claim: Claim) -> None:
    async with database.transaction() as connection:
        await repository.delete_key(connection, claim.key_pk, claim.token)


def _in_progress() -> IdempotencyInProgress:
    return IdempotencyInProgress(
        f"a request with this {IDEMPOTENCY_HEADER} is still running; retry in a moment to get "
        "its answer",
        headers={"Retry-After": str(RETRY_IN_PROGRESS_AFTER)},
    )
