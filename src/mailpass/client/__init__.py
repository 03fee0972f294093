"""The MailPass Python SDK. It needs httpx and nothing of the server::

    from mailpass import Client

    client = Client("mp_live_YOUR_KEY")
    result = client.mail.send(to="user@example.com", subject="Hello", html="<p>Hello World</p>")
    print(result.message_id)

``AsyncClient`` is its ``asyncio`` twin. Every error the API can answer is an exception of its
own, all under ``MailPassError`` (the tree is drawn in ``mailpass.client._exceptions``).
"""

from mailpass.client._base import API_KEY_ENV, API_URL_ENV, DEFAULT_BASE_URL
from mailpass.client._client import (
    AsyncClient,
    AsyncMail,
    AsyncSuppressions,
    Client,
    Mail,
    Suppressions,
)
from mailpass.client._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    ForbiddenError,
    HeadersTooLargeError,
    IdempotencyConflictError,
    IdempotencyInProgressError,
    InternalServerError,
    MailPassError,
    MethodNotAllowedError,
    NoSmtpProviderError,
    NotCancellableError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RecipientSuppressedError,
    RequestTimeoutError,
    SendFailedError,
    SendLimitExceededError,
    ServiceUnavailableError,
    UnauthorizedError,
    ValidationError,
)
from mailpass.client._models import (
    AttachmentInfo,
    BatchItem,
    BatchResult,
    CancelledMessage,
    Event,
    IgnoredFieldsWarning,
    Message,
    MessageStatus,
    SentMessage,
    Suppression,
    SuppressionPage,
)
from mailpass.client._types import AttachmentParams, MessageParams, Recipients

__all__ = [
    "API_KEY_ENV",
    "API_URL_ENV",
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncMail",
    "AsyncSuppressions",
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
    "Mail",
    "MailPassError",
    "Message",
    "MessageParams",
    "MessageStatus",
    "MethodNotAllowedError",
    "NoSmtpProviderError",
    "NotCancellableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RecipientSuppressedError",
    "Recipients",
    "RequestTimeoutError",
    "SendFailedError",
    "SendLimitExceededError",
    "SentMessage",
    "ServiceUnavailableError",
    "Suppression",
    "SuppressionPage",
    "Suppressions",
    "UnauthorizedError",
    "ValidationError",
]
