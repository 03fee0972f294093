"""The OpenAPI document of the mail API (``/openapi.json``) and its interactive docs.

The mail routes read their bodies themselves (pydantic straight from the bytes, so that every
problem is reported in the seed's envelope), so FastAPI cannot see their wire format: it is
written out here and attached to each route with ``openapi_extra``. The limits come from
``messages.request`` and the error codes and statuses from ``errors``, so the document cannot
drift from the code that answers.

The docs pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) load their scripts from this
server, never from a CDN: a self-hosted instance may have no way out, or a policy against it.
"""

from __future__ import annotations

import copy
import importlib.resources
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from mailpass.core.statuses import EventType, MessageStatus
from mailpass.errors import (
    ApiError,
    Forbidden,
    IdempotencyConflict,
    IdempotencyInProgress,
    InternalError,
    MethodNotAllowed,
    NoSmtpProvider,
    NotFound,
    PayloadTooLarge,
    SendFailed,
    SendLimitExceeded,
    Unauthorized,
    ValidationError,
)
from mailpass.idempotency import IDEMPOTENCY_HEADER, MAX_KEY_CHARS, REPLAYED_HEADER
from mailpass.messages.request import (
    BATCH_DEFAULTS,
    MAX_BATCH_MESSAGES,
    MAX_METADATA_KEYS,
    MAX_NAME_CHARS,
    MAX_RECIPIENTS,
    MAX_SUBJECT_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
)

__all__ = [
    "DOCS_URL",
    "ERROR_DESCRIPTIONS",
    "OPENAPI_URL",
    "REDOC_URL",
    "SEND_BATCH_OPERATION",
    "SEND_OPERATION",
    "STATUS_OPERATION",
    "install_api_docs",
]

OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
DOCS_ASSETS_URL = "/docs/assets"
# Swagger UI and ReDoc as files, from the fastapi-offline distribution that ships them.
DOCS_ASSETS_PACKAGE = "fastapi_offline"

SCHEMAS = "#/components/schemas/"
EXAMPLES = "#/components/examples/"

ERROR_DESCRIPTIONS: dict[type[ApiError], str] = {
    ValidationError: "a required field is missing, an address is invalid, the body is not a "
    "JSON object, a header field contains CR or LF, a malformed `Idempotency-Key`; `details` "
    'names every field: `[{"field": "cc.1", "message": "…"}]`',
    Unauthorized: "no key, an unknown key, a revoked key",
    Forbidden: "the key lacks the permission (`mail` for these endpoints)",
    NotFound: "unknown message or route, or another account's message",
    MethodNotAllowed: "e.g. `GET /api/v1/mail/send`",
    IdempotencyConflict: "an `Idempotency-Key` reused with a different body or endpoint",
    IdempotencyInProgress: "a request with the same `Idempotency-Key` is still running; "
    "`Retry-After` says when to ask again",
    PayloadTooLarge: "the body is over `MAILPASS_MAX_BODY_BYTES`",
    NoSmtpProvider: "the account has no default provider",
    SendLimitExceeded: "the provider's hourly or daily limit is reached; `Retry-After` says in "
    "how many seconds a slot frees",
    SendFailed: "the provider refused the message or could not be reached; `message` and "
    "`details` carry its SMTP reply (`smtp_code`, `smtp_reply`)",
    InternalError: "an unexpected error; it is logged, and the answer never carries a stack trace",
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
    }


SEND_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": f"One message. At most {MAX_RECIPIENTS} recipients in `to`, `cc` and `bcc` "
    "together; `html` or `text` (or both) must be non-empty. Unknown fields are ignored.",
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
    "description": "Messages to queue, and defaults for them. Unknown fields are ignored. Only a "
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

SEND_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["message_id", "status", "to", "from"],
    "properties": {
        "message_id": {
            "type": "string",
            "description": "`<random.unixtime@domain>`, also the mail's `Message-ID` header.",
        },
        "status": {"const": MessageStatus.SENT},
        "to": {"type": "string"},
        "from": {"type": "string"},
    },
}

BATCH_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["total", "queued", "failed", "messages"],
    "properties": {
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
                        },
                    },
                    {
                        "type": "object",
                        "required": ["to", "status", "error", "details"],
                        "properties": {
                            "to": NULLABLE_STRING,
                            "status": {"const": MessageStatus.FAILED},
                            "error": {"type": "string"},
                            "details": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                ]
            },
        },
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
        "tags",
        "metadata",
        "test",
        "sent_at",
        "created_at",
        "first_opened_at",
        "first_clicked_at",
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
        "tags": {"type": "array", "items": {"type": "string"}},
        "metadata": {"type": "object"},
        "test": {"type": "boolean", "description": "Sent with a test key (`mp_test_…`)."},
        "sent_at": {"anyOf": [SEED_TIME, {"type": "null"}]},
        "created_at": SEED_TIME,
        "first_opened_at": {"anyOf": [SEED_TIME, {"type": "null"}]},
        "first_clicked_at": {"anyOf": [SEED_TIME, {"type": "null"}]},
    },
}

EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event_type", "created_at"],
    "properties": {
        "event_type": {"type": "string", "enum": list(EventType)},
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
}

# -- the seed's examples -------------------------------------------------------------------------

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
                "event_type": "open",
                "ip_address": "192.168.1.1",
                "user_agent": "Mozilla/5.0...",
                "url": None,
                "machine": False,
                "machine_reason": None,
                "created_at": "2026-01-30T12:05:00",
            }
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
    IdempotencyConflict: IdempotencyConflict(
        "this Idempotency-Key was already used for a different request "
        "(POST /api/v1/mail/send); use a new key for a new request",
        details=[{"field": IDEMPOTENCY_HEADER, "message": "used for a different request"}],
    ),
    IdempotencyInProgress: IdempotencyInProgress(
        "a request with this Idempotency-Key is still running; retry in a moment to get its answer"
    ),
    PayloadTooLarge: PayloadTooLarge("the request body is larger than 10485760 bytes"),
    NoSmtpProvider: NoSmtpProvider(
        "no default SMTP provider: add one with `mailpass providers add --default`"
    ),
    SendLimitExceeded: SendLimitExceeded(
        "the provider's hourly limit of 500 messages is reached", retry_after=120
    ),
    SendFailed: SendFailed(
        "the provider did not accept the message: 550 5.1.1 mailbox unavailable",
        details=[{"smtp_code": 550, "smtp_reply": "550 5.1.1 mailbox unavailable"}],
    ),
    InternalError: InternalError("an unexpected error occurred; it has been logged"),
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
} | {
    error.code: {"summary": error.code, "value": example.envelope()}
    for error, example in ERROR_EXAMPLES.items()
}

# -- operations ----------------------------------------------------------------------------------

IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Makes retries safe: the first answer to a key is kept 24 hours (per account) "
    "and replayed, with `Idempotent-Replayed: true`, to every later request with that key and "
    "the same body, which is not run again. Another body with the same key is "
    "`IDEMPOTENCY_CONFLICT`; while the first request still runs, `IDEMPOTENCY_IN_PROGRESS`.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_CHARS,
        "pattern": "^[\\x20-\\x7e]*[\\x21-\\x7e][\\x20-\\x7e]*$",
    },
    "example": "order-12345-confirmation",
}

RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string", "pattern": "^\\d+$"},
    },
    REPLAYED_HEADER: {
        "description": "`true` when this answer is the stored answer of an earlier request "
        "with the same `Idempotency-Key`.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def _error_response(
    errors: list[type[ApiError]], headers: list[str], *, replayable: bool
) -> dict[str, Any]:
    codes = sorted(error.code for error in errors)
    response: dict[str, Any] = {
        "description": "; ".join(
            f"`{error.code}`: {ERROR_DESCRIPTIONS[error]}" for error in errors
        ),
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [
                        {"$ref": SCHEMAS + "ErrorEnvelope"},
                        {"properties": {"error": {"properties": {"code": {"enum": codes}}}}},
                    ]
                },
                "examples": {error.code: {"$ref": EXAMPLES + error.code} for error in errors},
            }
        },
    }
    if replayable:
        headers = [*headers, REPLAYED_HEADER]
    if headers:
        response["headers"] = {name: RESPONSE_HEADERS[name] for name in headers}
    return response


def _responses(
    success: dict[str, Any], errors: list[type[ApiError]], *, idempotent: bool
) -> dict[str, Any]:
    by_status: dict[int, list[type[ApiError]]] = {}
    for error in errors:
        by_status.setdefault(error.http_status, []).append(error)
    responses: dict[str, Any] = {"200": success}
    for status, status_errors in sorted(by_status.items()):
        headers = ["Retry-After"] if status in (409, 429) else []
        # Stored answers are the ones a key replays (see ``idempotency.service``).
        replayable = idempotent and status == 500
        responses[str(status)] = _error_response(status_errors, headers, replayable=replayable)
    return responses


def _success_response(
    description: str, schema: str, example: str, *, idempotent: bool
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {
                "schema": {"$ref": SCHEMAS + schema},
                "examples": {"seed": {"$ref": EXAMPLES + example}},
            }
        },
    }
    if idempotent:
        response["headers"] = {REPLAYED_HEADER: RESPONSE_HEADERS[REPLAYED_HEADER]}
    return response


SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
POST_ERRORS: list[type[ApiError]] = [
    ValidationError,
    Unauthorized,
    Forbidden,
    IdempotencyConflict,
    IdempotencyInProgress,
    PayloadTooLarge,
    NoSmtpProvider,
]

SEND_OPERATION: dict[str, Any] = {
    "operationId": "sendMail",
    "summary": "Send one message now",
    "description": "Delivered synchronously through the account's default SMTP provider: the "
    "answer comes after the provider accepted the message (SMTP 250) and the record is durably "
    "committed. Needs the `mail` permission.",
    "tags": ["mail"],
    "security": SECURITY,
    "parameters": [IDEMPOTENCY_KEY_PARAMETER],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": SCHEMAS + "SendRequest"},
                "examples": {
                    "seed": {"$ref": EXAMPLES + "SeedSendRequest"},
                    "curl": {"$ref": EXAMPLES + "SeedCurlRequest"},
                },
            }
        },
    },
    "responses": _responses(
        _success_response("Sent.", "SendSuccess", "SeedSendAnswer", idempotent=True),
        [*POST_ERRORS, SendLimitExceeded, SendFailed, InternalError],
        idempotent=True,
    ),
}

SEND_BATCH_OPERATION: dict[str, Any] = {
    "operationId": "sendBatch",
    "summary": f"Queue up to {MAX_BATCH_MESSAGES} messages",
    "description": "Each item is validated on its own: a bad item fails alone, the others are "
    "queued, all in one transaction before the answer. Queued mail is sent in the background "
    "and never fails for a provider's limit: it waits. Needs the `mail` permission.",
    "tags": ["mail"],
    "security": SECURITY,
    "parameters": [IDEMPOTENCY_KEY_PARAMETER],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": SCHEMAS + "BatchRequest"},
                "examples": {"seed": {"$ref": EXAMPLES + "SeedBatchRequest"}},
            }
        },
    },
    "responses": _responses(
        _success_response("Queued.", "BatchSuccess", "SeedBatchAnswer", idempotent=True),
        [*POST_ERRORS, InternalError],
        idempotent=True,
    ),
}

STATUS_OPERATION: dict[str, Any] = {
    "operationId": "getMessageStatus",
    "summary": "A message and its events",
    "description": "`message_id` may be given with or without its angle brackets, URL-encoded "
    "or not. Another account's message is `NOT_FOUND`, exactly like an unknown one. Needs the "
    "`mail` permission.",
    "tags": ["mail"],
    "security": SECURITY,
    "responses": _responses(
        _success_response("The message.", "StatusSuccess", "SeedStatusAnswer", idempotent=False),
        [Unauthorized, Forbidden, NotFound, InternalError],
        idempotent=False,
    ),
}

DESCRIPTION = """\
Transactional e-mail through your own SMTP provider.

Every endpoint takes `Authorization: Bearer <API key>` and answers in one envelope:
`{"success": true, "data": {…}}` or
`{"success": false, "error": {"code": "…", "message": "…", "details": […]}}`.

`POST` requests take an optional `Idempotency-Key` header (up to 256 printable ASCII
characters): retrying with the same key and body never sends twice.

| code | HTTP | when |
| --- | --- | --- |
"""


def _error_table() -> str:
    return "".join(
        f"| `{error.code}` | {error.http_status} | {description} |\n"
        for error, description in ERROR_DESCRIPTIONS.items()
    )


def build_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of the app's routes, completed with the schemas above."""
    document = copy.deepcopy(
        get_openapi(
            title=app.title,
            version=app.version,
            description=DESCRIPTION + _error_table(),
            routes=app.routes,
        )
    )
    # No route answers FastAPI's own 422: a request that does not fit is a 400
    # VALIDATION_ERROR in the envelope (see ``api.app``).
    fastapi_422 = {"$ref": SCHEMAS + "HTTPValidationError"}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            unprocessable = responses.get("422", {}).get("content", {}).get("application/json", {})
            if unprocessable.get("schema") == fastapi_422:
                del responses["422"]
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(copy.deepcopy(COMPONENT_SCHEMAS))
    components.setdefault("examples", {}).update(copy.deepcopy(COMPONENT_EXAMPLES))
    components.setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `mp_live_…`, or `mp_test_…` for mail that never leaves "
        "the machine.",
    }
    return document


def install_api_docs(app: FastAPI) -> None:
    """Serve ``/openapi.json``, Swagger UI at ``/docs`` and ReDoc at ``/redoc``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    assets = importlib.resources.files(DOCS_ASSETS_PACKAGE) / "static"
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi_document(_request: Request) -> Response:
        return Response(orjson.dumps(app.openapi()), media_type="application/json")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(_request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(_request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} API",
            redoc_js_url=f"{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
