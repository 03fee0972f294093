"""Mailgun's webhooks (the JSON ones): ``{"signature": {timestamp, token, signature},
"event-data": {...}}``, the signature the hex HMAC-SHA256 of timestamp and token with the
domain's webhook signing key. A token seen before is a replay and refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from mailpass.core.statuses import EventType
from mailpass.errors import Unauthorized, ValidationError
from mailpass.intake.models import BounceType, Parsed, ProviderEvent, message_id_of, utc_time

__all__ = ["parse_and_verify"]


def parse_and_verify(signing_key: str, body: bytes) -> tuple[Parsed, str]:
    """The payload's event and the time it was signed at, once its signature is checked."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValidationError(
            "the body is not JSON: give Mailgun's webhooks (not its legacy form-encoded ones) "
            "this URL"
        ) from None
    if not isinstance(payload, dict):
        raise ValidationError("the body is not a JSON object")
    signature = payload.get("signature")
    if not isinstance(signature, dict) or not all(
        isinstance(signature.get(name), str) for name in ("timestamp", "token", "signature")
    ):
        raise Unauthorized("the payload is not signed: 'signature' lacks timestamp/token/signature")
    expected = hmac.new(
        signing_key.encode(),
        (signature["timestamp"] + signature["token"]).encode(),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected, signature["signature"].lower()):
        raise Unauthorized("the payload's signature does not match the webhook signing key")

    event_data = payload.get("event-data")
    if not isinstance(event_data, dict) or not isinstance(event_data.get("event"), str):
        raise ValidationError("'event-data' has no 'event'")
    parsed = Parsed(receipt=f"mailgun-token:{signature['token']}", refuse_again=True)
    event = _event(event_data)
    if event is None:
        parsed.ignored = 1
    else:
        parsed.events.append(event)
    return parsed, signature["timestamp"]


def _event(event_data: dict[str, Any]) -> ProviderEvent | None:
    kind = event_data["event"]
    status = event_data.get("delivery-status")
    status = status if isinstance(status, dict) else {}
    reply = " ".join(
        str(part) for part in (status.get("code"), status.get("message")) if part not in (None, "")
    )
    data: dict[str, Any] = {}
    if kind == "delivered":
        event_type = EventType.DELIVERED
        data["smtp_reply"] = reply or None
    elif kind == "failed":
        reason = event_data.get("reason")
        if event_data.get("severity") == "temporary":
            event_type = EventType.DEFERRED
            data["reason"] = reply or status.get("description") or reason
        elif isinstance(reason, str) and reason.startswith("suppress-"):
            # Not tried: the address is on Mailgun's own bounce/complaint/unsubscribe list.
            event_type = EventType.REJECTED
            data["reason"] = status.get("description") or reason
        else:
            event_type = EventType.BOUNCED
            data["bounce_type"] = BounceType.HARD
            data["diagnostic_code"] = reply or status.get("description") or reason
            if status.get("enhanced-code"):
                data["dsn_status"] = status["enhanced-code"]
    elif kind == "complained":
        event_type = EventType.COMPLAINED
    elif kind == "unsubscribed":
        event_type = EventType.UNSUBSCRIBED
    else:
        return None  # accepted, opened, clicked (tracked by MailPass itself), stored, later kinds
    message = event_data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    event_id = event_data.get("id")
    recipient = event_data.get("recipient")
    return ProviderEvent(
        event_type=event_type,
        at=utc_time(event_data.get("timestamp"), "event-data's timestamp"),
        message_id=message_id_of(message_id),
        recipient=recipient if isinstance(recipient, str) else None,
        receipt=f"mailgun:{event_id}" if isinstance(event_id, str) and event_id else None,
        data={name: value for name, value in data.items() if value is not None},
    )
