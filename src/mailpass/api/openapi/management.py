"""The management routes (``/api/v1/providers``, ``/api/v1/keys``, and the webhook endpoints'
test and enable actions): their schemas, examples and operations, as ``schemas``,
``examples`` and ``operations`` hold the mail routes'."""

from __future__ import annotations

from typing import Any

from mailpass.accounts.keys import ALL_PERMISSIONS
from mailpass.api.openapi.operations import (
    _ENDPOINT_ID,
    _SUPPRESSION_ERRORS,
    SECURITY,
    _responses,
    _success_response,
)
from mailpass.api.openapi.schemas import NULLABLE_STRING, SCHEMAS, SEED_TIME, _success
from mailpass.core.text import CONTROL_FREE_PATTERN
from mailpass.errors import (
    ApiError,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ValidationError,
)
from mailpass.providers.kinds import KINDS, SECURITY_MODES

__all__ = [
    "CREATE_KEY_OPERATION",
    "CREATE_PROVIDER_OPERATION",
    "DEFAULT_PROVIDER_OPERATION",
    "DELETE_PROVIDER_OPERATION",
    "ENABLE_WEBHOOK_OPERATION",
    "GET_PROVIDER_OPERATION",
    "LIST_KEYS_OPERATION",
    "LIST_PROVIDERS_OPERATION",
    "MANAGEMENT_EXAMPLES",
    "MANAGEMENT_SCHEMAS",
    "REVOKE_KEY_OPERATION",
    "TEST_PROVIDER_OPERATION",
    "TEST_WEBHOOK_OPERATION",
    "UPDATE_PROVIDER_OPERATION",
]

NULLABLE_INTEGER = {"type": ["integer", "null"]}
LIMIT = {"type": ["integer", "null"], "minimum": 1, "maximum": 10_000_000}

PROVIDER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "host": {"type": "string"},
        "port": {"type": "integer"},
        "security": {"type": "string", "enum": list(SECURITY_MODES)},
        "username": NULLABLE_STRING,
        "password_set": {
            "type": "boolean",
            "description": "Whether a password is stored; it is never shown.",
        },
        "region": {
            **NULLABLE_STRING,
            "description": "The region its host was made from (ses, mailgun).",
        },
        "from_email": NULLABLE_STRING,
        "from_name": NULLABLE_STRING,
        "hourly_limit": NULLABLE_INTEGER,
        "daily_limit": NULLABLE_INTEGER,
        "default": {"type": "boolean", "description": "Whether `/send` uses it."},
        "track_opens": {"type": "boolean"},
        "track_clicks": {"type": "boolean"},
        "webhook_url": {
            **NULLABLE_STRING,
            "description": "Where the provider posts its events (ses, sendgrid, mailgun).",
        },
        "webhook_key_set": {"type": "boolean"},
        "down_until": {
            **SEED_TIME,
            "type": ["string", "null"],
            "description": "Marked down after failing in a row: its mail waits until then.",
        },
        "down_reason": NULLABLE_STRING,
        "fallbacks": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "The providers its mail fails over to, in order.",
        },
        "created_at": SEED_TIME,
        "updated_at": SEED_TIME,
    },
}
PROVIDER["required"] = list(PROVIDER["properties"])

