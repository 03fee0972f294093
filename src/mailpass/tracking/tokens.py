"""Tracking tokens: short, URL-safe, signed with a key derived from the instance secret.

A token names a message by its random ``tracking_id`` (never by a guessable number) and, for a
click, the position of a link in that message's list of tracked links. The link's URL itself is
never in the token: it is kept with the message, so a click can only ever lead to a URL that was
in that message, whatever the token or the query string says.

Layout before base64url (no padding)::

    kind (1 byte) | tracking id (12 bytes) | [link index (2 bytes, clicks only)] | MAC (12 bytes)

The MAC is HMAC-SHA256 over everything before it, cut to 96 bits: forging one takes about 2**96
guesses against a live server. The kind byte is signed too, so an open token is no click token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mailpass.core.statuses import EventType

__all__ = [
    "MAX_LINK_INDEX",
    "TokenSigner",
    "TrackingToken",
    "new_tracking_id",
]

TRACKING_ID_BYTES = 12  # 96 random bits: no collision in any realistic number of messages
MAC_BYTES = 12
LINK_INDEX_BYTES = 2
MAX_LINK_INDEX = 2 ** (8 * LINK_INDEX_BYTES) - 1

_OPEN = 0x01
_CLICK = 0x02
_OPEN_LENGTH = 1 + TRACKING_ID_BYTES + MAC_BYTES
_CLICK_LENGTH = 1 + TRACKING_ID_BYTES + LINK_INDEX_BYTES + MAC_BYTES
# Longest token text worth decoding: base64 of the longest layout. Anything longer is refused
# before any work is done.
_MAX_TOKEN_CHARS = (_CLICK_LENGTH * 4 + 2) // 3

TokenKind = Literal[EventType.OPEN, EventType.CLICK]


def new_tracking_id() -> str:
    """A message's tracking id, as stored in ``messages.tracking_id`` (16 URL-safe characters)."""
    return _encode(secrets.token_bytes(TRACKING_ID_BYTES))


@dataclass(frozen=True, slots=True)
class TrackingToken:
    kind: TokenKind
    tracking_id: str
    link_index: int | None = None


class TokenSigner:
    """Makes and checks tracking tokens. Checking is pure computation: no database involved."""

    def __init__(self, instance_secret: str) -> None:
        # A dedicated key: the instance secret's other uses (provider passwords) never share key
        # material with these tokens.
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"mailpass tracking tokens v1"
        ).derive(instance_secret.encode())

    def open_token(self, tracking_id: str) -> str:
        return self._sign(bytes([_OPEN]) + _decode_id(tracking_id))

    def click_token(self, tracking_id: str, link_index: int) -> str:
        if not 0 <= link_index <= MAX_LINK_INDEX:
            raise ValueError(f"a link index is 0 to {MAX_LINK_INDEX}, not {link_index}")
        return self._sign(
            bytes([_CLICK]) + _decode_id(tracking_id) + link_index.to_bytes(LINK_INDEX_BYTES, "big")
        )

    def verify(self, token: str) -> TrackingToken | None:
        """The token's content, or None when it is malformed, altered or not signed by us."""
        if len(token) > _MAX_TOKEN_CHARS:
            return None
        raw = _strict_decode(token)
        if raw is None or len(raw) not in (_OPEN_LENGTH, _CLICK_LENGTH):
            return None
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if not hmac.compare_digest(self._mac(payload), mac):
            return None
        kind = payload[0]
        tracking_id = _encode(payload[1 : 1 + TRACKING_ID_BYTES])
        if kind == _OPEN and len(raw) == _OPEN_LENGTH:
            return TrackingToken(EventType.OPEN, tracking_id)
        if kind == _CLICK and len(raw) == _CLICK_LENGTH:
            index = int.from_bytes(payload[1 + TRACKING_ID_BYTES :], "big")
            return TrackingToken(EventType.CLICK, tracking_id, index)
        return None

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:MAC_BYTES]

    def _sign(self, payload: bytes) -> str:
        return _encode(payload + self._mac(payload))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_id(tracking_id: str) -> bytes:
    raw = _strict_decode(tracking_id)
    if raw is None or len(raw) != TRACKING_ID_BYTES:
        raise ValueError(f"not a tracking id: {tracking_id!r}")
    return raw


def _strict_decode(text: str) -> bytes | None:
    """base64url without padding, accepting only the one canonical spelling of each value.

    A lenient decoder ignores the unused low bits of the last character, so several texts would
    decode to the same token: an altered token must not still count as valid.
    """
    if not text.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if _encode(raw) != text:
        return None
    return raw
