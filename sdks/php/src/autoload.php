<?php

declare(strict_types=1);

// For use without Composer: `require 'path/to/sdks/php/src/autoload.php';`. With Composer, its
// own PSR-4 autoloader does the same.
spl_autoload_register(static function (string $class): void {
    $prefix = 'MailPass\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