_SETTINGS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": CONTROL_FREE_PATTERN},
    "kind": {"type": "string", "enum": list(KINDS)},
    "host": {
        "type": ["string", "null"],
        "maxLength": 253,
        "pattern": CONTROL_FREE_PATTERN,
        "description": "Needed for smtp; the others have their own (direct: each domain's MX).",
    },
    "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
    "security": {"type": ["string", "null"], "enum": [*SECURITY_MODES, None]},
    "username": {"type": ["string", "null"], "maxLength": 320, "pattern": CONTROL_FREE_PATTERN},
    "password": {
        "type": ["string", "null"],
        "maxLength": 1000,
        "pattern": CONTROL_FREE_PATTERN,
        "writeOnly": True,
        "description": "Never returned.",
    },
    "region": {
        "type": ["string", "null"],
        "maxLength": 40,
        "pattern": CONTROL_FREE_PATTERN,
        "description": "ses: the AWS region (e.g. `us-east-1`); mailgun: `us` or `eu`.",
    },
    "from_email": {"type": ["string", "null"], "maxLength": 320},
    "from_name": {"type": ["string", "null"], "maxLength": 200},
    "hourly_limit": LIMIT,
    "daily_limit": LIMIT,
    "track_opens": {"type": "boolean"},
    "track_clicks": {"type": "boolean"},
    "webhook_key": {
        "type": ["string", "null"],
        "maxLength": 1000,
        "pattern": CONTROL_FREE_PATTERN,
        "writeOnly": True,
        "description": "SendGrid's verification key or Mailgun's signing key. Never returned.",
    },
    "fallbacks": {
        "type": ["array", "null"],
        "items": {"type": "integer"},
        "maxItems": 5,
        "description": "Ids of the account's providers that take its mail, in order, when it "
        "cannot: unreachable, timing out, deferring, marked down or at its limit.",
    },
}
PROVIDER_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["name", "kind"],
    "additionalProperties": False,
    "properties": {
        **_SETTINGS,
        "default": {"type": "boolean", "description": "Make it the one `/send` uses."},
    },
}
PROVIDER_PATCH: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "The fields given replace the stored ones; null clears an optional one.",
    "properties": {
        **{name: schema for name, schema in _SETTINGS.items() if name not in ("name", "kind")},
        "name": _SETTINGS["name"],
        "kind": {
            "type": ["string", "null"],
            "enum": [*KINDS, None],
            "description": "Only the kind it has: a provider's kind does not change.",
        },
        "track_opens": {"type": ["boolean", "null"]},
        "track_clicks": {"type": ["boolean", "null"]},
        "default": {
            "type": ["boolean", "null"],
            "enum": [True, None],
            "description": "`true` makes it the default (another made default un-defaults it).",
        },
    },
}
PROVIDER_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["providers"],
    "properties": {"providers": {"type": "array", "items": {"$ref": SCHEMAS + "Provider"}}},
}
PROVIDER_DELETED: dict[str, Any] = {
    "type": "object",
    "required": ["id", "deleted"],
    "properties": {"id": {"type": "integer"}, "deleted": {"const": True}},
}
PROVIDER_TEST: dict[str, Any] = {
    "type": "object",
    "required": ["id", "ok", "error", "transcript"],
    "properties": {
        "id": {"type": "integer"},
        "ok": {"type": "boolean"},
        "error": {**NULLABLE_STRING, "description": "Why it failed, in one line."},
        "transcript": {
            "type": "array",
            "items": {"type": "string"},
            "description": '`"S: 250 …"` / `"C: EHLO …"` lines; credentials never appear.',
        },
    },
}

PERMISSION_LIST: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "enum": list(ALL_PERMISSIONS)},
}
API_KEY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "prefix": {"type": "string", "description": "Its first characters, to recognise it."},
        "permissions": PERMISSION_LIST,
        "test": {"type": "boolean", "description": "A test key's mail never leaves the server."},
        "created_at": SEED_TIME,
        "last_used_at": {**SEED_TIME, "type": ["string", "null"]},
        "revoked_at": {**SEED_TIME, "type": ["string", "null"]},
    },
}
API_KEY["required"] = list(API_KEY["properties"])
API_KEY_CREATED: dict[str, Any] = {
    "allOf": [
        {"$ref": SCHEMAS + "ApiKey"},
        {
            "type": "object",
            "required": ["key"],
            "properties": {
                "key": {"type": "string", "description": "The key itself: shown this once only."}
            },
        },
    ]
}
KEY_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "pattern": CONTROL_FREE_PATTERN,
            "default": "default",
        },
        "permissions": {
            **PERMISSION_LIST,
            "maxItems": len(ALL_PERMISSIONS),
            "description": "At most those of the key making it (the default).",
        },
        "test": {"type": "boolean", "description": "Default: the kind of the key making it."},
    },
}
KEY_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["keys"],
    "properties": {"keys": {"type": "array", "items": {"$ref": SCHEMAS + "ApiKey"}}},
}
WEBHOOK_TEST_QUEUED: dict[str, Any] = {
    "type": "object",
    "required": ["id", "queued"],
    "properties": {"id": {"type": "integer"}, "queued": {"const": True}},
}

MANAGEMENT_SCHEMAS: dict[str, Any] = {
    "Provider": PROVIDER,
    "ProviderRequest": PROVIDER_REQUEST,
    "ProviderPatch": PROVIDER_PATCH,
    "ProviderSuccess": _success("Provider"),
    "ProviderList": PROVIDER_LIST,
    "ProviderListSuccess": _success("ProviderList"),
    "ProviderDeleted": PROVIDER_DELETED,
    "ProviderDeletedSuccess": _success("ProviderDeleted"),
    "ProviderTest": PROVIDER_TEST,
    "ProviderTestSuccess": _success("ProviderTest"),
    "ApiKey": API_KEY,
    "ApiKeySuccess": _success("ApiKey"),
    "ApiKeyCreated": API_KEY_CREATED,
    "ApiKeyCreatedSuccess": _success("ApiKeyCreated"),
    "KeyRequest": KEY_REQUEST,
    "KeyList": KEY_LIST,
    "KeyListSuccess": _success("KeyList"),
    "WebhookTestQueued": WEBHOOK_TEST_QUEUED,
    "WebhookTestQueuedSuccess": _success("WebhookTestQueued"),
    "WebhookEndpointSuccess": _success("WebhookEndpoint"),
}

