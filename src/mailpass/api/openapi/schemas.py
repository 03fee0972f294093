"""The JSON Schemas of the mail API's request bodies and answers, and the error codes' meanings.

The limits come from ``messages.request``, the statuses from ``core.statuses`` and the error
codes from ``errors``; tests/api/test_openapi_models.py checks every field against the models
the routes read and the results the answers are rendered from.
"""

from __future__ import annotations

from typing import Any

from mailpass.core.statuses import EventType, MessageStatus
from mailpass.errors import (
    ApiError,
    Forbidden,
    HeadersTooLarge,
    IdempotencyConflict,
    IdempotencyInProgress,
    InternalError,
    MethodNotAllowed,
    NoSmtpProvider,
    NotCancellable,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RecipientSuppressed,
    RequestTimeout,
    SendFailed,
    SendLimitExceeded,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
)
from mailpass.messages.request import (
    BATCH_DEFAULTS,
    MAX_ATTACHMENTS,
    MAX_BATCH_MESSAGES,
    MAX_CONTENT_ID_CHARS,
    MAX_FILENAME_CHARS,
    MAX_HEADER_VALUE_CHARS,
    MAX_HEADERS,
    MAX_METADATA_KEYS,
    MAX_NAME_CHARS,
    MAX_RECIPIENTS,
    MAX_SUBJECT_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_UNSUBSCRIBE_CHARS,
)
from mailpass.providers.hooks import HOOK_KINDS
from mailpass.suppressions.models import SuppressionReason

__all__ = [
    "ATTACHMENT",
    "BATCH_MESSAGE",
    "BATCH_REQUEST",
    "BATCH_RESULT",
    "CANCEL_RESULT",
    "COMPONENT_SCHEMAS",
    "ERROR_DESCRIPTIONS",
    "EVENT",
    "EXAMPLES",
    "MESSAGE",
    "MESSAGE_STATUS",
    "SCHEMAS",
    "SEND_REQUEST",
    "SEND_RESULT",
]

SCHEMAS = "#/components/schemas/"
EXAMPLES = "#/components/examples/"

ERROR_DESCRIPTIONS: dict[type[ApiError], str] = {
    ValidationError: "a required field is missing, an address is invalid, the body is not a "
    "JSON object, a header field contains CR or LF, a malformed `Idempotency-Key`; `details` "
    'names every field: `[{"field": "cc.1", "message": "…"}]`',
    Unauthorized: "no key, an unknown key, a revoked key",
    Forbidden: "the key lacks the permission (`mail` for the mail endpoints, `suppressions` for "
    "the suppression list)",
    NotFound: "unknown message or route, or another account's message",
    NotCancellable: "the message is no longer waiting in the queue (being sent, sent or "
    "failed); `details` says its status",
    MethodNotAllowed: "e.g. `GET /api/v1/mail/send`",
    IdempotencyConflict: "an `Idempotency-Key` reused with a different body or endpoint",
    IdempotencyInProgress: "a request with the same `Idempotency-Key` is still running; "
    "`Retry-After` says when to ask again",
    RequestTimeout: "the request body stopped arriving for `MAILPASS_REQUEST_BODY_TIMEOUT` "
    "seconds (30)",
    PayloadTooLarge: "the body is over `MAILPASS_MAX_BODY_BYTES`",
    HeadersTooLarge: "the request's header fields are larger than `MAILPASS_MAX_HEADER_BYTES` "
    "(32 KiB) together",
    NoSmtpProvider: "the account has no default provider",
    RecipientSuppressed: "a `to` recipient is on the account's suppression list; nothing was "
    'sent; `details` names each: `[{"field": "to", "email": "…", "reason": "hard_bounce"}]`',
    RateLimited: "too many requests from this client address failed authentication in the last "
    "minute (`MAILPASS_AUTH_FAILURE_LIMIT`, 20); `Retry-After` says when it may try again",
    SendLimitExceeded: "the provider's hourly or daily limit is reached; `Retry-After` says in "
    "how many seconds a slot frees",
    SendFailed: "the provider refused the message or could not be reached; `message` and "
    "`details` carry its SMTP reply (`smtp_code`, `smtp_reply`)",
    InternalError: "an unexpected error; it is logged, and the answer never carries a stack trace",
    ServiceUnavailable: "MailPass's database cannot be reached for now (`GET /readyz` says so); "
    "nothing was sent: send the same request again after `Retry-After` seconds",
}

