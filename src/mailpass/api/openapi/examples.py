"""The seed's examples, and one example answer for each error code."""

from __future__ import annotations

from typing import Any

from mailpass.errors import (
    ApiError,
    Forbidden,
    HeadersTooLarge,
    IdempotencyConflict,
    IdempotencyInProgress,
    InternalError,
    NoSmtpProvider,
    NotCancellable,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    SendFailed,
    SendLimitExceeded,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
)
from mailpass.idempotency import IDEMPOTENCY_HEADER

__all__ = ["COMPONENT_EXAMPLES"]


SEED_SEND_REQUEST = {
    "to": "user@example.com",
    "subject": "Order Confirmation",
    "html": "<h1>Your order has been confirmed</h1>",
    "text": "Your order has been confirmed",
    "from_email": "support@yourdomain.com",
    "from_name": "Your App",
    "reply_to": "reply@yourdomain.com",
    "cc": ["cc@example.com"],
    "bcc": ["bcc@example.com"],
    "tags": ["order", "confirmation"],
    "metadata": {"order_id": "12345"},
}
SEED_CURL_REQUEST = {"to": "user@example.com", "subject": "Hello", "html": "<p>Hello World</p>"}
SEED_SEND_ANSWER = {
    "success": True,
    "data": {
        "message_id": "<abc123.1706600000@mailpass.im>",
        "status": "sent",
        "to": "user@example.com",
        "from": "support@yourdomain.com",
    },
}
SEED_BATCH_REQUEST = {
    "messages": [
        {"to": "a@example.com", "subject": "Hello A", "html": "<p>Hi A</p>"},
        {"to": "b@example.com", "subject": "Hello B", "html": "<p>Hi B</p>"},
    ],
    "from_email": "support@yourdomain.com",
    "from_name": "Your App",
}
# The seed's answers, with the fields MailPass adds to them (``message_id`` of a queued item,
# the message's queue, recipients and metadata) so that each is a complete, real answer.
SEED_BATCH_ANSWER = {
    "success": True,
    "data": {
        "total": 2,
        "queued": 2,
        "failed": 0,
        "messages": [
            {
                "to": "a@example.com",
                "status": "queued",
                "queue_id": 101,
                "message_id": "<5f1c0e2a9b7d4c3e8a01.1706600000@yourdomain.com>",
            },
            {
                "to": "b@example.com",
                "status": "queued",
                "queue_id": 102,
                "message_id": "<9a8b7c6d5e4f3a2b1c0d.1706600000@yourdomain.com>",
            },
        ],
    },
}
SEED_STATUS_ANSWER = {
    "success": True,
    "data": {
        "message": {
            "message_id": "<abc123@mailpass.im>",
            "queue_id": 101,
            "from_email": "support@yourdomain.com",
            "from_name": "Your App",
            "to_email": "user@example.com",
            "cc": [],
            "bcc": [],
            "reply_to": None,
            "subject": "Order Confirmation",
            "status": "sent",
            "error_message": None,
            "attempts": 1,
            "next_attempt_at": None,
            "held_reason": None,
            "tags": ["order", "confirmation"],
            "metadata": {"order_id": "12345"},
            "test": False,
            "sent_at": "2026-01-30T12:00:00",
            "created_at": "2026-01-30T12:00:00",
            "first_opened_at": "2026-01-30T12:05:00",
            "first_clicked_at": None,
        },
        "events": [
            {
                "event_type": "sent",
                "smtp_reply": "250 2.0.0 Ok: queued as 4F2A1C",
                "attempt": 1,
                "created_at": "2026-01-30T12:00:00",
            },
            {
                "event_type": "open",
                "ip_address": "192.168.1.1",
                "user_agent": "Mozilla/5.0...",
                "url": None,
                "machine": False,
                "machine_reason": None,
                "created_at": "2026-01-30T12:05:00",
            },
        ],
    },
}
ERROR_EXAMPLES: dict[type[ApiError], ApiError] = {
    ValidationError: ValidationError(
        "the message is invalid",
        details=[{"field": "to", "message": "is required"}],
    ),
    Unauthorized: Unauthorized("invalid API key"),
    Forbidden: Forbidden("this API key lacks the `mail` permission"),
    NotFound: NotFound("no message <abc123@mailpass.im>"),
    NotCancellable: NotCancellable(
        "the message is sent: only a queued message can be cancelled",
        details=[{"message_id": "<abc123@mailpass.im>", "status": "sent"}],
    ),
    IdempotencyConflict: IdempotencyConflict(
        "this Idempotency-Key was already used for a different request "
        "(POST /api/v1/mail/send); use a new key for a new request",
        details=[{"field": IDEMPOTENCY_HEADER, "message": "used for a different request"}],
    ),
    IdempotencyInProgress: IdempotencyInProgress(
        "a request with this Idempotency-Key is still running; retry in a moment to get its answer"
    ),
    RequestTimeout: RequestTimeout("the request body stopped arriving: nothing for 30 seconds"),
    HeadersTooLarge: HeadersTooLarge("the request's header fields are larger than 32768 bytes"),
    PayloadTooLarge: PayloadTooLarge("the request body is larger than 16777216 bytes"),
    NoSmtpProvider: NoSmtpProvider(
        "no default SMTP provider: add one with `mailpass providers add --default`"
    ),
    SendLimitExceeded: SendLimitExceeded(
        "the provider's hourly limit of 500 messages is reached", retry_after=120
    ),
    RateLimited: RateLimited(
        "too many requests from this address failed authentication; retry in 42 seconds",
        retry_after=42,
    ),
    SendFailed: SendFailed(
        "the provider did not accept the message: 550 5.1.1 mailbox unavailable",
        details=[{"smtp_code": 550, "smtp_reply": "550 5.1.1 mailbox unavailable"}],
    ),
    InternalError: InternalError("an unexpected error occurred; it has been logged"),
    ServiceUnavailable: ServiceUnavailable(
        "the database cannot be reached; nothing was done", retry_after=5
    ),
}

