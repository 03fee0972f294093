<?php

declare(strict_types=1);

namespace MailPass\Exception;

/** The delivery is not MailPass's, was altered, or is too old; the message says which. */
class WebhookVerificationException extends MailPassException
{
}
