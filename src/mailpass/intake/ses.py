"""Amazon SES's notifications (``notificationType``) and event publishing (``eventType``), as
the ``Message`` of an SNS notification: bounces, complaints, deliveries, rejects and delivery
delays, one event per recipient named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from mailpass.core.statuses import EventType
from mailpass.errors import ValidationError
from mailpass.intake.models import BounceType, Parsed, ProviderEvent, message_id_of, utc_time

__all__ = ["parse_notification"]


def parse_notification(text: str) -> Parsed:
    """The events of one SES notification (the SNS message's ``Message``)."""
    try:
        notification = json.loads(text)
    except ValueError:
        raise ValidationError("the SNS message's Message is not an SES notification") from None
    if not isinstance(notification, dict):
        raise ValidationError("the SNS message's Message is not an SES notification")
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail")
    if not isinstance(kind, str) or not isinstance(mail, dict):
        raise ValidationError("the SES notification has no notificationType/eventType or mail")
    message_id = _message_id(mail)
    ses_id = mail.get("messageId") if isinstance(mail.get("messageId"), str) else None
    parsed = Parsed()
    for event_type, section_name, at_field, recipient, data in _events(kind, notification):
        section = notification[section_name]
        parsed.events.append(
            ProviderEvent(
                event_type=event_type,
                at=utc_time(section.get(at_field) or mail.get("timestamp"), f"{kind}'s time"),
                message_id=message_id,
                recipient=recipient,
                provider_message_id=ses_id,
                data={name: value for name, value in data.items() if value is not None},
            )
        )
    if not parsed.events:
        parsed.ignored = 1  # Send, Open, Click, Rendering Failure, Subscription, …
    return parsed


def _message_id(mail: dict[str, Any]) -> str | None:
    """The mail's own Message-ID (SES's ``messageId`` is SES's id for it, not this)."""
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and common.get("messageId"):
        return message_id_of(common["messageId"])
    for header in mail.get("headers") or ():
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            return message_id_of(header.get("value"))
    return None


def _section(notification: dict[str, Any], name: str) -> dict[str, Any]:
    section = notification.get(name)
    if not isinstance(section, dict):
        raise ValidationError(f"the SES notification has no {name!r}")
    return section


def _recipients(section: dict[str, Any], field: str) -> Iterator[dict[str, Any]]:
    for item in section.get(field) or ():
        if isinstance(item, dict) and isinstance(item.get("emailAddress"), str):
            yield item
        elif isinstance(item, str):
            yield {"emailAddress": item}


Row = tuple[EventType, str, str, str | None, dict[str, Any]]


def _events(kind: str, notification: dict[str, Any]) -> Iterator[Row]:
    if kind == "Bounce":
        bounce = _section(notification, "bounce")
        # Permanent: for good. Transient (a full mailbox, too large) and Undetermined: for now.
        bounce_type = (
            BounceType.HARD if bounce.get("bounceType") == "Permanent" else BounceType.SOFT
        )
        for item in _recipients(bounce, "bouncedRecipients"):
            yield (
                EventType.BOUNCED,
                "bounce",
                "timestamp",
                item["emailAddress"],
                {
                    "bounce_type": bounce_type,
                    "bounce_subtype": bounce.get("bounceSubType"),
                    "dsn_status": item.get("status"),
                    "diagnostic_code": item.get("diagnosticCode"),
                },
            )
    elif kind == "Complaint":
        complaint = _section(notification, "complaint")
        for item in _recipients(complaint, "complainedRecipients"):
            feedback = {"feedback_type": complaint.get("complaintFeedbackType")}
            yield EventType.COMPLAINED, "complaint", "timestamp", item["emailAddress"], feedback
    elif kind == "Delivery":
        delivery = _section(notification, "delivery")
        for item in _recipients(delivery, "recipients"):
            reply = {"smtp_reply": delivery.get("smtpResponse")}
            yield EventType.DELIVERED, "delivery", "timestamp", item["emailAddress"], reply
    elif kind == "Reject":
        reject = _section(notification, "reject")
        yield EventType.REJECTED, "reject", "timestamp", None, {"reason": reject.get("reason")}
    elif kind == "DeliveryDelay":
        delay = _section(notification, "deliveryDelay")
        for item in _recipients(delay, "delayedRecipients"):
            reason = item.get("diagnosticCode") or delay.get("delayType")
            data = {"reason": reason, "dsn_status": item.get("status")}
            yield EventType.DEFERRED, "deliveryDelay", "timestamp", item["emailAddress"], data
