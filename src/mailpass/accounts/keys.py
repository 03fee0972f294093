"""API keys: their format, their hash and their permissions.

Keys are stored as a SHA-256 digest, not an argon2 hash: a key carries 192 random bits, so a
slow hash buys no protection against guessing, while it would cost milliseconds on every
request. (Passwords, which people choose, get argon2; see ``accounts.passwords``.)
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ALL_PERMISSIONS",
    "LIVE_PREFIX",
    "TEST_PREFIX",
    "ApiKey",
    "display_prefix",
    "generate_key",
    "hash_key",
    "parse_permissions",
]

LIVE_PREFIX = "mp_live_"
TEST_PREFIX = "mp_test_"
KEY_RANDOM_BYTES = 24  # 32 url-safe characters
DISPLAY_PREFIX_LENGTH = 12
ALL_PERMISSIONS = ("mail", "providers", "domains", "keys", "suppressions", "webhooks")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    user_id: int
    name: str
    prefix: str
    permissions: frozenset[str]
    is_test: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def generate_key(*, test: bool = False) -> str:
    return (TEST_PREFIX if test else LIVE_PREFIX) + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]


def looks_like_key(value: str) -> bool:
    return value.startswith((LIVE_PREFIX, TEST_PREFIX)) and len(value) > len(LIVE_PREFIX)


def parse_permissions(values: Iterable[str]) -> frozenset[str]:
    """Validate permission names; raises ``ValueError`` naming the unknown ones."""
    permissions = frozenset(value.strip() for value in values if value.strip())
    unknown = sorted(permissions.difference(ALL_PERMISSIONS))
    if unknown:
        raise ValueError(
            f"unknown permission {', '.join(unknown)}; choose from {', '.join(ALL_PERMISSIONS)}"
        )
    return permissions
