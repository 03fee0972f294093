"""The mail endpoints' answers in the seed's wire format, rendered from the services' typed
results. Times are UTC in the seed's format (``clock.isoformat``)."""

from __future__ import annotations

from typing import Any

from mailpass.clock import isoformat
from mailpass.core.events import TIME_FIELDS
from mailpass.core.statuses import MessageStatus
from mailpass.messages.results import (
    MessageEvent,
    MessageRecord,
    QueuedBatch,
    QueuedMessage,
    RefusedItem,
    ScheduledMessage,
    SentMessage,
)

__all__ = ["batch_answer", "cancel_answer", "event_answer", "send_answer", "status_answer"]


def send_answer(sent: SentMessage | ScheduledMessage) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "message_id": sent.message_id,
        "status": MessageStatus.SENT,
        "to": sent.to,
        "from": sent.sender,
    }
    if isinstance(sent, ScheduledMessage):
        # Queued as a batch item is, with when it is to be sent.
        answer["status"] = MessageStatus.QUEUED
        answer["queue_id"] = sent.queue_id
        answer["scheduled_at"] = isoformat(sent.scheduled_at)
    if sent.ignored:  # only then: the seed's answer stays as it was
        answer["ignored_fields"] = list(sent.ignored)
    if sent.suppressed:  # likewise
        answer["suppressed"] = list(sent.suppressed)
    return answer


def batch_answer(batch: QueuedBatch) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "total": batch.total,
        "queued": batch.queued,
        "failed": batch.failed,
        "messages": [_batch_item(item) for item in batch.items],
    }
    if batch.ignored:
        answer["ignored_fields"] = list(batch.ignored)
    return answer


def _batch_item(item: QueuedMessage | RefusedItem) -> dict[str, Any]:
    if isinstance(item, QueuedMessage):
        queued: dict[str, Any] = {
            "to": item.to,
            "status": MessageStatus.QUEUED,
            "queue_id": item.queue_id,
            "message_id": item.message_id,
        }
        if item.suppressed:
            queued["suppressed"] = list(item.suppressed)
        return queued
    return {
        "to": item.to,
        "status": MessageStatus.FAILED,
        "code": item.code,
        "error": item.error,
        "details": item.details,
    }


def cancel_answer(message: MessageRecord, status: MessageStatus) -> dict[str, Any]:
    return {"message_id": message.message_id, "queue_id": message.queue_id, "status": status}


def status_answer(message: MessageRecord, events: list[MessageEvent]) -> dict[str, Any]:
    return {
        "message": {
            "message_id": message.message_id,
            "queue_id": message.queue_id,
            "from_email": message.from_email,
            "from_name": message.from_name,
            "to_email": message.to_email,
            "cc": message.cc,
            "bcc": message.bcc,
            "reply_to": message.reply_to,
            "subject": message.subject,
            "status": message.status,
            "error_message": message.error_message,
            "attempts": message.attempts,
            "next_attempt_at": isoformat(message.next_attempt_at),
            "held_reason": message.held_reason,
            "tags": message.tags,
            "metadata": message.metadata,
            "test": message.test,
            "sent_at": isoformat(message.sent_at),
            "created_at": isoformat(message.created_at),
            "first_opened_at": isoformat(message.first_opened_at),
            "first_clicked_at": isoformat(message.first_clicked_at),
            "scheduled_at": isoformat(message.scheduled_at),
            "attachments": [
                {
                    "filename": attachment.filename,
                    "content_type": attachment.content_type,
                    "size": attachment.size,
                    "content_id": attachment.content_id,
                }
                for attachment in message.attachments
            ],
        },
        "events": [event_answer(event) for event in events],
    }


def event_answer(event: MessageEvent) -> dict[str, Any]:
    """An open or a click in the seed's shape; any other event with the fields that apply to
    it (``core.events``)."""
    if event.is_hit:
        return {
            "event_type": event.event_type,
            "ip_address": event.ip_address,
            "user_agent": event.user_agent,
            "url": event.url,
            "machine": event.machine,
            "machine_reason": event.machine_reason,
            "created_at": isoformat(event.created_at),
        }
    answer: dict[str, Any] = {"event_type": event.event_type}
    for name, value in event.data.items():
        answer[name] = isoformat(value) if name in TIME_FIELDS else value
    answer["created_at"] = isoformat(event.created_at)
    return answer
