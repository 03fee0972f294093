<?php

declare(strict_types=1);

namespace MailPass;

/** `$client->mail`: the API document's mail endpoints. */
final class Mail
{
    public function __construct(private readonly Client $client)
    {
    }

    /**
     * Send one message now; returns once the provider has accepted it (with `scheduled_at`,
     * once it is queued). Fields as the API takes them: `to`, `subject`, `html`, `text`,
     * `from_email`, `from_name`, `reply_to`, `cc`, `bcc`, `tags`, `metadata`, `headers`,
     * `list_unsubscribe`, `attachments` (`content` base64, or `content_bytes` raw), `scheduled_at`
     * (a DateTimeInterface or ISO 8601 text). The idempotency key defaults to a new one for
     * this call, used by its retries; pass your own to make your own retries safe.
     *
     * @param array<string, mixed> $message
     * @return array<string, mixed>
     */
    public function send(array $message, ?string $idempotencyKey = null): array
    {
        return $this->client->request(
            'POST',
            '/mail/send',
            self::wire($message),
            [],
            $idempotencyKey ?? Client::newIdempotencyKey(),
        );
    }

    /**
     * Queue up to 100 messages (`messages`); the top-level fields fill in what an item leaves out.
     *
     * @param array<string, mixed> $batch
     * @return array<string, mixed>
     */
    public function sendBatch(array $batch, ?string $idempotencyKey = null): array
    {
        $body = self::wire($batch);
        $body['messages'] = array_map([self::class, 'wire'], $batch['messages'] ?? []);
        return $this->client->request(
            'POST',
            '/mail/send-batch',
            $body,
            [],
            $idempotencyKey ?? Client::newIdempotencyKey(),
        );
    }

    /** @return array<string, mixed> A message and its events. */
    public function status(string $messageId): array
    {
        return $this->client->request('GET', '/mail/status/' . rawurlencode($messageId));
    }

    /** @return array<string, mixed> */
    public function cancel(string $messageId): array
    {
        return $this->client->request('POST', '/mail/cancel/' . rawurlencode($messageId));
    }

    /**
     * @param array<string, mixed> $message
     * @return array<string, mixed>
     */
    private static function wire(array $message): array
    {
        if (isset($message['attachments']) && is_array($message['attachments'])) {
            $message['attachments'] = array_map(static function (array $part): array {
                if (array_key_exists('content_bytes', $part)) {
                    $part['content'] = base64_encode((string) $part['content_bytes']);
                    unset($part['content_bytes']);
                }
                return $part;
            }, $message['attachments']);
        }
        if (($message['scheduled_at'] ?? null) instanceof \DateTimeInterface) {
            $message['scheduled_at'] = $message['scheduled_at']->format(\DateTimeInterface::ATOM);
        }
        return $message;
    }
}
