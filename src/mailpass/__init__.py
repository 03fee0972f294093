"""MailPass: self-hosted transactional e-mail.

``import mailpass`` gives the Python SDK (``mailpass.Client``, ``mailpass.AsyncClient`` and
their exceptions) and stays import-light on purpose: it loads httpx, never the server's own
dependencies (FastAPI, SQLAlchemy, pydantic, aiosmtplib), which only ``mailpass.api`` and the
other server packages import.
"""

# Set before the client is imported: the client's User-Agent reads it.
__version__ = "0.1.0"

from mailpass.client import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AsyncClient,
    BatchItem,
    BatchResult,
    Client,
    ConfigurationError,
    Event,
    ForbiddenError,
    IdempotencyConflictError,
    IdempotencyInProgressError,
    InternalServerError,
    MailPassError,
    Message,
    MessageStatus,
    MethodNotAllowedError,
    NoSmtpProviderError,
    NotFoundError,
    PayloadTooLargeError,
    SendFailedError,
    SendLimitExceededError,
    SentMessage,
    UnauthorizedError,
    ValidationError,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncClient",
    "BatchItem",
    "BatchResult",
    "Client",
    "ConfigurationError",
    "Event",
    "ForbiddenError",
    "IdempotencyConflictError",
    "IdempotencyInProgressError",
    "InternalServerError",
    "MailPassError",
    "Message",
    "MessageStatus",
    "MethodNotAllowedError",
    "NoSmtpProviderError",
    "NotFoundError",
    "PayloadTooLargeError",
    "SendFailedError",
    "SendLimitExceededError",
    "SentMessage",
    "UnauthorizedError",
    "ValidationError",
    "__version__",
]
