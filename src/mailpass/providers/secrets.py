"""Provider passwords encrypted at rest with a key derived from the instance secret."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["SecretBox", "SecretUnreadable"]


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted: the instance secret changed since it was saved."""


class SecretBox:
    def __init__(self, instance_secret: str) -> None:
        # A dedicated key per purpose, so the instance secret's other uses (signed tracking
        # tokens, session cookies) never share key material with stored passwords.
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"mailpass provider secrets v1"
        ).derive(instance_secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable(
                "a provider password cannot be decrypted: was MAILPASS_SECRET_KEY changed?"
            ) from exc
