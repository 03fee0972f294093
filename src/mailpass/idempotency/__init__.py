"""``Idempotency-Key`` for /send and /send-batch: a retried request is answered, never run twice.

``keys`` reads the header and fingerprints a request, ``repository`` holds the queries, and
``service`` claims a key, stores the answer and replays it.
"""

from mailpass.idempotency.keys import (
    IDEMPOTENCY_HEADER,
    KEY_LIFETIME,
    MAX_KEY_CHARS,
    REPLAYED_HEADER,
    read_idempotency_key,
    request_fingerprint,
)
from mailpass.idempotency.service import (
    IN_PROGRESS_LEASE,
    RETRY_IN_PROGRESS_AFTER,
    Claim,
    StoredAnswer,
    claim_key,
    keeps_answer,
    release_key,
    store_answer,
)

__all__ = [
    "IDEMPOTENCY_HEADER",
    "IN_PROGRESS_LEASE",
    "KEY_LIFETIME",
    "MAX_KEY_CHARS",
    "REPLAYED_HEADER",
    "RETRY_IN_PROGRESS_AFTER",
    "Claim",
    "StoredAnswer",
    "claim_key",
    "keeps_answer",
    "read_idempotency_key",
    "release_key",
    "request_fingerprint",
    "store_answer",
]
