<?php

declare(strict_types=1);

namespace MailPass\Tests;

use MailPass\Client;
use MailPass\Exception\ConfigurationException;
use MailPass\Exception\ConnectionException;
use MailPass\Exception\ForbiddenException;
use MailPass\Exception\MailPassException;
use MailPass\Exception\NotFoundException;
use MailPass\Exception\UnauthorizedException;
use MailPass\Exception\ValidationException;
use MailPass\Exception\WebhookVerificationException;
use MailPass\Webhooks;
use PHPUnit\Framework\TestCase;

/**
 * The PHP SDK against a real MailPass server, started by the Python test suite
 * (tests/sdks/test_php_sdk.py), which passes what it made in the environment:
 * MAILPASS_API_URL, MAILPASS_API_KEY (every permission), MAILPASS_STRANGER_KEY (another
 * account's), MAILPASS_SINK_PORT (an SMTP server for a new provider), MAILPASS_SIGNED (a
 * webhook delivery signed by the server's own code), MAILPASS_DROPPING_URL (a proxy to the
 * server that loses the answer to its first request).
 */
final class ClientTest extends TestCase
{
    private function client(?string $key = null, array $options = []): Client
    {
        return new Client($key ?? getenv('MAILPASS_API_KEY'), $options + ['base_url' => getenv('MAILPASS_API_URL')]);
    }

    public function testTheKeyAndTheUrlComeFromTheEnvironment(): void
    {
        $client = new Client();
        $this->assertSame(rtrim(getenv('MAILPASS_API_URL'), '/'), $client->baseUrl());
        $this->expectException(ConfigurationException::class);
        new Client('mp_live_x', ['base_url' => 'ftp://example.com']);
    }

    public function testSendStatusBatchAndCancel(): void
    {
        $client = $this->client();
        $sent = $client->mail->send([
            'to' => 'user@example.com',
            'subject' => 'Hello from PHP',
            'html' => '<p>Hello</p>',
            'attachments' => [['filename' => 'hi.txt', 'content_bytes' => 'hi there']],
        ]);
        $this->assertTrue($sent['success']);
        $this->assertSame('sent', $sent['data']['status']);
        $status = $client->mail->status($sent['data']['message_id']);
        $this->assertSame('Hello from PHP', $status['data']['message']['subject']);
        $this->assertSame('hi.txt', $status['data']['message']['attachments'][0]['filename']);

        $batch = $client->mail->sendBatch([
            'from_email' => 'sender@shop.example',
            'messages' => [
                ['to' => 'a@example.com', 'subject' => 'A', 'text' => 'a'],
                ['to' => 'not-an-address', 'subject' => 'B', 'text' => 'b'],
            ],
        ]);
        $this->assertSame([1, 1], [$batch['data']['queued'], $batch['data']['failed']]);
        $this->assertSame('VALIDATION_ERROR', $batch['data']['messages'][1]['code']);

        $later = $client->mail->send([
            'to' => 'later@example.com',
            'subject' => 'Later',
            'text' => 'later',
            'scheduled_at' => new \DateTimeImmutable('+1 hour'),
        ]);
        $this->assertSame('queued', $later['data']['status']);
        $this->assertSame('cancelled', $client->mail->cancel($later['data']['message_id'])['data']['status']);
    }

    public function testAnIgnoredFieldIsReported(): void
    {
        $heard = [];
        $client = $this->client(null, ['on_ignored_fields' => function (array $fields) use (&$heard): void {
            $heard = $fields;
        }]);
        $sent = $client->mail->send(['to' => 'user@example.com', 'subject' => 'Typo', 'text' => 'x', 'atachments' => []]);
        $this->assertSame(['atachments'], $sent['data']['ignored_fields']);
        $this->assertSame(['atachments'], $heard);
    }

    public function testOneIdempotencyKeySendsOnce(): void
    {
        $client = $this->client();
        $message = ['to' => 'once@example.com', 'subject' => 'Once', 'text' => 'once'];
        $first = $client->mail->send($message, 'php-order-1');
        $again = $client->mail->send($message, 'php-order-1');
        $this->assertSame($first['data']['message_id'], $again['data']['message_id']);
    }

    public function testASendWhoseAnswerWasLostIsTriedAgainAndSentOnce(): void
    {
        $lossy = new Client(getenv('MAILPASS_API_KEY'), [
            'base_url' => getenv('MAILPASS_DROPPING_URL'),
            'retry_backoff' => 0.01,
        ]);
        $sent = $lossy->mail->send(['to' => 'lost@example.com', 'subject' => 'Lost answer', 'text' => 'l']);
        $this->assertSame('sent', $sent['data']['status']);
        $status = $this->client()->mail->status($sent['data']['message_id']);
        $this->assertSame('Lost answer', $status['data']['message']['subject']);
    }

