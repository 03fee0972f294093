"""SendGrid's Event Webhook: a JSON array of events, signed with ECDSA (P-256, SHA-256) over
the timestamp header followed by the body, checked with the account's verification key."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from mailpass.core.statuses import EventType
from mailpass.errors import Unauthorized, ValidationError
from mailpass.intake.models import BounceType, Parsed, ProviderEvent, message_id_of, utc_time

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "parse", "verify"]

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


def verify(public_key: ec.EllipticCurvePublicKey, headers: Mapping[str, str], body: bytes) -> str:
    """The payload's timestamp once its signature is checked; Unauthorized otherwise."""
    signature = headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise Unauthorized(
            "the payload is not signed: turn on Signature Verification for the Event Webhook"
        )
    try:
        public_key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unauthorized("the payload's signature does not match the verification key") from None
    return timestamp


def parse(body: bytes) -> Parsed:
    try:
        items = json.loads(body)
    except ValueError:
        raise ValidationError("the body is not JSON") from None
    if not isinstance(items, list):
        raise ValidationError("the body is not a JSON array of events")
    parsed = Parsed()
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("event"), str):
            raise ValidationError(f"event {index} has no 'event'")
        event = _event(item, index)
        if event is None:
            parsed.ignored += 1
        else:
            parsed.events.append(event)
    return parsed


def _event(item: dict[str, Any], index: int) -> ProviderEvent | None:
    kind = item["event"]
    data: dict[str, Any] = {}
    if kind == "delivered":
        event_type = EventType.DELIVERED
        data["smtp_reply"] = item.get("response")
    elif kind == "deferred":
        event_type = EventType.DEFERRED
        data["reason"] = item.get("response") or item.get("reason")
        if isinstance(item.get("attempt"), str | int) and str(item["attempt"]).isdigit():
            data["attempt"] = int(item["attempt"])
    elif kind == "bounce":
        event_type = EventType.BOUNCED
        # ``type`` "blocked": refused for now (a block, a full mailbox); "bounce": for good.
        data["bounce_type"] = BounceType.SOFT if item.get("type") == "blocked" else BounceType.HARD
        data["dsn_status"] = item.get("status")
        data["diagnostic_code"] = item.get("reason")
        if item.get("bounce_classification"):
            data["classification"] = item["bounce_classification"]
    elif kind == "dropped":
        event_type = EventType.REJECTED
        data["reason"] = item.get("reason")
    elif kind == "spamreport":
        event_type = EventType.COMPLAINED
    elif kind == "unsubscribe":
        event_type = EventType.UNSUBSCRIBED
    else:
        # Not recorded: ``processed`` (nothing new), SendGrid's own ``open`` and ``click``
        # (MailPass tracks those itself), group (un)subscribes, and kinds SendGrid adds later.
        return None
    receipt = item.get("sg_event_id")
    # ``<the id of SendGrid's reply to DATA>.<its filter's and recipient's parts>``
    sg_message_id = item.get("sg_message_id")
    sendgrid_id = sg_message_id.split(".", 1)[0] if isinstance(sg_message_id, str) else None
    return ProviderEvent(
        event_type=event_type,
        at=utc_time(item.get("timestamp"), f"event {index}'s timestamp"),
        message_id=message_id_of(item.get("smtp-id")),
        recipient=item.get("email") if isinstance(item.get("email"), str) else None,
        provider_message_id=sendgrid_id or None,
        receipt=f"sendgrid:{receipt}" if isinstance(receipt, str) and receipt else None,
        data={name: value for name, value in data.items() if value is not None},
    )
