<?php

declare(strict_types=1);

namespace MailPass\Exception;

/** The provider refused the message: `getSmtpCode()` and `getSmtpReply()` say how. */
class SendFailedException extends ApiException
{
    public function getSmtpCode(): ?int
    {
        $code = $this->getDetails()[0]['smtp_code'] ?? null;
        return is_int($code) ? $code : null;
    }

    public function getSmtpReply(): ?string
    {
        $reply = $this->getDetails()[0]['smtp_reply'] ?? null;
        return is_string($reply) ? $reply : null;
    }
}
