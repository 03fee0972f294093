<?php

declare(strict_types=1);

namespace MailPass;


/** @internal The exception an error answer stands for. */
final class Errors
{
    public const CLASSES = [
        'VALIDATION_ERROR' => Exception\ValidationException::class,
        'UNAUTHORIZED' => Exception\UnauthorizedException::class,
        'FORBIDDEN' => Exception\ForbiddenException::class,
        'NOT_FOUND' => Exception\NotFoundException::class,
        'METHOD_NOT_ALLOWED' => Exception\MethodNotAllowedException::class,
        'IDEMPOTENCY_CONFLICT' => Exception\IdempotencyConflictException::class,
        'IDEMPOTENCY_IN_PROGRESS' => Exception\IdempotencyInProgressException::class,
        'NOT_CANCELLABLE' => Exception\NotCancellableException::class,
        'REQUEST_TIMEOUT' => Exception\RequestTimeoutException::class,
        'PAYLOAD_TOO_LARGE' => Exception\PayloadTooLargeException::class,
        'HEADERS_TOO_LARGE' => Exception\HeadersTooLargeException::class,
        'NO_SMTP_PROVIDER' => Exception\NoSmtpProviderException::class,
        'RECIPIENT_SUPPRESSED' => Exception\RecipientSuppressedException::class,
        'SEND_LIMIT_EXCEEDED' => Exception\SendLimitExceededException::class,
        'RATE_LIMITED' => Exception\RateLimitedException::class,
        'SEND_FAILED' => Exception\SendFailedException::class,
        'INTERNAL_ERROR' => Exception\InternalServerException::class,
        'SERVICE_UNAVAILABLE' => Exception\ServiceUnavailableException::class,
    ];

    // An answer without the envelope (a proxy's error page): the class its status stands for.
    private const BY_STATUS = [
        400 => Exception\ValidationException::class,
        401 => Exception\UnauthorizedException::class,
        403 => Exception\ForbiddenException::class,
        404 => Exception\NotFoundException::class,
        405 => Exception\MethodNotAllowedException::class,
        408 => Exception\RequestTimeoutException::class,
        413 => Exception\PayloadTooLargeException::class,
        429 => Exception\RateLimitedException::class,
        431 => Exception\HeadersTooLargeException::class,
        503 => Exception\ServiceUnavailableException::class,
    ];

    public static function fromAnswer(int $status, mixed $parsed, ?int $retryAfter, bool $replayed): Exception\ApiException
    {
        $error = is_array($parsed) ? ($parsed['error'] ?? null) : null;
        if (is_array($error) && is_string($error['code'] ?? null)) {
            $class = self::CLASSES[$error['code']] ?? Exception\ApiException::class;
            $details = is_array($error['details'] ?? null) ? array_values($error['details']) : [];
            return new $class((string) ($error['message'] ?? $error['code']), $status, $error['code'], $details, $retryAfter, $replayed);
        }
        $class = self::BY_STATUS[$status] ?? ($status >= 500 ? Exception\InternalServerException::class : Exception\ApiException::class);
        return new $class("HTTP {$status} without MailPass's error envelope", $status, null, [], $retryAfter, $replayed);
    }
}
