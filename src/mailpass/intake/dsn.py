"""Bounces and complaints that come back by mail: RFC 3464 delivery status notifications
(``multipart/report; report-type=delivery-status``) and RFC 5965 abuse reports (ARF,
``report-type=feedback-report``), read into the events they report.

What else arrives (an auto-reply, spam, a DSN too broken to read) is not a report: ``None``.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from mailpass.core.ids import normalize_message_id
from mailpass.core.statuses import EventType
from mailpass.intake.models import BounceType

__all__ = ["Report", "ReportedEvent", "read_report"]

_HEADERS = email.parser.HeaderParser(policy=email.policy.compat32)


@dataclass(frozen=True, slots=True)
class ReportedEvent:
    event_type: EventType
    recipient: str | None
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Report:
    """A report's events, and the Message-ID of the mail it is about when it quotes it."""

    kind: str  # "dsn" or "arf"
    events: list[ReportedEvent]
    message_id: str | None
    own_id: str | None  # the report's own Message-ID


def read_report(raw: bytes) -> Report | None:
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    if message.get_content_type() != "multipart/report":
        return None
    report_type = str(message.get_param("report-type", "")).lower()
    own_id = _message_id(message.get("Message-ID"))
    if report_type == "delivery-status":
        events = _delivery_status(message)
        kind = "dsn"
    elif report_type == "feedback-report":
        events = _feedback(message)
        kind = "arf"
    else:
        return None
    if not events:
        return None
    return Report(kind, events, _original_message_id(message), own_id)


def _message_id(value: object) -> str | None:
    text = str(value or "").strip()
    return normalize_message_id(text) if text and len(text) <= 250 else None


def _fields(message: EmailMessage, content_types: tuple[str, ...]) -> list[Message]:
    """The header blocks of the report's machine-readable part: for a DSN, the per-message
    block then one per recipient."""
    for part in message.walk():
        if part.get_content_type() not in content_types:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            return [block for block in payload if isinstance(block, Message)]
        # Some senders mislabel it, or the parser kept it as text: blocks between blank lines.
        chunks = _text(part).replace("\r\n", "\n").split("\n\n")
        return [_HEADERS.parsestr(chunk) for chunk in chunks if chunk.strip()]
    return []


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _address(value: object) -> str | None:
    """``rfc822; user@example.com`` as ``user@example.com``."""
    text = str(value or "").strip()
    if ";" in text:
        text = text.split(";", 1)[1].strip()
    text = text.strip("<>").strip()
    return text if "@" in text and len(text) <= 320 else None


def _delivery_status(message: EmailMessage) -> list[ReportedEvent]:
    blocks = _fields(message, ("message/delivery-status", "message/global-delivery-status"))
    events = []
    for block in blocks[1:]:
        recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        action = str(block.get("Action", "")).strip().lower()
        status = str(block.get("Status", "")).strip().split(" ")[0]
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        data = {"dsn_status": status, "diagnostic_code": diagnostic}
        if action == "failed":
            # Given up: for good when the status is permanent (5.x.x), for now otherwise.
            bounce = BounceType.HARD if status.startswith("5") else BounceType.SOFT
            event = ReportedEvent(EventType.BOUNCED, recipient, {"bounce_type": bounce, **data})
        elif action == "delayed":
            event = ReportedEvent(
                EventType.DEFERRED, recipient, {"reason": diagnostic, "dsn_status": status}
            )
        elif action in ("delivered", "relayed", "expanded"):
            event = ReportedEvent(EventType.DELIVERED, recipient, {"smtp_reply": diagnostic})
        else:
            continue
        events.append(
            ReportedEvent(event.event_type, recipient, {k: v for k, v in event.data.items() if v})
        )
    return events


def _feedback(message: EmailMessage) -> list[ReportedEvent]:
    blocks = _fields(message, ("message/feedback-report",))
    if not blocks:
        return []
    report = blocks[0]
    # Only Original-Rcpt-To says who complained: many abuse desks redact it, and the quoted
    # mail's To may be anyone's (or redacted too).
    recipient = _address(report.get("Original-Rcpt-To"))
    feedback_type = str(report.get("Feedback-Type", "abuse")).strip().lower() or "abuse"
    return [ReportedEvent(EventType.COMPLAINED, recipient, {"feedback_type": feedback_type})]


def _original_headers(message: EmailMessage) -> Message:
    """The headers of the mail the report is about, when it quotes them."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        elif content_type == "text/rfc822-headers":
            return _HEADERS.parsestr(_text(part))
    return Message()


def _original_message_id(message: EmailMessage) -> str | None:
    return _message_id(_original_headers(message).get("Message-ID"))
