<?php

declare(strict_types=1);

namespace MailPass;

/** `$client->providers`: the account's SMTP providers (passwords are write-only). */
final class Providers
{
    public function __construct(private readonly Client $client)
    {
    }

    /** @return array<string, mixed> */
    public function list(): array
    {
        return $this->client->request('GET', '/providers');
    }

    /** @return array<string, mixed> */
    public function get(int $id): array
    {
        return $this->client->request('GET', "/providers/{$id}");
    }

    /**
     * @param array<string, mixed> $fields `name`, `kind` and the kind's settings
     * @return array<string, mixed>
     */
    public function create(array $fields): array
    {
        return $this->client->request('POST', '/providers', $fields);
    }

    /**
     * @param array<string, mixed> $changes the fields to change; null clears an optional one
     * @return array<string, mixed>
     */
    public function update(int $id, array $changes): array
    {
        return $this->client->request('PATCH', "/providers/{$id}", $changes);
    }

    /** @return array<string, mixed> */
    public function delete(int $id): array
    {
        return $this->client->request('DELETE', "/providers/{$id}");
    }

    /** @return array<string, mixed> */
    public function setDefault(int $id): array
    {
        return $this->client->request('POST', "/providers/{$id}/default");
    }

    /** @return array<string, mixed> `ok`, `error` and the SMTP `transcript` */
    public function test(int $id): array
    {
        return $this->client->request('POST', "/providers/{$id}/test");
    }
}
