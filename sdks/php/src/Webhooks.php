<?php

declare(strict_types=1);

namespace MailPass;

use MailPass\Exception\WebhookVerificationException;

/**
 * `$client->webhooks`: where the account's events are POSTed. Check a delivery where it
 * arrives with `Webhooks::verify($body, $headers, $secret)`.
 */
final class Webhooks
{
    public const TOLERANCE_SECONDS = 300;

    public function __construct(private readonly Client $client)
    {
    }

    /** @return array<string, mixed> */
    public function list(): array
    {
        return $this->client->request('GET', '/webhooks');
    }

    /**
     * A new endpoint: its `secret` is in this answer only.
     *
     * @param list<string>|null $eventTypes
     * @return array<string, mixed>
     */
    public function create(string $url, ?array $eventTypes = null): array
    {
        $fields = ['url' => $url];
        if ($eventTypes !== null) {
            $fields['event_types'] = $eventTypes;
        }
        return $this->client->request('POST', '/webhooks', $fields);
    }

    /** @return array<string, mixed> */
    public function delete(int $id): array
    {
        return $this->client->request('DELETE', "/webhooks/{$id}");
    }

    /** @return array<string, mixed> */
    public function deliveries(int $id, ?int $limit = null): array
    {
        return $this->client->request('GET', "/webhooks/{$id}/deliveries", null, ['limit' => $limit]);
    }

    /** @return array<string, mixed> */
    public function sendTest(int $id): array
    {
        return $this->client->request('POST', "/webhooks/{$id}/test");
    }

    /** @return array<string, mixed> */
    public function enable(int $id): array
    {
        return $this->client->request('POST', "/webhooks/{$id}/enable");
    }

    /**
     * The delivery's JSON, decoded, once its Standard Webhooks signature is checked: `v1,<base64
     * HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}` keyed with the endpoint's secret,
     * and the timestamp within five minutes of now. `$body` is the request body exactly as
     * received (`file_get_contents('php://input')`); `$headers` its headers, names in any case.
     *
     * @param array<string, string|list<string>> $headers
     * @return array<string, mixed>
     * @throws WebhookVerificationException
     */
    public static function verify(string $body, array $headers, string $secret, ?int $now = null): array
    {
        $lowered = [];
        foreach ($headers as $name => $value) {
            $lowered[strtolower((string) $name)] = is_array($value) ? (string) reset($value) : (string) $value;
        }
        $id = $lowered['webhook-id'] ?? '';
        $timestamp = $lowered['webhook-timestamp'] ?? '';
        $signatures = $lowered['webhook-signature'] ?? '';
        if ($id === '' || $timestamp === '' || $signatures === '') {
            throw new WebhookVerificationException('missing webhook-id, webhook-timestamp or webhook-signature header');
        }
        if (!ctype_digit($timestamp)) {
            throw new WebhookVerificationException('webhook-timestamp is not a whole number');
        }
        if (abs(($now ?? time()) - (int) $timestamp) > self::TOLERANCE_SECONDS) {
            throw new WebhookVerificationException('webhook-timestamp is more than 5 minutes away from now');
        }
        $key = str_starts_with($secret, 'whsec_') ? base64_decode(substr($secret, 6), true) : false;
        if ($key === false) {
            throw new WebhookVerificationException('the secret is not a whsec_ secret');
        }
        $expected = hash_hmac('sha256', "{$id}.{$timestamp}.{$body}", $key, true);
        foreach (explode(' ', $signatures) as $candidate) {
            [$version, $value] = array_pad(explode(',', $candidate, 2), 2, '');
            $given = base64_decode($value, true);
            if ($version === 'v1' && $given !== false && hash_equals($expected, $given)) {
                try {
                    $event = json_decode($body, true, 512, JSON_THROW_ON_ERROR);
                } catch (\JsonException) {
                    throw new WebhookVerificationException('the body is not JSON');
                }
                if (!is_array($event)) {
                    throw new WebhookVerificationException('the body is not a JSON object');
                }
                return $event;
            }
        }
        throw new WebhookVerificationException('no signature matches the secret');
    }
}