# -- request bodies ------------------------------------------------------------------------------

NO_NUL = "^[^\\x00]*$"
# What ``check_header_text`` refuses: CR and LF (header injection) and NUL.
NO_LINE_BREAKS = "^[^\\r\\n\\x00]*$"
# ``validate_message`` treats a blank subject as missing.
NOT_BLANK_SINGLE_LINE = "^[^\\r\\n\\x00]*[^\\s\\x00][^\\r\\n\\x00]*$"


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """Every optional field may also be sent as null, which means "not set"."""
    return {"anyOf": [schema, {"type": "null"}]}


def _addresses(description: str, *, max_items: int | None = None) -> dict[str, Any]:
    as_list: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
    if max_items is not None:
        as_list["maxItems"] = max_items
    return {
        "description": description,
        "anyOf": [{"type": "string"}, as_list, {"type": "null"}],
    }


def _message_properties() -> dict[str, Any]:
    """The fields of ``messages.request.MessageFields``, with the rules ``validate_message``
    applies that a schema can say."""
    return {
        "to": {
            "description": "`user@example.com` or `Name <user@example.com>`; a list of such "
            "strings is accepted too.",
            "anyOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "maxItems": MAX_RECIPIENTS,
                },
            ],
        },
        "subject": {
            "type": "string",
            "maxLength": MAX_SUBJECT_CHARS,
            "pattern": NOT_BLANK_SINGLE_LINE,
            "description": "One line: no CR, LF or NUL.",
        },
        "html": _nullable({"type": "string", "pattern": NO_NUL}) | {"description": "HTML body."},
        "text": _nullable({"type": "string", "pattern": NO_NUL})
        | {"description": "Plain-text body; with `html` too the mail is multipart/alternative."},
        "from_email": _nullable({"type": "string"})
        | {"description": "Sender; default: the provider's configured sender."},
        "from_name": _nullable(
            {"type": "string", "maxLength": MAX_NAME_CHARS, "pattern": NO_LINE_BREAKS}
        )
        | {"description": "Sender's name."},
        "reply_to": _addresses("Reply-To address(es)."),
        "cc": _addresses("Cc recipients.", max_items=MAX_RECIPIENTS),
        "bcc": _addresses(
            "Bcc recipients: only in the SMTP envelope, never in a header.",
            max_items=MAX_RECIPIENTS,
        ),
        "tags": _nullable(
            {
                "type": "array",
                "maxItems": MAX_TAGS,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS},
            }
        )
        | {"description": "Labels for your own filtering."},
        "metadata": _nullable(
            {"type": "object", "maxProperties": MAX_METADATA_KEYS, "additionalProperties": True}
        )
        | {"description": "Your own data, kept with the message."},
        "track_opens": _nullable({"type": "boolean"})
        | {"description": "Add an open-tracking pixel to html mail; default: the provider's."},
        "track_clicks": _nullable({"type": "boolean"})
        | {"description": "Send html links through click tracking; default: the provider's."},
        "headers": _nullable(
            {
                "type": "object",
                "maxProperties": MAX_HEADERS,
                "additionalProperties": {"type": "string", "maxLength": MAX_HEADER_VALUE_CHARS},
            }
        )
        | {
            "description": 'Header fields of the mail\'s own, `{"X-Order": "1"}`. Names '
            "follow RFC 5322 and are case-insensitive (each once); values take no CR, LF or NUL "
            "and non-ASCII ones are RFC 2047 encoded. The headers MailPass writes (From, To, "
            "Cc, Bcc, Reply-To, Subject, Message-ID, Date, MIME-Version, Content-*) or the "
            "servers carrying the mail do (DKIM-Signature, Return-Path, Received) are refused, "
            "naming the field to use instead."
        },
        "list_unsubscribe": _nullable(
            {
                "anyOf": [
                    {"type": "string", "maxLength": MAX_UNSUBSCRIBE_CHARS},
                    {
                        "type": "array",
                        "items": {"type": "string", "maxLength": MAX_UNSUBSCRIBE_CHARS},
                    },
                ]
            }
        )
        | {
            "description": "An `https://` URL or a `mailto:` address, or a list of both: the "
            "mail's `List-Unsubscribe` header (RFC 2369), with `List-Unsubscribe-Post: "
            "List-Unsubscribe=One-Click` (RFC 8058) when there is an https URL."
        },
        "attachments": _nullable(
            {
                "type": "array",
                "maxItems": MAX_ATTACHMENTS,
                "items": {"$ref": SCHEMAS + "Attachment"},
            }
        )
        | {
            "description": f"Files the mail carries, at most {MAX_ATTACHMENTS}, together at most "
            "`MAILPASS_MAX_ATTACHMENT_BYTES` decoded (default 10 MiB). One with a `content_id` "
            'is an inline part the html shows as `<img src="cid:…">`.'
        },
        "scheduled_at": _nullable({"type": "string"})
        | {
            "description": "When to send it, ISO 8601 with an offset (`2026-12-24T09:00:00+01:00`"
            ") or in UTC without one; at most 30 days ahead. The message is queued (answered "
            "`queued` with its `queue_id`) and sent by the workers then; its Date is that time, "
            "and its provider's limits count then. `POST /api/v1/mail/cancel/{message_id}` "
            "cancels it until it is sent."
        },
    }


