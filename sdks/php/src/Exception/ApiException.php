<?php

declare(strict_types=1);

namespace MailPass\Exception;

/**
 * The server answered with an error in its envelope: `getErrorCode()` is its code
 * (`VALIDATION_ERROR`, …), `getStatus()` the HTTP status, `getDetails()` the details.
 */
class ApiException extends MailPassException
{
    /** @param list<array<string, mixed>> $details */
    public function __construct(
        string $message,
        private readonly int $status,
        private readonly ?string $errorCode,
        private readonly array $details = [],
        private readonly ?int $retryAfter = null,
        private readonly bool $replayed = false,
    ) {
        parent::__construct($message, $status);
    }

    public function getStatus(): int
    {
        return $this->status;
    }

    public function getErrorCode(): ?string
    {
        return $this->errorCode;
    }

    /** @return list<array<string, mixed>> */
    public function getDetails(): array
    {
        return $this->details;
    }

    /** Seconds to wait, from Retry-After. */
    public function getRetryAfter(): ?int
    {
        return $this->retryAfter;
    }

    /** Whether this is the stored answer of an earlier request with the same idempotency key. */
    public function isReplayed(): bool
    {
        return $this->replayed;
    }
}
