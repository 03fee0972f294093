"""What the client raises. Every exception is a ``MailPassError``::

    MailPassError
    ├── ConfigurationError (also ValueError)       no API key, or an unusable base URL
    ├── APIConnectionError (also ConnectionError)  no answer: refused, dropped, unreachable
    │   └── APITimeoutError (also TimeoutError)    no answer within the timeout
    └── APIError                                   the server answered with an error
        ├── ValidationError              400 VALIDATION_ERROR   .details names each field
        ├── UnauthorizedError            401 UNAUTHORIZED
        ├── ForbiddenError               403 FORBIDDEN
        ├── NotFoundError                404 NOT_FOUND
        ├── MethodNotAllowedError        405 METHOD_NOT_ALLOWED
        ├── RequestTimeoutError          408 REQUEST_TIMEOUT
        ├── IdempotencyConflictError     409 IDEMPOTENCY_CONFLICT
        ├── IdempotencyInProgressError   409 IDEMPOTENCY_IN_PROGRESS
        ├── NotCancellableError          409 NOT_CANCELLABLE      the message left the queue
        ├── PayloadTooLargeError         413 PAYLOAD_TOO_LARGE
        ├── HeadersTooLargeError         431 HEADERS_TOO_LARGE
        ├── NoSmtpProviderError          422 NO_SMTP_PROVIDER
        ├── RateLimitedError             429 RATE_LIMITED         .retry_after
        ├── SendLimitExceededError       429 SEND_LIMIT_EXCEEDED  .retry_after
        ├── SendFailedError              500 SEND_FAILED          .smtp_code, .smtp_reply,
        │                                                         .provider_down_until
        ├── InternalServerError          500 INTERNAL_ERROR
        └── ServiceUnavailableError      503 SERVICE_UNAVAILABLE  .retry_after

An answer with a code this client does not know yet, or one that is not in MailPass's envelope
at all (a proxy's 502 page), is a plain ``APIError``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "ConfigurationError",
    "ForbiddenError",
    "HeadersTooLargeError",
    "IdempotencyConflictError",
    "IdempotencyInProgressError",
    "InternalServerError",
    "MailPassError",
    "MethodNotAllowedError",
    "NoSmtpProviderError",
    "NotCancellableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RecipientSuppressedError",
    "RequestTimeoutError",
    "SendFailedError",
    "SendLimitExceededError",
    "ServiceUnavailableError",
    "UnauthorizedError",
    "ValidationError",
    "error_from_response",
    "parse_retry_after",
]


class MailPassError(Exception):
    """The base of everything this client raises."""


class ConfigurationError(MailPassError, ValueError):
    """The client cannot be used as configured (no API key, a base URL that is not HTTP)."""


class APIConnectionError(MailPassError, ConnectionError):
    """No answer from the server: the connection was refused, dropped or never made."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """No answer within the configured timeout."""


class APIError(MailPassError):
    """The server answered with an error.

    ``code`` is the envelope's error code (None when the answer was not in MailPass's
    envelope), ``message`` its text for people, ``details`` its details (e.g. one
    ``{"field", "message"}`` per invalid field), ``status_code`` the HTTP status, and
    ``replayed`` whether the server replayed the stored answer of an earlier request with the
    same idempotency key.
    """

    code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        response: httpx.Response | None = None,
        replayed: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        if code is not None:
            self.code = code  # type: ignore[misc]  # a code this client has no class for
        self.details: list[dict[str, Any]] = details or []
        self.response = response
        self.replayed = replayed

    def __str__(self) -> str:
        return f"{self.code or f'HTTP {self.status_code}'}: {self.message}"


class ValidationError(APIError):
    code = "VALIDATION_ERROR"


class UnauthorizedError(APIError):
    code = "UNAUTHORIZED"


class ForbiddenError(APIError):
    code = "FORBIDDEN"


class NotFoundError(APIError):
    code = "NOT_FOUND"


class MethodNotAllowedError(APIError):
    code = "METHOD_NOT_ALLOWED"


class IdempotencyConflictError(APIError):
    """The idempotency key was first used for another request; use a new key."""

    code = "IDEMPOTENCY_CONFLICT"


class IdempotencyInProgressError(APIError):
    """The first request with this idempotency key is still running."""

    code = "IDEMPOTENCY_IN_PROGRESS"


class NotCancellableError(APIError):
    """``mail.cancel``: the message is no longer waiting in the queue (being sent, sent or
    failed); ``details`` says its status."""

    code = "NOT_CANCELLABLE"


class RequestTimeoutError(APIError):
    """The request's body stopped arriving before the server had all of it (a stalled
    network); nothing was done."""

    code = "REQUEST_TIMEOUT"


class PayloadTooLargeError(APIError):
    code = "PAYLOAD_TOO_LARGE"


class HeadersTooLargeError(APIError):
    """The request's header fields are larger than the server takes."""

    code = "HEADERS_TOO_LARGE"