    public function testErrorsAreExceptionsOfTheirOwn(): void
    {
        $client = $this->client();
        try {
            $client->mail->send(['to' => 'nobody', 'subject' => '']);
            $this->fail('a bad message was accepted');
        } catch (ValidationException $error) {
            $this->assertInstanceOf(MailPassException::class, $error);
            $this->assertSame(400, $error->getStatus());
            $this->assertSame('VALIDATION_ERROR', $error->getErrorCode());
            $this->assertContains('to', array_column($error->getDetails(), 'field'));
        }
        try {
            $this->client('mp_live_wrong')->mail->status('<x@y>');
            $this->fail('a wrong key was accepted');
        } catch (UnauthorizedException $error) {
            $this->assertSame(401, $error->getStatus());
        }
        $this->expectException(NotFoundException::class);
        $client->mail->status('<missing@example.com>');
    }

    public function testNoServerIsAConnectionError(): void
    {
        $this->expectException(ConnectionException::class);
        (new Client('mp_live_x', ['base_url' => 'http://127.0.0.1:9', 'max_retries' => 0]))->mail->status('<x@y>');
    }

    public function testProvidersKeysAndWebhooksAreManaged(): void
    {
        $client = $this->client();
        $provider = $client->providers->create([
            'name' => 'php-relay',
            'kind' => 'smtp',
            'host' => '127.0.0.1',
            'port' => (int) getenv('MAILPASS_SINK_PORT'),
            'security' => 'none',
        ])['data'];
        $this->assertFalse($provider['password_set']);
        $changed = $client->providers->update($provider['id'], ['daily_limit' => 10])['data'];
        $this->assertSame(10, $changed['daily_limit']);
        $this->assertTrue($client->providers->test($provider['id'])['data']['ok']);
        $this->assertContains('php-relay', array_column($client->providers->list()['data']['providers'], 'name'));

        $key = $client->keys->create(['name' => 'php-ci', 'permissions' => ['mail']])['data'];
        $this->assertStringStartsWith('mp_live_', $key['key']);
        try {
            $this->client($key['key'])->keys->create(['permissions' => ['keys']]);
            $this->fail('a key without the keys permission made a key');
        } catch (ForbiddenException $error) {
            $this->assertSame('FORBIDDEN', $error->getErrorCode());
        }
        $this->assertNotNull($client->keys->revoke($key['id'])['data']['revoked_at']);

        $endpoint = $client->webhooks->create('http://127.0.0.1:9/hook', ['bounced'])['data'];
        $this->assertStringStartsWith('whsec_', $endpoint['secret']);
        $client->webhooks->sendTest($endpoint['id']);
        $this->assertSame('test', $client->webhooks->deliveries($endpoint['id'], 5)['data']['deliveries'][0]['event_type']);

        $stranger = $this->client(getenv('MAILPASS_STRANGER_KEY'));
        try {
            $stranger->providers->get($provider['id']);
            $this->fail("another account's provider was found");
        } catch (NotFoundException) {
            $this->addToAssertionCount(1);
        }
        $client->webhooks->delete($endpoint['id']);
        $client->providers->delete($provider['id']);
        $this->expectException(NotFoundException::class);
        $client->providers->get($provider['id']);
    }

    public function testAWebhookSignedByTheServerIsVerified(): void
    {
        $signed = json_decode(getenv('MAILPASS_SIGNED'), true);
        $now = (int) $signed['headers']['webhook-timestamp'];
        $event = Webhooks::verify($signed['body'], $signed['headers'], $signed['secret'], $now);
        $this->assertSame('email.test', $event['type']);
        $upper = array_change_key_case($signed['headers'], CASE_UPPER);
        $this->assertSame('email.test', Webhooks::verify($signed['body'], $upper, $signed['secret'], $now)['type']);
        foreach ([
            [str_replace('test', 'tost', $signed['body']), $now, 'no signature matches'],
            [$signed['body'], $now + 600, '5 minutes'],
        ] as [$body, $at, $says]) {
            try {
                Webhooks::verify($body, $signed['headers'], $signed['secret'], $at);
                $this->fail('a forged or stale delivery was accepted');
            } catch (WebhookVerificationException $error) {
                $this->assertStringContainsString($says, $error->getMessage());
            }
        }
    }
}
