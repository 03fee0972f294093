"""Message-IDs in the seed's shape: ``<random.unixtime@domain>``."""

from __future__ import annotations

import secrets
import time
from urllib.parse import unquote

__all__ = ["new_message_id", "normalize_message_id"]

RANDOM_PART_BYTES = 10  # 20 hex characters


def new_message_id(domain: str) -> str:
    return f"<{secrets.token_hex(RANDOM_PART_BYTES)}.{int(time.time())}@{domain}>"


def normalize_message_id(raw: str) -> str:
    """Accept an id with or without its angle brackets, URL-encoded (even twice) or not."""
    value = raw.strip()
    for _ in range(2):
        if "%" not in value:
            break
        value = unquote(value).strip()
    if not value.startswith("<"):
        value = "<" + value
    if not value.endswith(">"):
        value = value + ">"
    return value
