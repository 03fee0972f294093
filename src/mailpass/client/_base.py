"""What ``Client`` and ``AsyncClient`` share: configuration, request bodies, answers and the
retry policy. Only the sending and the sleeping differ between the twins."""

from __future__ import annotations

import base64
import json
import os
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from mailpass.client._exceptions import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    MailPassError,
    error_from_response,
    parse_retry_after,
)
from mailpass.client._types import AttachmentParams, MessageParams, Recipients
from mailpass.client._version import __version__

__all__ = [
    "API_KEY_ENV",
    "API_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_TIMEOUT",
    "ApiCall",
    "RetryPolicy",
    "batch_body",
    "cancel_path",
    "client_headers",
    "resolve_api_key",
    "resolve_base_url",
    "result_data",
    "send_body",
    "status_path",
    "transport_error",
]

API_KEY_ENV = "MAILPASS_API_KEY"
API_URL_ENV = "MAILPASS_API_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"  # where `mailpass dev` listens
API_PREFIX = "/api/v1"
# /send answers only once the provider has accepted the mail, which can take a while.
DEFAULT_TIMEOUT: httpx.Timeout = httpx.Timeout(60.0, connect=10.0)  # seconds
DEFAULT_MAX_RETRIES = 2
DEFAULT_RETRY_BACKOFF = 0.5  # seconds before the first retry; doubles with each retry
MAX_RETRY_BACKOFF = 8.0  # seconds
MAX_RETRY_JITTER = 0.25  # a fraction of the delay, so that many clients do not retry in step
# A server's Retry-After longer than this (a provider's daily limit) is not waited for: the
# call raises at once and the caller decides.
MAX_RETRY_AFTER = 60.0  # seconds
# 408: the body stalled on its way, and nothing was done.
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# 500s that another try cannot change: the provider's own refusal is final for this message.
FINAL_ERROR_CODES = frozenset({"SEND_FAILED"})
REPLAYED_HEADER = "idempotent-replayed"


def resolve_api_key(api_key: str | None) -> str:
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if not key:
        raise ConfigurationError(f"no API key: pass api_key=... or set {API_KEY_ENV}")
    return key


def resolve_base_url(base_url: str | httpx.URL | None) -> httpx.URL:
    """The server's root URL; one ending in ``/api/v1`` (as in the seed's URLs) works too."""
    raw = str(base_url) if base_url is not None else os.environ.get(API_URL_ENV)
    url = httpx.URL(raw or DEFAULT_BASE_URL)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"the MailPass URL must be http:// or https://, not {raw!r}")
    path = url.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return url.copy_with(path=path + "/")


def client_headers(api_key: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        "User-Agent": f"mailpass-python/{__version__}",
        **(extra or {}),
    }