ATTACHMENT: dict[str, Any] = {
    "type": "object",
    "required": ["filename", "content"],
    "properties": {
        "filename": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_FILENAME_CHARS,
            "pattern": "^[^/\\\\\\x00-\\x1f\\x7f]*$",
            "description": "The file's name as the recipient sees it: no path (`/`, `\\`), no "
            "control characters. Non-ASCII names are carried as RFC 2231 parameters.",
        },
        "content": {
            "type": "string",
            "contentEncoding": "base64",
            "description": "The file's bytes in base64 (RFC 4648's standard alphabet, padded); "
            "line breaks inside are fine.",
        },
        "content_type": _nullable({"type": "string"})
        | {
            "description": "`type/subtype`, with parameters if any (`text/csv; charset=utf-8`); "
            "default: guessed from the file name, else `application/octet-stream`. "
            "`message/*` and `multipart/*` are refused (they cannot be carried in base64)."
        },
        "content_id": _nullable(
            {"type": "string", "maxLength": MAX_CONTENT_ID_CHARS + 2, "pattern": "^<?[!-;=?-~]+>?$"}
        )
        | {
            "description": "Makes it an inline part (`multipart/related`), shown where the html "
            "says `cid:<content_id>`; unique within the message, and only for a message with "
            "html."
        },
    },
}


SEND_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": f"One message. At most {MAX_RECIPIENTS} recipients in `to`, `cc` and `bcc` "
    "together; `html` or `text` (or both) must be non-empty. Unknown fields are ignored and "
    "named in the answer's `ignored_fields`.",
    "required": ["to", "subject"],
    "properties": _message_properties(),
    "anyOf": [
        {"required": ["html"], "properties": {"html": {"type": "string", "minLength": 1}}},
        {"required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}},
    ],
}

BATCH_MESSAGE: dict[str, Any] = {
    "type": "object",
    "description": "One item of a batch: the fields of `/send`; the batch's defaults fill in "
    "what the item leaves out. An item that fails validation fails alone (it is reported in the "
    "answer, the other items are queued), so any item is accepted here.",
    "properties": _message_properties(),
}

BATCH_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "Messages to queue, and defaults for them. Unknown fields (the batch's or an "
    "item's) are ignored and named in the answer's `ignored_fields`. Only a "
    "body without 1 to 100 `messages` is refused whole: an item that breaks a rule below, or "
    "takes a default that does, fails alone and is reported in the answer.",
    "required": ["messages"],
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH_MESSAGES,
            "items": {"$ref": SCHEMAS + "BatchMessage"},
        },
        **{name: _message_properties()[name] for name in BATCH_DEFAULTS},
    },
}

# -- answers -------------------------------------------------------------------------------------

# Times are UTC without an offset, as in the seed: ``2026-01-30T12:00:00``.
SEED_TIME = {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}$"}
NULLABLE_STRING = {"type": ["string", "null"]}

