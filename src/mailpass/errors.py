"""The API's error codes (from the seed document) as exceptions.

Every error a client can see is an ``ApiError``: it knows its code, its HTTP status and how to
render itself in the seed's envelope ``{"success": false, "error": {...}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ApiError",
    "Forbidden",
    "HeadersTooLarge",
    "IdempotencyConflict",
    "IdempotencyInProgress",
    "InternalError",
    "MethodNotAllowed",
    "NoSmtpProvider",
    "NotCancellable",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RecipientSuppressed",
    "RequestTimeout",
    "SendFailed",
    "SendLimitExceeded",
    "ServiceUnavailable",
    "Unauthorized",
    "ValidationError",
]


class ApiError(Exception):
    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"success": False, "error": error}


class ValidationError(ApiError):
    code = "VALIDATION_ERROR"
    http_status = 400


class Unauthorized(ApiError):
    code = "UNAUTHORIZED"
    http_status = 401


class Forbidden(ApiError):
    code = "FORBIDDEN"
    http_status = 403


class NotFound(ApiError):
    code = "NOT_FOUND"
    http_status = 404


class MethodNotAllowed(ApiError):
    code = "METHOD_NOT_ALLOWED"
    http_status = 405


class IdempotencyConflict(ApiError):
    """An ``Idempotency-Key`` reused with another request than the one it was first sent with."""

    code = "IDEMPOTENCY_CONFLICT"
    http_status = 409


class IdempotencyInProgress(ApiError):
    """The first request with this ``Idempotency-Key`` has not answered yet."""

    code = "IDEMPOTENCY_IN_PROGRESS"
    http_status = 409


class NotCancellable(ApiError):
    """A message asked to be cancelled that is no longer waiting in the queue."""

    code = "NOT_CANCELLABLE"
    http_status = 409


class RequestTimeout(ApiError):
    """The request's body did not arrive in time."""

    code = "REQUEST_TIMEOUT"
    http_status = 408


class PayloadTooLarge(ApiError):
    code = "PAYLOAD_TOO_LARGE"
    http_status = 413


class HeadersTooLarge(ApiError):
    """The request's header fields are larger than the server takes."""

    code = "HEADERS_TOO_LARGE"
    http_status = 431

    @classmethod
    def over(cls, max_bytes: int) -> HeadersTooLarge:
        return cls(f"the request's header fields are larger than {max_bytes} bytes")


class NoSmtpProvider(ApiError):
    code = "NO_SMTP_PROVIDER"
    http_status = 422


class RecipientSuppressed(ApiError):
    """A ``to`` recipient is on the account's suppression list: nothing was sent. ``details``
    name each such address and why it is there."""

    code = "RECIPIENT_SUPPRESSED"
    http_status = 422


class SendLimitExceeded(ApiError):
    code = "SEND_LIMIT_EXCEEDED"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(
            message,
            details=[{"retry_after": retry_after}],
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


class RateLimited(ApiError):
    """Too many requests from one client address failed authentication, or one key made more
    requests than ``MAILPASS_KEY_RATE_LIMIT`` allows: it waits ``retry_after`` seconds."""

    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(
            message,
            details=[{"retry_after": retry_after}],
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


class SendFailed(ApiError):
    code = "SEND_FAILED"
    http_status = 500


class InternalError(ApiError):
    code = "INTERNAL_ERROR"
    http_status = 500


class ServiceUnavailable(ApiError):
    """Something MailPass cannot work without (its database) is unreachable for now: nothing
    was done, and the same request may be sent again after ``retry_after`` seconds."""

    code = "SERVICE_UNAVAILABLE"
    http_status = 503

    def __init__(
        self, message: str, *, retry_after: int, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, details=details, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after
