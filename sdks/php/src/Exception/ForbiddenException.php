<?php

declare(strict_types=1);

namespace MailPass\Exception;

class ForbiddenException extends ApiException
{
}