SUPPRESSED_RECIPIENTS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Present only when cc or bcc recipients were on the account's suppression "
    "list: they were left out of the message, which went to the others.",
}

SEND_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["message_id", "status", "to", "from"],
    "properties": {
        "message_id": {
            "type": "string",
            "description": "`<random.unixtime@domain>`, also the mail's `Message-ID` header.",
        },
        "status": {
            "type": "string",
            "enum": [MessageStatus.SENT, MessageStatus.QUEUED],
            "description": "`sent`; `queued` for a message with `scheduled_at`.",
        },
        "to": {"type": "string"},
        "from": {"type": "string"},
        "queue_id": {"type": "integer", "description": "Present for a scheduled message."},
        "scheduled_at": {
            **SEED_TIME,
            "description": "Present for a scheduled message: when it will be sent (UTC).",
        },
        "ignored_fields": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Present only when the request had fields MailPass does not know "
            "(a typo such as `atachments`): their names. They were not acted on.",
        },
        "suppressed": SUPPRESSED_RECIPIENTS,
    },
}

BATCH_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["total", "queued", "failed", "messages"],
    "properties": {
        "ignored_fields": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Present only when the request or a queued item had fields "
            "MailPass does not know: `priority`, `messages.0.atachments`. Not acted on.",
        },
        "total": {"type": "integer", "minimum": 1},
        "queued": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
        "messages": {
            "type": "array",
            "description": "One entry per item, in request order.",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["to", "status", "queue_id", "message_id"],
                        "properties": {
                            "to": {"type": "string"},
                            "status": {"const": MessageStatus.QUEUED},
                            "queue_id": {"type": "integer"},
                            "message_id": {"type": "string"},
                            "suppressed": SUPPRESSED_RECIPIENTS,
                        },
                    },
                    {
                        "type": "object",
                        "required": ["to", "status", "code", "error", "details"],
                        "properties": {
                            "to": NULLABLE_STRING,
                            "status": {"const": MessageStatus.FAILED},
                            "code": {
                                "type": "string",
                                "enum": [ValidationError.code, RecipientSuppressed.code],
                                "description": "The error /send would answer for it.",
                            },
                            "error": {"type": "string"},
                            "details": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                ]
            },
        },
    },
}

CANCEL_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["message_id", "queue_id", "status"],
    "properties": {
        "message_id": {"type": "string"},
        "queue_id": {"type": "integer"},
        "status": {"const": MessageStatus.CANCELLED},
    },
}

SUPPRESSION_REASON: dict[str, Any] = {"type": "string", "enum": list(SuppressionReason)}
SUPPRESSION: dict[str, Any] = {
    "type": "object",
    "required": ["email", "reason", "message_id", "created_at"],
    "properties": {
        "email": {"type": "string", "description": "Lower-cased."},
        "reason": SUPPRESSION_REASON,
        "message_id": {
            **NULLABLE_STRING,
            "description": "The message that led to it (its bounce, its complaint).",
        },
        "created_at": SEED_TIME,
    },
}
SUPPRESSION_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["email"],
    "additionalProperties": False,
    "properties": {
        "email": {"type": "string", "description": "The address alone, without a name."},
        "reason": {**SUPPRESSION_REASON, "default": SuppressionReason.MANUAL},
    },
}
SUPPRESSION_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["suppressions", "next_cursor"],
    "properties": {
        "suppressions": {
            "type": "array",
            "items": {"$ref": SCHEMAS + "Suppression"},
            "description": "Newest first.",
        },
        "next_cursor": {
            **NULLABLE_STRING,
            "description": "Pass as `cursor` for the next page; null on the last.",
        },
    },
}
SUPPRESSION_ADDED: dict[str, Any] = {
    "type": "object",
    "required": ["email", "reason", "added"],
    "properties": {
        "email": {"type": "string"},
        "reason": SUPPRESSION_REASON,
        "added": {
            "type": "boolean",
            "description": "False when it was on the list already (its first reason is kept).",
        },
    },
}
SUPPRESSION_REMOVED: dict[str, Any] = {
    "type": "object",
    "required": ["email", "removed"],
    "properties": {"email": {"type": "string"}, "removed": {"const": True}},
}

