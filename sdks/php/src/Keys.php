<?php

declare(strict_types=1);

namespace MailPass;

/** `$client->keys`: the account's API keys. */
final class Keys
{
    public function __construct(private readonly Client $client)
    {
    }

    /** @return array<string, mixed> */
    public function list(): array
    {
        return $this->client->request('GET', '/keys');
    }

    /**
     * A new key: its `key` is in this answer only.
     *
     * @param array{name?: string, permissions?: list<string>, test?: bool} $fields
     * @return array<string, mixed>
     */
    public function create(array $fields = []): array
    {
        return $this->client->request('POST', '/keys', $fields);
    }

    /** @return array<string, mixed> */
    public function revoke(int $id): array
    {
        return $this->client->request('DELETE', "/keys/{$id}");
    }
}
