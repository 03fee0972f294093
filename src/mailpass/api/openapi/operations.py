"""The mail routes' operations: parameters, request bodies and every answer they give."""

from __future__ import annotations

from typing import Any

from mailpass.api.openapi.schemas import ERROR_DESCRIPTIONS, EXAMPLES, SCHEMAS
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
    RecipientSuppressed,
    RequestTimeout,
    SendFailed,
    SendLimitExceeded,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
)
from mailpass.idempotency import IDEMPOTENCY_HEADER, MAX_KEY_CHARS, REPLAYED_HEADER
from mailpass.messages.request import (
    MAX_BATCH_MESSAGES,
)

__all__ = [
    "ADD_SUPPRESSION_OPERATION",
    "CANCEL_OPERATION",
    "CREATE_WEBHOOK_OPERATION",
    "DELETE_WEBHOOK_OPERATION",
    "LIST_SUPPRESSIONS_OPERATION",
    "LIST_WEBHOOKS_OPERATION",
    "LIST_WEBHOOK_DELIVERIES_OPERATION",
    "REMOVE_SUPPRESSION_OPERATION",
    "SEND_BATCH_OPERATION",
    "SEND_OPERATION",
    "STATUS_OPERATION",
]


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
        headers = ["Retry-After"] if status in (409, 429, 503) else []
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
    RateLimited,
    Forbidden,
    IdempotencyConflict,
    IdempotencyInProgress,
    RequestTimeout,
    PayloadTooLarge,
    HeadersTooLarge,
    NoSmtpProvider,
]

SEND_OPERATION: dict[str, Any] = {
    "operationId": "sendMail",
    "summary": "Send one message now, or schedule it",
    "description": "Delivered synchronously through the account's default SMTP provider: the "
    "answer comes after the provider accepted the message (SMTP 250) and the record is durably "
    "committed. With `scheduled_at` it is queued instead (answered `queued`, with its "
    "`queue_id`), sent by the workers at that time, and may be cancelled until then. Needs the "
    "`mail` permission.",
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
        [
            *POST_ERRORS,
            RecipientSuppressed,
            SendLimitExceeded,
            SendFailed,
            InternalError,
            ServiceUnavailable,
        ],
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
        [*POST_ERRORS, InternalError, ServiceUnavailable],
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
        [
            Unauthorized,
            RateLimited,
            Forbidden,
            NotFound,
            HeadersTooLarge,
            InternalError,
            ServiceUnavailable,
        ],
        idempotent=False,
    ),
}

CANCEL_OPERATION: dict[str, Any] = {
    "operationId": "cancelMessage",
    "summary": "Cancel a scheduled or queued message",
    "description": "Takes a message that is still waiting in the queue (scheduled, queued in a "
    "batch, or waiting for a retry) out of it for good: its status becomes `cancelled` and it "
    "is never sent. Cancelling it again answers the same. A message being sent, sent or failed "
    "is `NOT_CANCELLABLE`. `message_id` as for the status. Needs the `mail` permission.",
    "tags": ["mail"],
    "security": SECURITY,
    "responses": _responses(
        _success_response("Cancelled.", "CancelSuccess", "CancelAnswer", idempotent=False),
        [
            Unauthorized,
            RateLimited,
            Forbidden,
            NotFound,
            NotCancellable,
            HeadersTooLarge,
            InternalError,
            ServiceUnavailable,
        ],
        idempotent=False,
    ),
}

_SUPPRESSION_ERRORS: list[type[ApiError]] = [
    Unauthorized,
    RateLimited,
    Forbidden,
    HeadersTooLarge,
    InternalError,
    ServiceUnavailable,
]

LIST_SUPPRESSIONS_OPERATION: dict[str, Any] = {
    "operationId": "listSuppressions",
    "summary": "The account's suppression list",
    "description": "Addresses MailPass no longer sends to, newest first, a page at a time. "
    "`search` keeps those containing it (any case). Needs the `suppressions` permission.",
    "tags": ["suppressions"],
    "security": SECURITY,
    "parameters": [
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        },
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {"name": "search", "in": "query", "schema": {"type": "string"}},
    ],
    "responses": _responses(
        _success_response(
            "A page.", "SuppressionListSuccess", "SuppressionListAnswer", idempotent=False
        ),
        [ValidationError, *_SUPPRESSION_ERRORS],
        idempotent=False,
    ),
}

