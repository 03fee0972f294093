<?php

declare(strict_types=1);

namespace MailPass\Exception;

class RequestTimeoutException extends ApiException
{
}
