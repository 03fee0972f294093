<?php

declare(strict_types=1);

namespace MailPass;

use MailPass\Exception\ApiException;
use MailPass\Exception\ConfigurationException;
use MailPass\Exception\ConnectionException;
use MailPass\Exception\TimeoutException;

/**
 * The MailPass API client:
 *
 *     $client = new MailPass\Client('mp_live_YOUR_KEY');
 *     $result = $client->mail->send(['to' => 'user@example.com', 'subject' => 'Hello', 'html' => '<p>Hi</p>']);
 *     echo $result['data']['message_id'];
 *
 * Calls return the answer's envelope as an array (`['success' => true, 'data' => [...]]`); an
 * error answer throws the exception of its code (`MailPass\Exception\ValidationException`, …).
 *
 * The key defaults to `$MAILPASS_API_KEY`, the `base_url` option to `$MAILPASS_API_URL` (else
 * http://127.0.0.1:8000). A call is retried up to `max_retries` times (default 2) when no
 * answer came, on 408, 429 (after its Retry-After), IDEMPOTENCY_IN_PROGRESS and 5xx other than
 * SEND_FAILED; every try of a send carries the same Idempotency-Key, so a retry never sends twice.
 */
final class Client
{
    public const VERSION = '0.1.0';
    public const DEFAULT_BASE_URL = 'http://127.0.0.1:8000';
    private const API = '/api/v1';
    private const RETRIED_STATUSES = [408, 429, 500, 502, 503, 504];
    private const MAX_RETRY_AFTER = 60;
    private const MAX_BACKOFF = 8.0;
    // curl's errors for a connection that was never made: the request did not leave.
    private const UNSENT_ERRORS = [CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT];

    public readonly Mail $mail;
    public readonly Suppressions $suppressions;
    public readonly Providers $providers;
    public readonly Keys $keys;
    public readonly Webhooks $webhooks;

    private readonly string $apiKey;
    private readonly string $baseUrl;
    private readonly float $timeout;
    private readonly int $maxRetries;
    private readonly float $retryBackoff;
    /** @var \Closure(list<string>): void */
    private readonly \Closure $onIgnoredFields;

    /**
     * @param array{base_url?: string, timeout?: float, max_retries?: int, retry_backoff?: float,
     *               on_ignored_fields?: callable(list<string>): void} $options
     *        timeout and retry_backoff in seconds; on_ignored_fields hears of request fields the
     *        server did not know (a typo), which are also in the answer's `ignored_fields`
     *        (default: error_log)
     */
    public function __construct(?string $apiKey = null, array $options = [])
    {
        $key = $apiKey ?? (getenv('MAILPASS_API_KEY') ?: null);
        if ($key === null || $key === '') {
            throw new ConfigurationException('no API key: pass one, or set MAILPASS_API_KEY');
        }
        $base = $options['base_url'] ?? (getenv('MAILPASS_API_URL') ?: self::DEFAULT_BASE_URL);
        $scheme = parse_url($base, PHP_URL_SCHEME);
        if (!in_array($scheme, ['http', 'https'], true) || parse_url($base, PHP_URL_HOST) === null) {
            throw new ConfigurationException("the base URL {$base} is not an http:// or https:// URL");
        }
        $this->apiKey = $key;
        $this->baseUrl = rtrim($base, '/');
        $this->timeout = (float) ($options['timeout'] ?? 60.0);
        $this->maxRetries = (int) ($options['max_retries'] ?? 2);
        $this->retryBackoff = (float) ($options['retry_backoff'] ?? 0.5);
        if ($this->maxRetries < 0 || $this->retryBackoff < 0) {
            throw new ConfigurationException('max_retries and retry_backoff must not be negative');
        }
        $this->onIgnoredFields = \Closure::fromCallable($options['on_ignored_fields'] ?? static function (array $fields): void {
            error_log('MailPass ignored these fields of the request: ' . implode(', ', $fields));
        });
        $this->mail = new Mail($this);
        $this->suppressions = new Suppressions($this);
        $this->providers = new Providers($this);
        $this->keys = new Keys($this);
        $this->webhooks = new Webhooks($this);
    }

    public function baseUrl(): string
    {
        return $this->baseUrl;
    }