_PROVIDER_EXAMPLE: dict[str, Any] = {
    "id": 1,
    "name": "ses-eu",
    "kind": "ses",
    "host": "email-smtp.eu-west-1.amazonaws.com",
    "port": 587,
    "security": "starttls",
    "username": "AKIAIOSFODNN7EXAMPLE",
    "password_set": True,
    "region": "eu-west-1",
    "from_email": "noreply@shop.example",
    "from_name": "Shop",
    "hourly_limit": None,
    "daily_limit": 50000,
    "default": True,
    "track_opens": False,
    "track_clicks": False,
    "webhook_url": "https://mail.shop.example/hooks/1/ses/Jk2vWmXq8yRt4uPzLs6nBd0aFh3gYcEo",
    "webhook_key_set": False,
    "down_until": None,
    "down_reason": None,
    "fallbacks": [],
    "created_at": "2026-01-30T12:00:00",
    "updated_at": "2026-01-30T12:00:00",
}
_KEY_EXAMPLE: dict[str, Any] = {
    "id": 2,
    "name": "deploy",
    "prefix": "mp_live_Xq3v",
    "permissions": ["mail"],
    "test": False,
    "created_at": "2026-01-30T12:00:00",
    "last_used_at": None,
    "revoked_at": None,
}


def _example(summary: str, data: Any) -> dict[str, Any]:
    return {"summary": summary, "value": {"success": True, "data": data}}


MANAGEMENT_EXAMPLES: dict[str, Any] = {
    "ProviderAnswer": _example("A provider (its password is never shown)", _PROVIDER_EXAMPLE),
    "ProviderListAnswer": _example("The account's providers", {"providers": [_PROVIDER_EXAMPLE]}),
    "ProviderDeletedAnswer": _example("Deleted", {"id": 1, "deleted": True}),
    "ProviderTestAnswer": _example(
        "It answered, and took the credentials",
        {
            "id": 1,
            "ok": True,
            "error": None,
            "transcript": [
                "S: 220 email-smtp.amazonaws.com ESMTP SimpleEmailService",
                "C: EHLO mail.shop.example",
                "S: 250 Ok",
                "C: STARTTLS",
                "S: 220 Ready to start TLS",
                "C: AUTH PLAIN (credentials hidden)",
                "S: 235 Authentication successful.",
            ],
        },
    ),
    "KeyListAnswer": _example("The account's keys", {"keys": [_KEY_EXAMPLE]}),
    "KeyCreatedAnswer": _example(
        "A key, shown once", {**_KEY_EXAMPLE, "key": "mp_live_Xq3vN8pWc2LkR7tYbH5mJ9sQe4aZgF0d"}
    ),
    "KeyRevokedAnswer": _example("Revoked", {**_KEY_EXAMPLE, "revoked_at": "2026-01-31T08:00:00"}),
    "WebhookTestQueuedAnswer": _example("A test event is on its way", {"id": 1, "queued": True}),
    "WebhookEnabledAnswer": _example(
        "On again",
        {
            "id": 1,
            "url": "https://app.example.com/hooks/mailpass",
            "event_types": [],
            "enabled": True,
            "failing_since": None,
            "disabled_reason": None,
            "created_at": "2026-01-30T12:00:00",
        },
    ),
}

_ERRORS: list[type[ApiError]] = _SUPPRESSION_ERRORS
_BODY_ERRORS: list[type[ApiError]] = [ValidationError, *_ERRORS, PayloadTooLarge, RequestTimeout]
_PROVIDER_ID = {"name": "provider_id", "in": "path", "required": True, "schema": {"type": "string"}}
_KEY_ID = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _operation(
    operation_id: str,
    summary: str,
    description: str,
    *,
    tag: str,
    answer: tuple[str, str, str],
    errors: list[type[ApiError]],
    parameters: list[dict[str, Any]] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": f"{description} Needs the `{tag}` permission.",
        "tags": [tag],
        "security": SECURITY,
    }
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": SCHEMAS + body}}},
        }
    described, schema, example = answer
    operation["responses"] = _responses(
        _success_response(described, schema, example, idempotent=False), errors, idempotent=False
    )
    return operation


