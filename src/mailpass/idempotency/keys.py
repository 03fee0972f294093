"""The ``Idempotency-Key`` header and what makes two requests "the same request"."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import timedelta

import orjson

from mailpass.errors import ValidationError

__all__ = [
    "IDEMPOTENCY_HEADER",
    "KEY_LIFETIME",
    "MAX_KEY_CHARS",
    "REPLAYED_HEADER",
    "read_idempotency_key",
    "request_fingerprint",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"  # "true" on an answer replayed from an earlier request
MAX_KEY_CHARS = 256
KEY_LIFETIME = timedelta(hours=24)  # after that the key is forgotten and may be used anew

# Printable ASCII and spaces: what a header can carry unambiguously through every proxy.
_KEY_PATTERN = re.compile(r"[\x20-\x7e]+")


def read_idempotency_key(headers: Mapping[str, str]) -> str | None:
    """The request's key, or None without the header; a malformed key is a VALIDATION_ERROR."""
    key = headers.get(IDEMPOTENCY_HEADER.lower())
    if key is None:
        return None
    problem = None
    if not key.strip():
        problem = "must not be empty"
    elif len(key) > MAX_KEY_CHARS:
        problem = f"is longer than {MAX_KEY_CHARS} characters"
    elif not _KEY_PATTERN.fullmatch(key):
        problem = "may only hold printable ASCII characters"
    if problem is not None:
        raise ValidationError(
            f"the {IDEMPOTENCY_HEADER} header {problem}",
            details=[{"field": IDEMPOTENCY_HEADER, "message": problem}],
        )
    return key


def request_fingerprint(path: str, body: bytes) -> str:
    """SHA-256 of the path and the body, the body as canonical JSON when it is JSON.

    Two clients that serialise the same object with another key order or other whitespace send
    the same request; anything that is not JSON is compared byte for byte.
    """
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except (ValueError, TypeError):  # not JSON, or JSON orjson cannot hold (huge integers)
        canonical = body
    return hashlib.sha256(path.encode() + b"\n" + canonical).hexdigest()