    /**
     * One API call, retried as the class says; the answer's envelope.
     *
     * @param array<string, mixed>|null $body
     * @param array<string, scalar|null> $query
     * @return array<string, mixed>
     */
    public function request(
        string $method,
        string $path,
        ?array $body = null,
        array $query = [],
        ?string $idempotencyKey = null,
    ): array {
        $url = $this->baseUrl . self::API . $path;
        $query = array_filter($query, static fn ($value) => $value !== null);
        if ($query !== []) {
            $url .= '?' . http_build_query($query);
        }
        $headers = [
            'Authorization: Bearer ' . $this->apiKey,
            'Accept: application/json',
            'User-Agent: mailpass-php/' . self::VERSION,
        ];
        $content = null;
        if ($body !== null) {
            // An empty PHP array is a JSON object here: every body the API takes is one.
            $content = $body === [] ? '{}' : json_encode($body, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
            $headers[] = 'Content-Type: application/json';
        }
        if ($idempotencyKey !== null) {
            $headers[] = 'Idempotency-Key: ' . $idempotencyKey;
        }
        // A try that got no answer is made again only if doing it twice is harmless.
        $resendable = $method === 'GET' || $method === 'PATCH' || $idempotencyKey !== null;

        for ($attempt = 1; ; $attempt++) {
            [$status, $answerHeaders, $text, $errno, $error] = $this->exchange($method, $url, $headers, $content);
            if ($errno !== 0) {
                $unsent = in_array($errno, self::UNSENT_ERRORS, true);
                if ($attempt <= $this->maxRetries && ($resendable || $unsent)) {
                    $this->pause($attempt, null);
                    continue;
                }
                if ($errno === CURLE_OPERATION_TIMEDOUT) {
                    throw new TimeoutException("no answer from the MailPass server in {$this->timeout} s: {$error}");
                }
                throw new ConnectionException("could not talk to the MailPass server: {$error}");
            }
            try {
                $parsed = $text === '' ? null : json_decode($text, true, 512, JSON_THROW_ON_ERROR);
            } catch (\JsonException) {
                $parsed = null;
            }
            $replayed = ($answerHeaders['idempotent-replayed'] ?? '') === 'true';
            if ($status >= 200 && $status < 300 && is_array($parsed) && ($parsed['success'] ?? null) === true
                && is_array($parsed['data'] ?? null)) {
                $ignored = $parsed['data']['ignored_fields'] ?? [];
                if (is_array($ignored) && $ignored !== []) {
                    ($this->onIgnoredFields)(array_values($ignored));
                }
                return $parsed;
            }
            $retryAfterHeader = $answerHeaders['retry-after'] ?? '';
            $retryAfter = ctype_digit($retryAfterHeader) ? (int) $retryAfterHeader : null;
            $code = is_array($parsed) && is_array($parsed['error'] ?? null) ? ($parsed['error']['code'] ?? null) : null;
            $retried = !$replayed && $attempt <= $this->maxRetries
                && ($status === 409 ? $code === 'IDEMPOTENCY_IN_PROGRESS'
                    : in_array($status, self::RETRIED_STATUSES, true) && $code !== 'SEND_FAILED')
                && ($retryAfter === null || $retryAfter <= self::MAX_RETRY_AFTER);
            if ($retried) {
                $this->pause($attempt, $retryAfter);
                continue;
            }
            throw Errors::fromAnswer($status, $parsed, $retryAfter, $replayed);
        }
    }

    /** A new random idempotency key (a UUID 4). */
    public static function newIdempotencyKey(): string
    {
        $bytes = random_bytes(16);
        $bytes[6] = chr(ord($bytes[6]) & 0x0f | 0x40);
        $bytes[8] = chr(ord($bytes[8]) & 0x3f | 0x80);
        return vsprintf('%s%s-%s-%s-%s-%s%s%s', str_split(bin2hex($bytes), 4));
    }

    /**
     * @param list<string> $headers
     * @return array{int, array<string, string>, string, int, string}
     */
    private function exchange(string $method, string $url, array $headers, ?string $content): array
    {
        $answerHeaders = [];
        $handle = curl_init($url);
        curl_setopt_array($handle, [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT_MS => (int) ($this->timeout * 1000),
            CURLOPT_CONNECTTIMEOUT_MS => (int) (min($this->timeout, 10.0) * 1000),
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
            CURLOPT_HEADERFUNCTION => static function ($curl, string $line) use (&$answerHeaders): int {
                $colon = strpos($line, ':');
                if ($colon !== false) {
                    $answerHeaders[strtolower(trim(substr($line, 0, $colon)))] = trim(substr($line, $colon + 1));
                }
                return strlen($line);
            },
        ]);
        if ($content !== null) {
            curl_setopt($handle, CURLOPT_POSTFIELDS, $content);
        }
        $text = curl_exec($handle);
        $errno = curl_errno($handle);
        $error = curl_error($handle);
        $status = (int) curl_getinfo($handle, CURLINFO_RESPONSE_CODE);
        curl_close($handle);
        return [$status, $answerHeaders, is_string($text) ? $text : '', $errno, $error];
    }

    private function pause(int $attempt, ?int $retryAfter): void
    {
        $seconds = $retryAfter ?? min($this->retryBackoff * 2 ** ($attempt - 1), self::MAX_BACKOFF)
            * (1 + mt_rand() / mt_getrandmax() * 0.25);
        usleep((int) ($seconds * 1_000_000));
    }
}
