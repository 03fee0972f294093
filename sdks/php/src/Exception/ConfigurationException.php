<?php

declare(strict_types=1);

namespace MailPass\Exception;

class ConfigurationException extends MailPassException
{
}