class NoSmtpProviderError(APIError):
    code = "NO_SMTP_PROVIDER"


class RecipientSuppressedError(APIError):
    """A ``to`` recipient is on the account's suppression list: nothing was sent. ``details``
    names each (``email``, ``reason``)."""

    code = "RECIPIENT_SUPPRESSED"

    @property
    def suppressed(self) -> tuple[str, ...]:
        return tuple(str(item.get("email")) for item in self.details if isinstance(item, dict))


class RateLimitedError(APIError):
    """Too many requests from this client's address failed authentication (a wrong key, sent
    again and again); ``retry_after``: seconds until the server lets it try again."""

    code = "RATE_LIMITED"

    @property
    def retry_after(self) -> int | None:
        for detail in self.details:
            if isinstance(detail.get("retry_after"), int):
                return int(detail["retry_after"])
        if self.response is not None:
            return parse_retry_after(self.response.headers.get("retry-after"))
        return None


class SendLimitExceededError(APIError):
    """The provider's hourly or daily limit is reached; ``retry_after``: seconds until a slot
    frees (None if the server did not say)."""

    code = "SEND_LIMIT_EXCEEDED"

    @property
    def retry_after(self) -> int | None:
        for detail in self.details:
            if isinstance(detail.get("retry_after"), int):
                return int(detail["retry_after"])
        if self.response is not None:
            return parse_retry_after(self.response.headers.get("retry-after"))
        return None


class SendFailedError(APIError):
    """The provider refused the message or could not be reached. ``smtp_code`` and
    ``smtp_reply`` are the provider's reply (``smtp_code`` is None when it never answered)."""

    code = "SEND_FAILED"

    @property
    def smtp_code(self) -> int | None:
        for detail in self.details:
            if isinstance(detail.get("smtp_code"), int):
                return int(detail["smtp_code"])
        return None

    @property
    def smtp_reply(self) -> str | None:
        for detail in self.details:
            if isinstance(detail.get("smtp_reply"), str):
                return str(detail["smtp_reply"])
        return None

    @property
    def provider_down_until(self) -> datetime | None:
        """Set when the message was refused at once because its provider is marked down
        (it stopped answering): when it will be tried again. Queued mail waits for it."""
        for detail in self.details:
            if detail.get("provider_state") == "down" and isinstance(detail.get("down_until"), str):
                return datetime.fromisoformat(detail["down_until"]).replace(tzinfo=UTC)
        return None


class InternalServerError(APIError):
    code = "INTERNAL_ERROR"


class ServiceUnavailableError(APIError):
    """The server's database cannot be reached for now; nothing was done. The client retries
    it by itself (``max_retries``); ``retry_after``: seconds the server asked to wait."""

    code = "SERVICE_UNAVAILABLE"

    @property
    def retry_after(self) -> int | None:
        if self.response is not None:
            return parse_retry_after(self.response.headers.get("retry-after"))
        return None


_BY_CODE: dict[str, type[APIError]] = {
    cls.code: cls
    for cls in (
        ValidationError,
        UnauthorizedError,
        ForbiddenError,
        NotFoundError,
        MethodNotAllowedError,
        RequestTimeoutError,
        IdempotencyConflictError,
        IdempotencyInProgressError,
        NotCancellableError,
        PayloadTooLargeError,
        HeadersTooLargeError,
        NoSmtpProviderError,
        RecipientSuppressedError,
        RateLimitedError,
        SendLimitExceededError,
        SendFailedError,
        InternalServerError,
        ServiceUnavailableError,
    )
    if cls.code is not None
}


def parse_retry_after(value: str | None) -> int | None:
    """``Retry-After`` in seconds; None for an absent header or an HTTP date."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def error_from_response(response: httpx.Response, *, replayed: bool = False) -> APIError:
    """The exception for an error answer, from its envelope when it has one."""
    error: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("success") is False:
        error = body.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        text = response.text.strip()[:200] or response.reason_phrase
        return APIError(
            f"unexpected answer from the server: {text}",
            status_code=response.status_code,
            response=response,
            replayed=replayed,
        )
    code: str = error["code"]
    raw_details = error.get("details")
    details = (
        [d for d in raw_details if isinstance(d, dict)] if isinstance(raw_details, list) else []
    )
    message = str(error.get("message") or code)
    cls = _BY_CODE.get(code)
    if cls is None:
        return APIError(
            message,
            status_code=response.status_code,
            code=code,
            details=details,
            response=response,
            replayed=replayed,
        )
    return cls(
        message,
        status_code=response.status_code,
        details=details,
        response=response,
        replayed=replayed,
    )
