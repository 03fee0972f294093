<?php

declare(strict_types=1);

namespace MailPass;

/** `$client->suppressions`: the account's suppression list. */
final class Suppressions
{
    public function __construct(private readonly Client $client)
    {
    }

    /** @return array<string, mixed> A page, newest first, and its `next_cursor`. */
    public function list(?int $limit = null, ?string $cursor = null, ?string $search = null): array
    {
        return $this->client->request('GET', '/suppressions', null, [
            'limit' => $limit,
            'cursor' => $cursor,
            'search' => $search,
        ]);
    }

    /** @return array<string, mixed> */
    public function add(string $email, string $reason = 'manual'): array
    {
        return $this->client->request('POST', '/suppressions', ['email' => $email, 'reason' => $reason]);
    }

    /** @return array<string, mixed> */
    public function remove(string $email): array
    {
        return $this->client->request('DELETE', '/suppressions/' . rawurlencode($email));
    }
}
