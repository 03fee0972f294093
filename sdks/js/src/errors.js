// Every error the MailPass API can answer is a class of its own, all under MailPassError.

export class MailPassError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** The client is set up wrong (no API key, a bad base URL). */
export class ConfigurationError extends MailPassError {}

/** No answer came: the connection was refused or dropped. */
export class APIConnectionError extends MailPassError {}

/** No answer came in time. */
export class APITimeoutError extends APIConnectionError {}

/** The server answered with an error in its envelope. */
export class APIError extends MailPassError {
  constructor(message, { status, code, details, retryAfter, replayed }) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details ?? [];
    this.retryAfter = retryAfter ?? null;
    this.replayed = Boolean(replayed);
  }
}

export class ValidationError extends APIError {}
export class UnauthorizedError extends APIError {}
export class ForbiddenError extends APIError {}
export class NotFoundError extends APIError {}
export class MethodNotAllowedError extends APIError {}
export class IdempotencyConflictError extends APIError {}
export class IdempotencyInProgressError extends APIError {}
export class NotCancellableError extends APIError {}
export class RequestTimeoutError extends APIError {}
export class PayloadTooLargeError extends APIError {}
export class HeadersTooLargeError extends APIError {}
export class NoSmtpProviderError extends APIError {}
export class RecipientSuppressedError extends APIError {}
export class SendLimitExceededError extends APIError {}
export class RateLimitedError extends APIError {}
export class InternalServerError extends APIError {}
export class ServiceUnavailableError extends APIError {}

/** The provider refused the message: `smtpCode` and `smtpReply` say how. */
export class SendFailedError extends APIError {
  constructor(message, fields) {
    super(message, fields);
    const first = this.details[0] ?? {};
    this.smtpCode = first.smtp_code ?? null;
    this.smtpReply = first.smtp_reply ?? null;
  }
}

export const ERROR_CLASSES = {
  VALIDATION_ERROR: ValidationError,
  UNAUTHORIZED: UnauthorizedError,
  FORBIDDEN: ForbiddenError,
  NOT_FOUND: NotFoundError,
  METHOD_NOT_ALLOWED: MethodNotAllowedError,
  IDEMPOTENCY_CONFLICT: IdempotencyConflictError,
  IDEMPOTENCY_IN_PROGRESS: IdempotencyInProgressError,
  NOT_CANCELLABLE: NotCancellableError,
  REQUEST_TIMEOUT: RequestTimeoutError,
  PAYLOAD_TOO_LARGE: PayloadTooLargeError,
  HEADERS_TOO_LARGE: HeadersTooLargeError,
  NO_SMTP_PROVIDER: NoSmtpProviderError,
  RECIPIENT_SUPPRESSED: RecipientSuppressedError,
  SEND_LIMIT_EXCEEDED: SendLimitExceededError,
  RATE_LIMITED: RateLimitedError,
  SEND_FAILED: SendFailedError,
  INTERNAL_ERROR: InternalServerError,
  SERVICE_UNAVAILABLE: ServiceUnavailableError,
};

// An answer without the envelope (a proxy's error page): the class its HTTP status stands for.
const BY_STATUS = {
  400: ValidationError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  405: MethodNotAllowedError,
  408: RequestTimeoutError,
  413: PayloadTooLargeError,
  429: RateLimitedError,
  431: HeadersTooLargeError,
  503: ServiceUnavailableError,
};

/** The error an answer stands for. */
export function errorFromAnswer(status, body, { retryAfter, replayed }) {
  const error = body && typeof body === 'object' ? body.error : null;
  if (error && typeof error === 'object' && typeof error.code === 'string') {
    const Class = ERROR_CLASSES[error.code] ?? APIError;
    return new Class(String(error.message ?? error.code), {
      status,
      code: error.code,
      details: Array.isArray(error.details) ? error.details : [],
      retryAfter,
      replayed,
    });
  }
  const Class = BY_STATUS[status] ?? (status >= 500 ? InternalServerError : APIError);
  return new Class(`HTTP ${status} without MailPass's error envelope`, {
    status,
    code: null,
    details: [],
    retryAfter,
    replayed,
  });
}