ADD_SUPPRESSION_OPERATION: dict[str, Any] = {
    "operationId": "addSuppression",
    "summary": "Suppress an address",
    "description": "From now on, `/send` to it answers `RECIPIENT_SUPPRESSED`, a batch item to "
    "it fails alone with that code, and it is left out where it is a cc or bcc recipient. "
    "Adding it again changes nothing (`added: false`). Needs the `suppressions` permission.",
    "tags": ["suppressions"],
    "security": SECURITY,
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": SCHEMAS + "SuppressionRequest"}}},
    },
    "responses": _responses(
        _success_response(
            "On the list.", "SuppressionAddedSuccess", "SuppressionAddedAnswer", idempotent=False
        ),
        [ValidationError, *_SUPPRESSION_ERRORS, PayloadTooLarge, RequestTimeout],
        idempotent=False,
    ),
}

REMOVE_SUPPRESSION_OPERATION: dict[str, Any] = {
    "operationId": "removeSuppression",
    "summary": "Send to an address again",
    "description": "Takes `email` (any case) off the list; `NOT_FOUND` when it is not on it. "
    "Needs the `suppressions` permission.",
    "tags": ["suppressions"],
    "security": SECURITY,
    "responses": _responses(
        _success_response(
            "Off the list.",
            "SuppressionRemovedSuccess",
            "SuppressionRemovedAnswer",
            idempotent=False,
        ),
        [*_SUPPRESSION_ERRORS, NotFound],
        idempotent=False,
    ),
}

_WEBHOOK_ERRORS = _SUPPRESSION_ERRORS
_ENDPOINT_ID = {"name": "endpoint_id", "in": "path", "required": True, "schema": {"type": "string"}}

LIST_WEBHOOKS_OPERATION: dict[str, Any] = {
    "operationId": "listWebhooks",
    "summary": "The account's webhook endpoints",
    "description": "Where the account's messages' events are POSTed. Needs the `webhooks` "
    "permission.",
    "tags": ["webhooks"],
    "security": SECURITY,
    "responses": _responses(
        _success_response(
            "The endpoints.", "WebhookListSuccess", "WebhookListAnswer", idempotent=False
        ),
        _WEBHOOK_ERRORS,
        idempotent=False,
    ),
}

CREATE_WEBHOOK_OPERATION: dict[str, Any] = {
    "operationId": "createWebhook",
    "summary": "Add a webhook endpoint",
    "description": "Each event of the account's messages that it wants is POSTed to `url` as "
    "JSON, signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`, "
    "`webhook-signature: v1,…` with the `secret` of this answer, which is not shown again), "
    "at least once, retried for a day until it answers 2xx. At most 10 an account. Needs the "
    "`webhooks` permission.",
    "tags": ["webhooks"],
    "security": SECURITY,
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": SCHEMAS + "WebhookRequest"}}},
    },
    "responses": _responses(
        _success_response(
            "Added.", "WebhookCreatedSuccess", "WebhookCreatedAnswer", idempotent=False
        ),
        [ValidationError, *_WEBHOOK_ERRORS, PayloadTooLarge, RequestTimeout],
        idempotent=False,
    ),
}

DELETE_WEBHOOK_OPERATION: dict[str, Any] = {
    "operationId": "deleteWebhook",
    "summary": "Remove a webhook endpoint",
    "description": "Its deliveries not yet made are dropped with it. Needs the `webhooks` "
    "permission.",
    "tags": ["webhooks"],
    "security": SECURITY,
    "parameters": [_ENDPOINT_ID],
    "responses": _responses(
        _success_response(
            "Removed.", "WebhookDeletedSuccess", "WebhookDeletedAnswer", idempotent=False
        ),
        [*_WEBHOOK_ERRORS, NotFound],
        idempotent=False,
    ),
}

LIST_WEBHOOK_DELIVERIES_OPERATION: dict[str, Any] = {
    "operationId": "listWebhookDeliveries",
    "summary": "An endpoint's recent deliveries",
    "description": "Newest first: each event's state, attempts, and the endpoint's last "
    "answer. Needs the `webhooks` permission.",
    "tags": ["webhooks"],
    "security": SECURITY,
    "parameters": [
        _ENDPOINT_ID,
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        },
    ],
    "responses": _responses(
        _success_response(
            "The deliveries.",
            "WebhookDeliveriesSuccess",
            "WebhookDeliveriesAnswer",
            idempotent=False,
        ),
        [ValidationError, *_WEBHOOK_ERRORS, NotFound],
        idempotent=False,
    ),
}
