"""MailPass: self-hosted transactional e-mail.

``import mailpass`` gives the Python SDK (``mailpass.Client``, ``mailpass.AsyncClient`` and
their exceptions) and stays import-light on purpose: using it loads httpx, never the server's
own dependencies (FastAPI, SQLAlchemy, pydantic, aiosmtplib), which only ``mailpass.api`` and
the other server packages import.
"""

from typing import TYPE_CHECKING, Any

from mailpass.client._version import __version__

if TYPE_CHECKING:
    from mailpass.client import (
        APIConnectionError,
        APIError,
        ApiKey,
        APITimeoutError,
        AsyncClient,
        AttachmentInfo,
        AttachmentParams,
        BatchItem,
        BatchResult,
        CancelledMessage,
        Client,
        ConfigurationError,
        Event,
        ForbiddenError,
        HeadersTooLargeError,
        IdempotencyConflictError,
        IdempotencyInProgressError,
        IgnoredFieldsWarning,
        InternalServerError,
        MailPassError,
        Message,
        MessageStatus,
        MethodNotAllowedError,
        NoSmtpProviderError,
        NotCancellableError,
        NotFoundError,
        PayloadTooLargeError,
        Provider,
        ProviderTest,
        RateLimitedError,
        RecipientSuppressedError,
        RequestTimeoutError,
        SendFailedError,
        SendLimitExceededError,
        SentMessage,
        ServiceUnavailableError,
        Suppression,
        SuppressionPage,
        UnauthorizedError,
        ValidationError,
        WebhookDelivery,
        WebhookEndpoint,
    )


# The SDK is loaded on first use (``mailpass.Client``, ``from mailpass import Client``): the
# server, its workers and the CLI, which import ``mailpass.<package>``, then never load httpx
# and the client (a tenth of a worker's start-up).
def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from mailpass import client

        return getattr(client, name)
    raise AttributeError(f"module 'mailpass' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "ApiKey",
    "AsyncClient",
    "AttachmentInfo",
    "AttachmentParams",
    "BatchItem",
    "BatchResult",
    "CancelledMessage",
    "Client",
    "ConfigurationError",
    "Event",
    "ForbiddenError",
    "HeadersTooLargeError",
    "IdempotencyConflictError",
    "IdempotencyInProgressError",
    "IgnoredFieldsWarning",
    "InternalServerError",
    "MailPassError",
    "Message",
    "MessageStatus",
    "MethodNotAllowedError",
    "NoSmtpProviderError",
    "NotCancellableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "Provider",
    "ProviderTest",
    "RateLimitedError",
    "RecipientSuppressedError",
    "RequestTimeoutError",
    "SendFailedError",
    "SendLimitExceededError",
    "SentMessage",
    "ServiceUnavailableError",
    "Suppression",
    "SuppressionPage",
    "UnauthorizedError",
    "ValidationError",
    "WebhookDelivery",
    "WebhookEndpoint",
    "__version__",
]
