"""The JSON body of each webhook, fixed when its event is written: ``{"type":
"email.<event>", "created_at", "data": {"message_id", "event_type", ...the event's fields}}``,
times in the seed's format (UTC, no offset), as ``GET /status`` gives them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mailpass.clock import isoformat
from mailpass.core.events import TIME_FIELDS

__all__ = ["TYPE_PREFIX", "event_payload", "webhook_body"]

TYPE_PREFIX = "email."


def event_payload(
    event_type: str, at: datetime, message_id: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """The event as the outbox keeps it: ``event_type`` at ``at`` about ``message_id``."""
    fields: dict[str, Any] = {"message_id": message_id, "event_type": event_type}
    for name, value in data.items():
        fields[name] = (
            isoformat(value) if name in TIME_FIELDS and isinstance(value, datetime) else value
        )
    return {"type": TYPE_PREFIX + event_type, "created_at": isoformat(at), "data": fields}


def webhook_body(payload: str, message: dict[str, Any]) -> bytes:
    """The bytes POSTed: the event as written, its ``data`` completed with the message's
    ``queue_id``, ``to``, ``subject``, ``tags`` and ``metadata``, which never change, so that
    every attempt sends the very same bytes."""
    if not message:
        return payload.encode()
    event = json.loads(payload)
    event["data"] = {**event["data"], **message}
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