def _set(body: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = list(value)
    elif isinstance(value, Mapping):
        value = dict(value)
    body[name] = value


def wire_attachments(
    attachments: Sequence[AttachmentParams | Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Attachments as the API takes them: ``content`` given as bytes goes in base64."""
    wire = []
    for attachment in attachments:
        item = dict(attachment)
        content = item.get("content")
        if isinstance(content, bytes | bytearray | memoryview):
            item["content"] = base64.b64encode(content).decode("ascii")
        wire.append(item)
    return wire


def wire_time(moment: datetime | str) -> str:
    """A ``scheduled_at``: an aware datetime with its offset, a naive one as UTC, a string as
    given (ISO 8601)."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def send_body(
    *,
    to: Recipients,
    subject: str,
    html: str | None,
    text: str | None,
    from_email: str | None,
    from_name: str | None,
    reply_to: Recipients | None,
    cc: Recipients | None,
    bcc: Recipients | None,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
    extra_body: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None = None,
    list_unsubscribe: str | Sequence[str] | None = None,
    attachments: Sequence[AttachmentParams | Mapping[str, Any]] | None = None,
    scheduled_at: datetime | str | None = None,
) -> dict[str, Any]:
    """The ``/send`` body; fields left as None are left out (the server's defaults apply)."""
    body: dict[str, Any] = {}
    if attachments is not None:
        body["attachments"] = wire_attachments(attachments)
    if scheduled_at is not None:
        body["scheduled_at"] = wire_time(scheduled_at)
    for name, value in (
        ("to", to),
        ("subject", subject),
        ("html", html),
        ("text", text),
        ("from_email", from_email),
        ("from_name", from_name),
        ("reply_to", reply_to),
        ("cc", cc),
        ("bcc", bcc),
        ("tags", tags),
        ("metadata", metadata),
        ("headers", headers),
        ("list_unsubscribe", list_unsubscribe),
    ):
        _set(body, name, value)
    body.update(extra_body or {})
    return body


def batch_body(
    *,
    messages: Sequence[MessageParams | Mapping[str, Any]],
    from_email: str | None,
    from_name: str | None,
    reply_to: Recipients | None,
    tags: Sequence[str] | None,
    metadata: Mapping[str, Any] | None,
    extra_body: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None = None,
    list_unsubscribe: str | Sequence[str] | None = None,
    scheduled_at: datetime | str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [_wire_item(message) for message in messages]}
    if scheduled_at is not None:
        body["scheduled_at"] = wire_time(scheduled_at)
    for name, value in (
        ("from_email", from_email),
        ("from_name", from_name),
        ("reply_to", reply_to),
        ("tags", tags),
        ("metadata", metadata),
        ("headers", headers),
        ("list_unsubscribe", list_unsubscribe),
    ):
        _set(body, name, value)
    body.update(extra_body or {})
    return body


def _wire_item(message: MessageParams | Mapping[str, Any]) -> dict[str, Any]:
    item = dict(message)
    if item.get("attachments") is not None:
        item["attachments"] = wire_attachments(item["attachments"])
    if item.get("scheduled_at") is not None:
        item["scheduled_at"] = wire_time(item["scheduled_at"])
    return item


def cancel_path(message_id: str) -> str:
    return "api/v1/mail/cancel/" + quote(message_id, safe="")


def status_path(message_id: str) -> str:
    # Encoded whole: a Message-ID holds "<", "@", ">" and may hold "/".
    return f"api/v1/mail/status/{quote(message_id, safe='')}"


SUPPRESSIONS_PATH = "api/v1/suppressions"


def suppressions_path(limit: int | None, cursor: str | None, search: str | None) -> str:
    """The list's path with the query parameters given."""
    query = {"limit": limit, "cursor": cursor, "search": search}
    given = {name: value for name, value in query.items() if value is not None}
    return SUPPRESSIONS_PATH + ("?" + urlencode(given) if given else "")


def suppression_path(email: str) -> str:
    return f"{SUPPRESSIONS_PATH}/{quote(email, safe='@')}"


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One logical call: the same request, byte for byte and with the same idempotency key,
    on every try."""

    method: str
    path: str
    content: bytes | None = None
    idempotency_key: str | None = None

    @classmethod
    def post(cls, path: str, body: Mapping[str, Any], idempotency_key: str | None) -> ApiCall:
        return cls(
            "POST",
            path,
            json.dumps(body, ensure_ascii=False).encode(),
            idempotency_key or str(uuid.uuid4()),
        )

    @classmethod
    def with_body(cls, method: str, path: str, body: Mapping[str, Any]) -> ApiCall:
        """A call with a JSON body and no idempotency key (the server keeps answers by key
        only for the mail endpoints)."""
        return cls(method, path, json.dumps(body, ensure_ascii=False).encode())

    def may_resend(self, error: httpx.TransportError) -> bool:
        """Whether a try that got no answer may be made again: always for a read, a change that
        is the same made twice (PATCH) or a call with an idempotency key; otherwise only when
        the request never left (the connection was not made), since it may have been done."""
        if self.method in ("GET", "PATCH") or self.idempotency_key is not None:
            return True
        return isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.content is not None:
            headers["Content-Type"] = "application/json"
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        return headers


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed try is worth another, and how long to wait before it.

    Retried: no answer at all (refused, dropped, timed out: with the call's idempotency key a
    retry never sends twice), 408 (the body stalled on its way), 429 (after its Retry-After),
    409 IDEMPOTENCY_IN_PROGRESS (the
    first try is still running), and 5xx other than SEND_FAILED. Never retried: an answer
    the server replayed for the key, which another try would only replay again.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff: float = DEFAULT_RETRY_BACKOFF

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff < 0:
            raise ConfigurationError("max_retries and retry_backoff must not be negative")

    def delay(self, attempt: int, retry_after: int | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1 for the first)."""
        if retry_after is not None:
            return float(retry_after)
        delay: float = min(self.backoff * 2.0 ** (attempt - 1), MAX_RETRY_BACKOFF)
        return delay * (1 + random.uniform(0, MAX_RETRY_JITTER))

    def after_response(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying this error answer, or None to give up."""
        if attempt > self.max_retries or response.headers.get(REPLAYED_HEADER) == "true":
            return None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        code = _error_code(response)
        if response.status_code == 409:
            retried = code == "IDEMPOTENCY_IN_PROGRESS"
        else:
            retried = response.status_code in RETRIED_STATUSES and code not in FINAL_ERROR_CODES
        if not retried:
            return None
        if retry_after is not None and retry_after > MAX_RETRY_AFTER:
            return None
        return self.delay(attempt, retry_after)

    def after_transport_error(self, attempt: int) -> float | None:
        if attempt > self.max_retries:
            return None
        return self.delay(attempt)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def transport_error(error: httpx.TransportError) -> MailPassError:
    """httpx's failure as ours; the original is the ``__cause__``."""
    if isinstance(error, httpx.TimeoutException):
        return APITimeoutError(f"no answer from the MailPass server in time: {error!r}")
    return APIConnectionError(f"could not talk to the MailPass server: {error!r}")


def result_data(response: httpx.Response) -> tuple[dict[str, Any], bool]:
    """The ``data`` of a successful answer and whether it was replayed; raises the error an
    error answer stands for."""
    replayed = response.headers.get(REPLAYED_HEADER) == "true"
    if not response.is_success:
        raise error_from_response(response, replayed=replayed)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("success") is not True:
        raise error_from_response(response, replayed=replayed)
    data = body.get("data")
    if not isinstance(data, dict):
        raise error_from_response(response, replayed=replayed)
    return data, replayed
