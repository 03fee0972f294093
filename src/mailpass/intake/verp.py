"""VERP return paths: the envelope sender of each message sent through a plain SMTP provider,
when ``MAILPASS_BOUNCE_DOMAIN`` is set, is ``bounces+<token>@<that domain>``, the token naming
the message and signed, so that a bounce mailed back to it says which message bounced, and
cannot be made up for another one.

The token is the message's primary key in base 36 and 10 characters of an HMAC-SHA256 of it
(base 32, lower case: local parts travel in any case), e.g. ``bounces+2n9c-k3v0q8z2ma``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["ReturnPaths"]

PREFIX = "bounces+"
MAC_CHARS = 10  # 50 bits: guessing one takes 2**49 tries on average, each a mail to us
_TOKEN = re.compile(r"^bounces\+([0-9a-z]{1,13})-([a-z2-7]{10})$")


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if number == 0:
            return text


class ReturnPaths:
    """Makes the return path of a message and reads the message back out of one."""

    def __init__(self, instance_secret: str, domain: str | None) -> None:
        self.domain = domain.strip().lower().rstrip(".") if domain else None
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"mailpass return paths v1"
        ).derive(instance_secret.encode())

    def _mac(self, pk_text: str) -> str:
        digest = hmac.new(self._key, pk_text.encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode().lower()[:MAC_CHARS]

    def for_message(self, message_pk: int) -> str | None:
        """The message's return path; None when no bounce domain is set."""
        if self.domain is None:
            return None
        pk_text = _base36(message_pk)
        return f"{PREFIX}{pk_text}-{self._mac(pk_text)}@{self.domain}"

    def envelope_sender(self, provider_kind: str, message_pk: int, sender: str) -> str:
        """What a message goes out with as MAIL FROM: its return path through a plain SMTP
        provider, its sender otherwise (Amazon SES, SendGrid and Mailgun take only senders of
        their own as MAIL FROM, and report bounces by webhook)."""
        if provider_kind != "smtp":
            return sender
        return self.for_message(message_pk) or sender

    def is_ours(self, address: str) -> bool:
        """An address at the bounce domain (a return path or not)."""
        _, _, domain = address.rpartition("@")
        return self.domain is not None and domain.lower().rstrip(".") == self.domain

    def message_of(self, address: str) -> int | None:
        """The message a return path names; None for any other address or a bad signature."""
        if not self.is_ours(address):
            return None
        local = address.rpartition("@")[0].lower()
        found = _TOKEN.match(local)
        if found is None or not hmac.compare_digest(self._mac(found[1]), found[2]):
            return None
        return int(found[1], 36)