WEBHOOK_EVENT_TYPES: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "enum": list(EventType)},
    "description": "The event types it gets, as `/status` names them; empty: every type.",
}
WEBHOOK_ENDPOINT: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "url",
        "event_types",
        "enabled",
        "failing_since",
        "disabled_reason",
        "created_at",
    ],
    "properties": {
        "id": {"type": "integer"},
        "url": {"type": "string"},
        "event_types": WEBHOOK_EVENT_TYPES,
        "enabled": {
            "type": "boolean",
            "description": "False once no delivery worked for a day (`disabled_reason`).",
        },
        "failing_since": {
            **SEED_TIME,
            "type": ["string", "null"],
            "description": "Since when every delivery failed; null while they work.",
        },
        "disabled_reason": NULLABLE_STRING,
        "created_at": SEED_TIME,
    },
}
WEBHOOK_CREATED: dict[str, Any] = {
    "allOf": [
        {"$ref": SCHEMAS + "WebhookEndpoint"},
        {
            "type": "object",
            "required": ["secret"],
            "properties": {
                "secret": {
                    "type": "string",
                    "description": "The signing secret (`whsec_…`): shown this once only.",
                }
            },
        },
    ]
}
WEBHOOK_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "url": {
            "type": "string",
            "maxLength": 2000,
            "description": "http:// or https://, at a public address (unless the server "
            "allows private ones).",
        },
        "event_types": WEBHOOK_EVENT_TYPES,
    },
}
WEBHOOK_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["webhooks"],
    "properties": {"webhooks": {"type": "array", "items": {"$ref": SCHEMAS + "WebhookEndpoint"}}},
}
WEBHOOK_DELETED: dict[str, Any] = {
    "type": "object",
    "required": ["id", "deleted"],
    "properties": {"id": {"type": "integer"}, "deleted": {"const": True}},
}
WEBHOOK_DELIVERY: dict[str, Any] = {
    "type": "object",
    "required": [
        "webhook_id",
        "event_type",
        "state",
        "attempts",
        "last_status",
        "last_error",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    ],
    "properties": {
        "webhook_id": {"type": "string", "description": "Its `webhook-id` header."},
        "event_type": {"type": "string", "enum": list(EventType)},
        "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": "integer", "minimum": 0},
        "last_status": {"type": ["integer", "null"], "description": "The endpoint's HTTP status."},
        "last_error": NULLABLE_STRING,
        "next_attempt_at": {**SEED_TIME, "type": ["string", "null"]},
        "delivered_at": {**SEED_TIME, "type": ["string", "null"]},
        "created_at": SEED_TIME,
    },
}
WEBHOOK_DELIVERIES: dict[str, Any] = {
    "type": "object",
    "required": ["deliveries"],
    "properties": {
        "deliveries": {
            "type": "array",
            "items": {"$ref": SCHEMAS + "WebhookDelivery"},
            "description": "Newest first.",
        }
    },
}

MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": [
        "message_id",
        "queue_id",
        "from_email",
        "from_name",
        "to_email",
        "cc",
        "bcc",
        "reply_to",
        "subject",
        "status",
        "error_message",
        "attempts",
        "next_attempt_at",
        "held_reason",
        "tags",
        "metadata",
        "test",
        "sent_at",
        "created_at",
        "first_opened_at",
        "first_clicked_at",
        "scheduled_at",
        "attachments",
    ],
    "properties": {
        "message_id": {"type": "string"},
        "queue_id": {"type": "integer"},
        "from_email": {"type": "string"},
        "from_name": NULLABLE_STRING,
        "to_email": {"type": "string", "description": "The `to` addresses, comma-separated."},
        "cc": {"type": "array", "items": {"type": "string"}},
        "bcc": {"type": "array", "items": {"type": "string"}},
        "reply_to": NULLABLE_STRING,
        "subject": {"type": "string"},
        "status": {"type": "string", "enum": list(MessageStatus)},
        "error_message": {
            "type": ["string", "null"],
            "description": "The provider's reply when it refused the message (or some recipients).",
        },
        "attempts": {"type": "integer", "minimum": 0},
        "next_attempt_at": {"anyOf": [SEED_TIME, {"type": "null"}]},
        "held_reason": {
            "type": ["string", "null"],
            "description": "Why a queued message waits when not for its own failed attempt: its "
            "provider is down (it is tried again at `next_attempt_at`) or its hourly or daily "
            "limit is reached.",
        },
        "tags": {"type": "array", "items": {"type": "string"}},
        "metadata": {"type": "object"},
        "test": {"type": "boolean", "description": "Sent with a test key (`mp_test_…`)."},
        "sent_at": {"anyOf": [SEED_TIME, {"type": "null"}]},
        "created_at": SEED_TIME,
        "first_opened_at": {"anyOf": [SEED_TIME, {"type": "null"}]},
        "first_clicked_at": {"anyOf": [SEED_TIME, {"type": "null"}]},
        "scheduled_at": {
            "anyOf": [SEED_TIME, {"type": "null"}],
            "description": "When it was asked to be sent, for a scheduled message.",
        },
        "attachments": {
            "type": "array",
            "description": "The files it carries, in the order given (their bytes are not "
            "shown here: the dashboard downloads them).",
            "items": {
                "type": "object",
                "required": ["filename", "content_type", "size", "content_id"],
                "properties": {
                    "filename": {"type": "string"},
                    "content_type": {"type": "string"},
                    "size": {"type": "integer", "minimum": 0, "description": "Bytes."},
                    "content_id": NULLABLE_STRING,
                },
            },
        },
    },
}

EVENT: dict[str, Any] = {
    "type": "object",
    "description": "Something that happened to the message. `open` and `click` carry the hit "
    "(`ip_address`, `user_agent`, `url`, `machine`, `machine_reason`), as the seed shows an "
    "open; the others carry the fields that apply to them: `queued`; `scheduled` "
    "(`scheduled_at`); `sent` (`smtp_reply`: the provider's answer, `attempt`, `refused`: the "
    "recipients it refused, if any); `deferred` (`reason`, `attempt`, `next_attempt_at`); "
    "`failed` (`reason`, `attempt`); `cancelled`; `suppressed` (`recipients`). What a "
    "provider reports by its webhook "
    "(`delivered`, `deferred`, `bounced`, `complained`, `rejected`, `unsubscribed`) carries "
    "`provider` and `recipient`, and as applies `bounce_type`, `bounce_subtype`, `dsn_status`, "
    "`diagnostic_code`, `smtp_reply`, `reason`, `feedback_type`.",
    "required": ["event_type", "created_at"],
    "properties": {
        "event_type": {"type": "string", "enum": list(EventType)},
        "smtp_reply": {
            "type": "string",
            "description": "`sent`: the provider's answer to DATA; `delivered`: the recipient's "
            "server's answer, as the provider reports it.",
        },
        "refused": {"type": "string", "description": "`sent`: the recipients it refused."},
        "reason": {
            "type": ["string", "null"],
            "description": "`deferred`, `failed`, `rejected`: the provider's reply, or what "
            "happened instead (no answer in time, …).",
        },
        "attempt": {"type": "integer", "minimum": 1, "description": "Which attempt, from 1."},
        "next_attempt_at": {**SEED_TIME, "description": "`deferred`: when it is tried again."},
        "scheduled_at": {**SEED_TIME, "description": "`scheduled`: when it is to be sent."},
        "provider": {
            "type": "string",
            "enum": [*HOOK_KINDS, "smtp"],
            "description": "Who reported the event: the provider by its webhook, or (`smtp`) "
            "a report mailed back to the bounce domain (see `report`).",
        },
        "report": {
            "type": "string",
            "enum": ["dsn", "arf"],
            "description": "A report by mail: a delivery status notification (RFC 3464) or an "
            "abuse report (RFC 5965).",
        },
        "recipient": {"type": "string", "description": "The recipient the report is about."},
        "recipients": {
            "type": "array",
            "items": {"type": "string"},
            "description": "`suppressed`: the recipients it was not sent to, on the "
            "suppression list by its turn in the queue.",
        },
        "bounce_type": {
            "type": "string",
            "enum": ["hard", "soft"],
            "description": "`bounced`: `hard` (for good: the address is suppressed) or `soft` "
            "(for now: suppressed after MAILPASS_SOFT_BOUNCE_LIMIT in a row).",
        },
        "bounce_subtype": {"type": "string", "description": "`bounced`: the provider's own."},
        "dsn_status": {
            "type": "string",
            "description": "`bounced`, `deferred`: the RFC 3463 status, e.g. `5.1.1`.",
        },
        "diagnostic_code": {
            "type": "string",
            "description": "`bounced`: the recipient's server's reply.",
        },
        "classification": {"type": "string", "description": "`bounced`: SendGrid's class."},
        "feedback_type": {
            "type": "string",
            "description": "`complained`: the kind of report (`abuse`, …).",
        },
        "reported_at": {
            **SEED_TIME,
            "description": "The provider's own time of the event, when earlier than `sent`'s "
            "(clocks differ): the event is listed at `sent`'s time.",
        },
        "ip_address": NULLABLE_STRING,
        "user_agent": NULLABLE_STRING,
        "url": {"type": ["string", "null"], "description": "The link of a `click`."},
        "machine": {
            "type": "boolean",
            "description": "The hit came from a machine (a mail scanner, a link checker), not "
            "a person.",
        },
        "machine_reason": {"type": ["string", "null"]},
        "created_at": SEED_TIME,
    },
}

