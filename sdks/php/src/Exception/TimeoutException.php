<?php

declare(strict_types=1);

namespace MailPass\Exception;

/** No answer came in time. */
class TimeoutException extends ConnectionException
{
}
