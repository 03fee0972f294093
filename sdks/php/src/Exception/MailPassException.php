<?php

declare(strict_types=1);

namespace MailPass\Exception;

/** Every error of the SDK. */
class MailPassException extends \RuntimeException
{
}