MESSAGE_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["message", "events"],
    "properties": {
        "message": {"$ref": SCHEMAS + "Message"},
        "events": {
            "type": "array",
            "description": "Oldest first.",
            "items": {"$ref": SCHEMAS + "Event"},
        },
    },
}

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "enum": sorted(e.code for e in ERROR_DESCRIPTIONS)},
        "message": {"type": "string", "description": "For people."},
        "details": {
            "type": "array",
            "items": {"type": "object"},
            "description": 'E.g. one `{"field", "message"}` per invalid field, or the '
            "provider's `smtp_code` and `smtp_reply`.",
        },
    },
}

ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {"success": {"const": False}, "error": {"$ref": SCHEMAS + "Error"}},
}


def _success(data_schema: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"const": True}, "data": {"$ref": SCHEMAS + data_schema}},
    }


COMPONENT_SCHEMAS: dict[str, Any] = {
    "SendRequest": SEND_REQUEST,
    "BatchRequest": BATCH_REQUEST,
    "BatchMessage": BATCH_MESSAGE,
    "Attachment": ATTACHMENT,
    "SendResult": SEND_RESULT,
    "BatchResult": BATCH_RESULT,
    "MessageStatus": MESSAGE_STATUS,
    "Message": MESSAGE,
    "Event": EVENT,
    "Error": ERROR,
    "ErrorEnvelope": ERROR_ENVELOPE,
    "SendSuccess": _success("SendResult"),
    "BatchSuccess": _success("BatchResult"),
    "StatusSuccess": _success("MessageStatus"),
    "CancelSuccess": _success("CancelResult"),
    "CancelResult": CANCEL_RESULT,
    "Suppression": SUPPRESSION,
    "SuppressionRequest": SUPPRESSION_REQUEST,
    "SuppressionList": SUPPRESSION_LIST,
    "SuppressionListSuccess": _success("SuppressionList"),
    "SuppressionAdded": SUPPRESSION_ADDED,
    "SuppressionAddedSuccess": _success("SuppressionAdded"),
    "SuppressionRemoved": SUPPRESSION_REMOVED,
    "SuppressionRemovedSuccess": _success("SuppressionRemoved"),
    "WebhookEndpoint": WEBHOOK_ENDPOINT,
    "WebhookRequest": WEBHOOK_REQUEST,
    "WebhookCreated": WEBHOOK_CREATED,
    "WebhookCreatedSuccess": _success("WebhookCreated"),
    "WebhookList": WEBHOOK_LIST,
    "WebhookListSuccess": _success("WebhookList"),
    "WebhookDeleted": WEBHOOK_DELETED,
    "WebhookDeletedSuccess": _success("WebhookDeleted"),
    "WebhookDelivery": WEBHOOK_DELIVERY,
    "WebhookDeliveries": WEBHOOK_DELIVERIES,
    "WebhookDeliveriesSuccess": _success("WebhookDeliveries"),
}
