"""Amazon SES's events come through Amazon SNS: an HTTPS POST of an SNS message, signed by
SNS with the key of a certificate it names by URL (SignatureVersion 1: RSA with SHA-1, 2: RSA
with SHA-256). The certificate is fetched only over HTTPS from SNS's own hosts and kept; a
subscription is confirmed by fetching its SubscribeURL, from the same hosts only."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import ssl
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mailpass.config import Settings
from mailpass.errors import ServiceUnavailable, Unauthorized, ValidationError

__all__ = ["SnsMessage", "SnsVerifier"]

log = logging.getLogger("mailpass.intake")

# The fields each type of message signs, in this order (SNS's documentation).
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED_FIELDS["UnsubscribeConfirmation"] = _SIGNED_FIELDS["SubscriptionConfirmation"]
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_CACHED_CERTIFICATES = 32


SnsMessage = dict[str, Any]


def _canonical(message: SnsMessage) -> bytes:
    """The text SNS signs: each signed field present, as ``name\\nvalue\\n``."""
    lines = []
    for name in _SIGNED_FIELDS[message["Type"]]:
        value = message.get(name)
        if value is None and name == "Subject":
            continue  # a notification without a subject signs without it
        if not isinstance(value, str):
            raise Unauthorized(f"the SNS message lacks its signed field {name}")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode()


class SnsVerifier:
    """Checks SNS messages and confirms subscriptions; one per process (it keeps the
    certificates it fetched, and one HTTP client)."""

    def __init__(self, settings: Settings) -> None:
        self._hosts = re.compile(settings.sns_host_pattern)
        context = ssl.create_default_context(cafile=certifi.where())
        if settings.https_ca_file is not None:
            context.load_verify_locations(cafile=str(settings.https_ca_file))
        self._http = httpx.AsyncClient(verify=context, timeout=10.0, follow_redirects=False)
        self._certificates: dict[str, rsa.RSAPublicKey] = {}

    async def close(self) -> None:
        await self._http.aclose()

    def read(self, body: bytes) -> SnsMessage:
        try:
            message = json.loads(body)
        except ValueError:
            raise ValidationError("the body is not an SNS message (not JSON)") from None
        if not isinstance(message, dict) or message.get("Type") not in _SIGNED_FIELDS:
            raise ValidationError("the body is not an SNS message (no known 'Type')")
        return message

    async def verify(self, message: SnsMessage) -> None:
        """Unauthorized unless SNS signed ``message`` with a certificate from its own hosts."""
        algorithm = _HASHES.get(str(message.get("SignatureVersion")))
        if algorithm is None:
            raise Unauthorized("the SNS message's SignatureVersion is neither 1 nor 2")
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except binascii.Error:
            raise Unauthorized("the SNS message's Signature is not base64") from None
        public_key = await self._certificate(str(message.get("SigningCertURL", "")))
        try:
            public_key.verify(signature, _canonical(message), padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise Unauthorized("the SNS message's signature does not match") from None

    async def confirm(self, message: SnsMessage) -> None:
        """Confirm the subscription that ``message`` (checked) asks for."""
        url = self._sns_url(str(message.get("SubscribeURL", "")), "SubscribeURL")
        try:
            answer = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"SNS could not be reached to confirm: {exc}", retry_after=30
            ) from None
        if answer.status_code != 200:
            raise ServiceUnavailable(
                f"SNS answered {answer.status_code} to the confirmation", retry_after=30
            )
        log.info("confirmed the SNS subscription to %s", message.get("TopicArn"))

    def _sns_url(self, url: str, what: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "https" or not self._hosts.fullmatch(parts.hostname or ""):
            raise Unauthorized(f"the SNS message's {what} is not an https URL of SNS: {url!r}")
        return url

    async def _certificate(self, url: str) -> rsa.RSAPublicKey:
        cached = self._certificates.get(url)
        if cached is not None:
            return cached
        self._sns_url(url, "SigningCertURL")
        if not urlsplit(url).path.endswith(".pem"):
            raise Unauthorized(f"the SNS message's SigningCertURL is not a .pem: {url!r}")
        try:
            answer = await self._http.get(url)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"SNS's signing certificate could not be fetched: {exc}", retry_after=30
            ) from None
        try:
            public_key = x509.load_pem_x509_certificate(answer.content).public_key()
        except ValueError:
            raise Unauthorized(f"{url} holds no PEM certificate") from None
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise Unauthorized(f"the certificate at {url} has no RSA key")
        if len(self._certificates) >= _CACHED_CERTIFICATES:
            self._certificates.pop(next(iter(self._certificates)))
        self._certificates[url] = public_key
        return public_key