LIST_PROVIDERS_OPERATION = _operation(
    "listProviders",
    "The account's providers",
    "Oldest first, the default among them.",
    tag="providers",
    answer=("The providers.", "ProviderListSuccess", "ProviderListAnswer"),
    errors=_ERRORS,
)
CREATE_PROVIDER_OPERATION = _operation(
    "createProvider",
    "Add a provider",
    "An SMTP server (`smtp`), or the SMTP relay of Amazon SES, SendGrid or Mailgun, which "
    "fill in their own host, port and security. Passwords and webhook keys are stored "
    "encrypted and never returned. Names are unique within the account.",
    tag="providers",
    answer=("Added.", "ProviderSuccess", "ProviderAnswer"),
    errors=_BODY_ERRORS,
    body="ProviderRequest",
)
GET_PROVIDER_OPERATION = _operation(
    "getProvider",
    "One provider",
    "`NOT_FOUND` for another account's.",
    tag="providers",
    answer=("The provider.", "ProviderSuccess", "ProviderAnswer"),
    errors=[*_ERRORS, NotFound],
    parameters=[_PROVIDER_ID],
)
UPDATE_PROVIDER_OPERATION = _operation(
    "updateProvider",
    "Change a provider",
    "The fields given replace the stored ones, null clears an optional one, the rest stay "
    "(the password too, unless given). A provider marked down is up again: its mail is due "
    "at once.",
    tag="providers",
    answer=("Changed.", "ProviderSuccess", "ProviderAnswer"),
    errors=[*_BODY_ERRORS, NotFound],
    parameters=[_PROVIDER_ID],
    body="ProviderPatch",
)
DELETE_PROVIDER_OPERATION = _operation(
    "deleteProvider",
    "Remove a provider",
    "Its sent mail keeps its record; mail still queued for it fails, saying why. The "
    "account has no default afterwards if it was the default.",
    tag="providers",
    answer=("Removed.", "ProviderDeletedSuccess", "ProviderDeletedAnswer"),
    errors=[*_ERRORS, NotFound],
    parameters=[_PROVIDER_ID],
)
DEFAULT_PROVIDER_OPERATION = _operation(
    "setDefaultProvider",
    "Make a provider the default",
    "`/send` and `/send-batch` use it from now on.",
    tag="providers",
    answer=("The new default.", "ProviderSuccess", "ProviderAnswer"),
    errors=[*_ERRORS, NotFound],
    parameters=[_PROVIDER_ID],
)
TEST_PROVIDER_OPERATION = _operation(
    "testProvider",
    "Try a provider's connection",
    "Connects, greets, secures and logs in as the workers would, sends nothing, and says "
    "how it went: a provider that fails is `ok: false` with the reason, not an error.",
    tag="providers",
    answer=("How it went.", "ProviderTestSuccess", "ProviderTestAnswer"),
    errors=[*_ERRORS, NotFound],
    parameters=[_PROVIDER_ID],
)
LIST_KEYS_OPERATION = _operation(
    "listKeys",
    "The account's API keys",
    "Oldest first, revoked ones included; never the keys themselves.",
    tag="keys",
    answer=("The keys.", "KeyListSuccess", "KeyListAnswer"),
    errors=_ERRORS,
)
CREATE_KEY_OPERATION = _operation(
    "createKey",
    "Make an API key",
    "The key is in this answer only. It grants at most the permissions of the key making it "
    "(`FORBIDDEN` otherwise), and a test key makes only test keys.",
    tag="keys",
    answer=("Made.", "ApiKeyCreatedSuccess", "KeyCreatedAnswer"),
    errors=_BODY_ERRORS,
    body="KeyRequest",
)
REVOKE_KEY_OPERATION = _operation(
    "revokeKey",
    "Revoke an API key",
    "It is refused from now on. A key cannot revoke itself (`FORBIDDEN`): an automation "
    "would lock itself out.",
    tag="keys",
    answer=("Revoked.", "ApiKeySuccess", "KeyRevokedAnswer"),
    errors=[*_ERRORS, NotFound],
    parameters=[_KEY_ID],
)
TEST_WEBHOOK_OPERATION = _operation(
    "testWebhook",
    "Send a test event",
    "Queues an `email.test` event for this endpoint alone, delivered and logged as any other.",
    tag="webhooks",
    answer=("Queued.", "WebhookTestQueuedSuccess", "WebhookTestQueuedAnswer"),
    errors=[*_ERRORS, NotFound],
    parameters=[_ENDPOINT_ID],
)
ENABLE_WEBHOOK_OPERATION = _operation(
    "enableWebhook",
    "Turn an endpoint on again",
    "After it was disabled for a day of failures: its failures are forgotten.",
    tag="webhooks",
    answer=("On.", "WebhookEndpointSuccess", "WebhookEnabledAnswer"),
    errors=[*_ERRORS, NotFound],
    parameters=[_ENDPOINT_ID],
)