# Attached to the document as components after FastAPI built it: FastAPI's own encoding drops
# every null, and the seed's answers have some.
COMPONENT_EXAMPLES: dict[str, Any] = {
    "SeedSendRequest": {"summary": "The seed's request, every field", "value": SEED_SEND_REQUEST},
    "SeedCurlRequest": {"summary": "The seed's curl example", "value": SEED_CURL_REQUEST},
    "SeedSendAnswer": {"summary": "Sent", "value": SEED_SEND_ANSWER},
    "SeedBatchRequest": {"summary": "The seed's batch", "value": SEED_BATCH_REQUEST},
    "SeedBatchAnswer": {"summary": "Both queued", "value": SEED_BATCH_ANSWER},
    "SeedStatusAnswer": {"summary": "A sent message, opened", "value": SEED_STATUS_ANSWER},
    "SuppressionListAnswer": {
        "summary": "A page of the suppression list",
        "value": {
            "success": True,
            "data": {
                "suppressions": [
                    {
                        "email": "gone@example.com",
                        "reason": "manual",
                        "message_id": None,
                        "created_at": "2026-01-30T12:00:00",
                    }
                ],
                "next_cursor": None,
            },
        },
    },
    "SuppressionAddedAnswer": {
        "summary": "Suppressed",
        "value": {
            "success": True,
            "data": {"email": "gone@example.com", "reason": "manual", "added": True},
        },
    },
    "WebhookCreatedAnswer": {
        "summary": "An endpoint, and its secret shown once",
        "value": {
            "success": True,
            "data": {
                "id": 1,
                "url": "https://app.example.com/hooks/mailpass",
                "event_types": ["bounced", "complained"],
                "enabled": True,
                "failing_since": None,
                "disabled_reason": None,
                "created_at": "2026-01-30T12:00:00",
                "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            },
        },
    },
    "WebhookListAnswer": {
        "summary": "The account's endpoints",
        "value": {
            "success": True,
            "data": {
                "webhooks": [
                    {
                        "id": 1,
                        "url": "https://app.example.com/hooks/mailpass",
                        "event_types": [],
                        "enabled": True,
                        "failing_since": None,
                        "disabled_reason": None,
                        "created_at": "2026-01-30T12:00:00",
                    }
                ]
            },
        },
    },
    "WebhookDeletedAnswer": {
        "summary": "Deleted",
        "value": {"success": True, "data": {"id": 1, "deleted": True}},
    },
    "WebhookDeliveriesAnswer": {
        "summary": "A delivery tried twice",
        "value": {
            "success": True,
            "data": {
                "deliveries": [
                    {
                        "webhook_id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
                        "event_type": "bounced",
                        "state": "delivered",
                        "attempts": 2,
                        "last_status": 200,
                        "last_error": None,
                        "next_attempt_at": None,
                        "delivered_at": "2026-01-30T12:00:05",
                        "created_at": "2026-01-30T12:00:00",
                    }
                ]
            },
        },
    },
    "SuppressionRemovedAnswer": {
        "summary": "Sent to again",
        "value": {"success": True, "data": {"email": "gone@example.com", "removed": True}},
    },
    "CancelAnswer": {
        "summary": "Cancelled before its time",
        "value": {
            "success": True,
            "data": {
                "message_id": "<1a233e65aed58d7a5131c2f75834045.1796167064@yourdomain.com>",
                "queue_id": 12345,
                "status": "cancelled",
            },
        },
    },
} | {
    error.code: {"summary": error.code, "value": example.envelope()}
    for error, example in ERROR_EXAMPLES.items()
}
