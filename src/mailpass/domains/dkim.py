"""DKIM (RFC 6376): keys, the record that publishes one, and signatures, relaxed/relaxed.

Signing is written here over ``cryptography`` rather than taken from dkimpy: dkimpy signs RSA
with its own pure-Python arithmetic, tens of milliseconds a message, which would cap direct
delivery far below what the queue drains; ``cryptography`` signs in OpenSSL in about a
millisecond (RSA-2048) or a few microseconds (Ed25519). The tests check every signature made
here with dkimpy's verifier, against the record the DNS serves.

- ``generate_key``: a new key pair, RSA-2048 or Ed25519 (RFC 8463).
- ``record_value``: the TXT record at ``<selector>._domainkey.<domain>``.
- ``DkimSigner.sign``: the ``DKIM-Signature`` field to put at the top of a message.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

__all__ = [
    "ALGORITHMS",
    "SIGNED_FIELDS",
    "DkimAlgorithm",
    "DkimSigner",
    "canonical_body",
    "generate_key",
    "record_value",
]

DkimAlgorithm = Literal["rsa", "ed25519"]
ALGORITHMS: tuple[DkimAlgorithm, ...] = ("rsa", "ed25519")
RSA_BITS = 2048  # RFC 8301: at least 1024 to be verified, 2048 recommended
RSA_PUBLIC_EXPONENT = 65537
SIGNATURE_NAMES = {"rsa": b"rsa-sha256", "ed25519": b"ed25519-sha256"}

# The fields signed when present: RFC 6376 5.4.1's list, with the MIME fields that make the
# body readable and the one-click unsubscribe (RFC 8058 3 asks that it be signed).
SIGNED_FIELDS = (
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "message-id",
    "in-reply-to",
    "references",
    "resent-date",
    "resent-from",
    "resent-to",
    "resent-cc",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
)
# Named once more than they occur (RFC 6376 8.15): a second From, Subject … added on the way
# breaks the signature instead of being shown to the reader under it.
OVERSIGNED = frozenset(
    {"from", "reply-to", "subject", "date", "to", "cc", "message-id", "list-unsubscribe"}
)
WHITESPACE_RUN = re.compile(rb"[ \t]+")
FOLD_WIDTH = 72  # characters of the signature's lines, as mail readers show them


def generate_key(algorithm: DkimAlgorithm) -> tuple[str, str]:
    """A new key pair: the private key in PEM (PKCS#8), and the public key as the record's
    ``p=`` gives it."""
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "rsa":
        private = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_BITS)
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif algorithm == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
        # RFC 8463 4: the bare 32 bytes of the key, not wrapped in a SubjectPublicKeyInfo.
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, not {algorithm!r}")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode("ascii"), base64.b64encode(public).decode("ascii")


def record_value(algorithm: DkimAlgorithm, public_key: str) -> str:
    """The TXT record that publishes a key."""
    kind = "rsa" if algorithm == "rsa" else "ed25519"
    return f"v=DKIM1; k={kind}; p={public_key}"


def canonical_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4 (relaxed) of a body whose lines end in CRLF: runs of whitespace become
    one space, whitespace at line ends goes, and so do empty lines at the end."""
    body = WHITESPACE_RUN.sub(b" ", body).replace(b" \r\n", b"\r\n")
    body = body.rstrip(b"\r\n ")
    return body + b"\r\n" if body else b""


def canonical_field(field: bytes) -> bytes:
    """RFC 6376 3.4.2 (relaxed) of one header field, folded lines and all."""
    name, _, value = field.partition(b":")
    value = WHITESPACE_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.strip(b" \t").lower() + b":" + value + b"\r\n"


def header_fields(header: bytes) -> list[bytes]:
    """The fields of a header block (lines ending in CRLF), each with its continuation lines."""
    fields: list[bytes] = []
    for line in header.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif line:
            fields.append(line)
    return fields


@dataclass(frozen=True, slots=True)
class DkimSigner:
    """Signs for ``domain`` with the key published at ``selector``."""

    domain: str
    selector: str
    algorithm: DkimAlgorithm
    private_key_pem: str

    def _key(self) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
        key = _load_key(self.private_key_pem)
        if self.algorithm == "rsa" and not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the key is not an RSA key")
        if self.algorithm == "ed25519" and not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError("the key is not an Ed25519 key")
        return key

    def sign(self, message: bytes, *, now: float | None = None) -> bytes:
        """The ``DKIM-Signature`` field (ending in CRLF) for ``message``, whose lines end in
        CRLF, to be put before its first field."""
        split = message.find(b"\r\n\r\n")
        header, body = (message, b"") if split < 0 else (message[: split + 2], message[split + 4 :])
        fields = header_fields(header)
        by_name: dict[bytes, list[bytes]] = {}
        for field in fields:
            by_name.setdefault(field.partition(b":")[0].strip(b" \t").lower(), []).append(field)

        names: list[str] = []
        hashed = bytearray()
        for name in SIGNED_FIELDS:
            present = by_name.get(name.encode(), [])
            # RFC 6376 5.4.2: several of one name are signed from the last one up.
            for field in reversed(present):
                names.append(name)
                hashed += canonical_field(field)
            if present and name in OVERSIGNED:
                names.append(name)
        if "from" not in names:
            raise ValueError("a message without a From field cannot be signed")

        body_hash = base64.b64encode(hashlib.sha256(canonical_body(body)).digest())
        timestamp = int(time.time() if now is None else now)
        signature_field = (
            b"DKIM-Signature: v=1; a="
            + SIGNATURE_NAMES[self.algorithm]
            + b"; c=relaxed/relaxed; d="
            + self.domain.encode("ascii")
            + b"; s="
            + self.selector.encode("ascii")
            + b";\r\n\tt=%d; h=" % timestamp
            + _folded_names(names)
            + b";\r\n\tbh="
            + body_hash
            + b";\r\n\tb="
        )
        hashed += canonical_field(signature_field)[:-2]  # RFC 6376 3.7: without its CRLF
        key = self._key()
        if isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(bytes(hashed), padding.PKCS1v15(), hashes.SHA256())
        else:
            # RFC 8463 3: Ed25519 signs the SHA-256 digest of what RSA would sign.
            signature = key.sign(hashlib.sha256(hashed).digest())
        encoded = base64.b64encode(signature)
        folded = b"\r\n\t ".join(
            encoded[start : start + FOLD_WIDTH] for start in range(0, len(encoded), FOLD_WIDTH)
        )
        return signature_field + folded + b"\r\n"


def _folded_names(names: list[str]) -> bytes:
    """``h=``'s list, folded before a colon wherever a line would grow past the width."""
    lines: list[str] = []
    line = ""
    for name in names:
        piece = name if not line else ":" + name
        if line and len(line) + len(piece) > FOLD_WIDTH - 10:
            lines.append(line)
            line = piece
        else:
            line += piece
    lines.append(line)
    return "\r\n\t".join(lines).encode("ascii")


_KEYS: dict[str, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey] = {}


def _load_key(pem: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """The parsed key, kept per PEM: parsing an RSA key (its checks) costs more than signing."""
    key = _KEYS.get(pem)
    if key is None:
        loaded = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise ValueError("a DKIM key is RSA or Ed25519")
        key = _KEYS[pem] = loaded
    return key
