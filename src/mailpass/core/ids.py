"""Message-IDs in the seed's shape: ``<random.unixtime@domain>``."""

from __future__ import annotations

import re
import secrets
import time
from urllib.parse import unquote

__all__ = ["new_message_id", "normalize_message_id", "provider_message_id"]

RANDOM_PART_BYTES = 10  # 20 hex characters
# The random part starts with the time in milliseconds, in hex, so that ids made one after the
# other sort together. Each message row is found by its id through a unique index: with ids
# in random order, every new row landed on a different page of that index, and a commit of
# 100 rows wrote 100 of those pages (1.6 MiB of SQLite's WAL instead of 0.6, and twice the
# time). Eleven digits hold milliseconds until the year 2527, so the ids also sort as text.
TIME_PART_DIGITS = 11
# The provider's own id for a mail in its answer to DATA: Amazon SES's ``250 Ok <id>``, and the
# ``queued as <id>`` of SendGrid and of Postfix-like servers. Their events name the mail by it
# (SES even replaces the mail's Message-ID with one of its own).
_REPLY_ID = re.compile(r"^250[ -](?:\d\.\d\.\d+ )?Ok(?::? queued as|) (\S{1,200})\s*$", re.I)


def new_message_id(domain: str) -> str:
    now = time.time()
    return (
        f"<{int(now * 1000):0{TIME_PART_DIGITS}x}{secrets.token_hex(RANDOM_PART_BYTES)}"
        f".{int(now)}@{domain}>"
    )


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


def provider_message_id(reply: str | None) -> str | None:
    """The provider's own id for the mail it took with ``reply``; None when it gave none."""
    if not reply:
        return None
    found = _REPLY_ID.match(reply)
    return found.group(1) if found else None
