"""Checking a MailPass webhook where it arrives: ``mailpass.webhooks.verify(payload, headers,
secret)``. MailPass signs each delivery the Standard Webhooks way: ``webhook-signature`` holds
``v1,<base64 HMAC-SHA256>`` of ``{webhook-id}.{webhook-timestamp}.{body}`` keyed with the
endpoint's secret (``whsec_`` and base64), and a delivery older or newer than five minutes is
refused, so that a captured one cannot be replayed later."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["TOLERANCE_SECONDS", "WebhookVerificationError", "verify"]

TOLERANCE_SECONDS = 5 * 60
_PREFIX = "whsec_"


class WebhookVerificationError(Exception):
    """The delivery is not MailPass's, was altered, or is too old; the message says which."""


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """The delivery's JSON once its signature is checked; raises WebhookVerificationError.

    ``payload`` is the request's body exactly as received (before any JSON parsing), and
    ``headers`` its headers (any mapping; names in any case).
    """
    body = payload.encode() if isinstance(payload, str) else payload
    lowered = {name.lower(): value for name, value in headers.items()}
    webhook_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not webhook_id or not timestamp or not signatures:
        raise WebhookVerificationError(
            "missing webhook-id, webhook-timestamp or webhook-signature header"
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a whole number") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("webhook-timestamp is more than 5 minutes away from now")
    try:
        key = base64.b64decode(secret.removeprefix(_PREFIX), validate=True)
    except binascii.Error:
        raise WebhookVerificationError("the secret is not a whsec_ secret") from None
    expected = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        try:
            given = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue
        if version == "v1" and hmac.compare_digest(given, expected):
            try:
                parsed: dict[str, Any] = json.loads(body)
            except ValueError:
                raise WebhookVerificationError("the body is not JSON") from None
            return parsed
    raise WebhookVerificationError("no signature matches the secret")
