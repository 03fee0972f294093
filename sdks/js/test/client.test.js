// The JavaScript SDK against a real MailPass server, started by the Python test suite
// (tests/sdks/test_js_sdk.py), which passes what it made in the environment:
// MAILPASS_API_URL, MAILPASS_API_KEY (every permission), MAILPASS_STRANGER_KEY (another
// account's), MAILPASS_SINK_PORT (an SMTP server for a new provider), MAILPASS_SIGNED (a
// webhook delivery signed by the server's own code), MAILPASS_DROPPING_URL (a proxy to the
// server that loses the answer to its first request). Run alone: `npm test` with those set.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';

import MailPassDefault, {
  APIConnectionError,
  ConfigurationError,
  ForbiddenError,
  MailPass,
  MailPassError,
  NotFoundError,
  UnauthorizedError,
  ValidationError,
  WebhookVerificationError,
  verifyWebhook,
} from '../src/index.js';

const env = process.env;
const client = new MailPass(env.MAILPASS_API_KEY, { baseUrl: env.MAILPASS_API_URL });

test('the default export is the client, and the key and URL come from the environment', () => {
  assert.equal(MailPassDefault, MailPass);
  const fromEnv = new MailPass();
  assert.equal(fromEnv.baseUrl, env.MAILPASS_API_URL.replace(/\/+$/, ''));
  assert.throws(() => new MailPass('mp_live_x', { baseUrl: 'ftp://x' }), ConfigurationError);
});

test('send, status, a batch and a scheduled message taken back', async () => {
  const sent = await client.mail.send({
    to: 'user@example.com',
    subject: 'Hello from JS',
    html: '<p>Hello</p>',
    attachments: [{ filename: 'hi.txt', content: new TextEncoder().encode('hi there') }],
  });
  assert.equal(sent.status, 'sent');
  assert.match(sent.message_id, /^<.+@.+>$/);
  const status = await client.mail.status(sent.message_id);
  assert.equal(status.message.subject, 'Hello from JS');
  assert.equal(status.message.status, 'sent');

  const batch = await client.mail.sendBatch({
    from_email: 'sender@shop.example',
    messages: [
      { to: 'a@example.com', subject: 'A', text: 'a' },
      { to: 'not-an-address', subject: 'B', text: 'b' },
    ],
  });
  assert.equal(batch.queued, 1);
  assert.equal(batch.failed, 1);
  assert.equal(batch.messages[1].status, 'failed');
  assert.equal(batch.messages[1].code, 'VALIDATION_ERROR');

  const later = await client.mail.send({
    to: 'later@example.com',
    subject: 'Later',
    text: 'later',
    scheduled_at: new Date(Date.now() + 3600_000),
  });
  assert.equal(later.status, 'queued');
  const cancelled = await client.mail.cancel(later.message_id);
  assert.equal(cancelled.status, 'cancelled');
});

test('an ignored field is reported', async () => {
  const heard = [];
  const careful = new MailPass(env.MAILPASS_API_KEY, {
    baseUrl: env.MAILPASS_API_URL,
    onIgnoredFields: (fields) => heard.push(...fields),
  });
  const sent = await careful.mail.send({
    to: 'user@example.com',
    subject: 'Typo',
    text: 'x',
    atachments: [],
  });
  assert.deepEqual(sent.ignored_fields, ['atachments']);
  assert.deepEqual(heard, ['atachments']);
});

test('one idempotency key sends once', async () => {
  const first = await client.mail.send(
    { to: 'once@example.com', subject: 'Once', text: 'once' },
    { idempotencyKey: 'js-order-1' },
  );
  const again = await client.mail.send(
    { to: 'once@example.com', subject: 'Once', text: 'once' },
    { idempotencyKey: 'js-order-1' },
  );
  assert.equal(again.message_id, first.message_id);
});

test('a 503 is retried with the same idempotency key, and sends once', async () => {
  const keys = [];
  let calls = 0;
  const flaky = new MailPass(env.MAILPASS_API_KEY, {
    baseUrl: env.MAILPASS_API_URL,
    retryBackoff: 10,
    fetch: async (url, init) => {
      calls += 1;
      keys.push(init.headers['Idempotency-Key']);
      if (calls === 1) {
        const body = { success: false, error: { code: 'SERVICE_UNAVAILABLE', message: 'down' } };
        return new Response(JSON.stringify(body), { status: 503 });
      }
      return fetch(url, init);
    },
  });
  const sent = await flaky.mail.send({ to: 'retry@example.com', subject: 'Retry', text: 'r' });
  assert.equal(sent.status, 'sent');
  assert.equal(calls, 2);
  assert.equal(keys[0], keys[1]);
});

test('a send whose answer was lost is tried again, and the server sends it once', async () => {
  const lossy = new MailPass(env.MAILPASS_API_KEY, {
    baseUrl: env.MAILPASS_DROPPING_URL,
    retryBackoff: 10,
  });
  const sent = await lossy.mail.send({ to: 'lost@example.com', subject: 'Lost answer', text: 'l' });
  assert.equal(sent.status, 'sent');
  // The second try carried the first's idempotency key: its answer is the first's, replayed.
  const status = await client.mail.status(sent.message_id);
  assert.equal(status.message.subject, 'Lost answer');
});

test('errors are classes of their own, with the envelope in them', async () => {
  await assert.rejects(
    client.mail.send({ to: 'nobody', subject: '' }),
    (error) => {
      assert.ok(error instanceof ValidationError);
      assert.ok(error instanceof MailPassError);
      assert.equal(error.status, 400);
      assert.equal(error.code, 'VALIDATION_ERROR');
      assert.ok(error.details.some((detail) => detail.field === 'to'));
      return true;
    },
  );
  const wrong = new MailPass('mp_live_wrong', { baseUrl: env.MAILPASS_API_URL });
  await assert.rejects(wrong.mail.status('<x@y>'), UnauthorizedError);
  await assert.rejects(client.mail.status('<missing@example.com>'), NotFoundError);
  const nowhere = new MailPass('mp_live_x', { baseUrl: 'http://127.0.0.1:9', maxRetries: 0 });
  await assert.rejects(nowhere.mail.status('<x@y>'), APIConnectionError);
});

test('providers, keys and webhooks are managed, and another account sees none of them', async () => {
  const provider = await client.providers.create({
    name: 'js-relay',
    kind: 'smtp',
    host: '127.0.0.1',
    port: Number(env.MAILPASS_SINK_PORT),
    security: 'none',
    password: 'unused',
    username: 'someone',
  });
  assert.equal(provider.password_set, true);
  assert.equal('password' in provider, false);
  const changed = await client.providers.update(provider.id, { daily_limit: 10, username: null });
  assert.equal(changed.daily_limit, 10);
  assert.equal(changed.password_set, false); // no user name, no password
  const tested = await client.providers.test(provider.id);
  assert.equal(tested.ok, true, tested.error);
  assert.ok((await client.providers.list()).some((p) => p.id === provider.id));

  const key = await client.keys.create({ name: 'js-ci', permissions: ['mail'] });
  assert.match(key.key, /^mp_live_/);
  const listed = await client.keys.list();
  assert.equal(listed.find((k) => k.id === key.id).key, undefined);
  const limited = new MailPass(key.key, { baseUrl: env.MAILPASS_API_URL });
  await assert.rejects(limited.keys.create({ permissions: ['keys'] }), ForbiddenError);
  assert.notEqual((await client.keys.revoke(key.id)).revoked_at, null);

  const endpoint = await client.webhooks.create({
    url: 'http://127.0.0.1:9/hook',
    event_types: ['bounced'],
  });
  assert.match(endpoint.secret, /^whsec_/);
  await client.webhooks.sendTest(endpoint.id);
  const [delivery] = await client.webhooks.deliveries(endpoint.id, { limit: 5 });
  assert.equal(delivery.event_type, 'test');
  assert.equal((await client.webhooks.enable(endpoint.id)).enabled, true);

  const stranger = new MailPass(env.MAILPASS_STRANGER_KEY, { baseUrl: env.MAILPASS_API_URL });
  await assert.rejects(stranger.providers.get(provider.id), NotFoundError);
  await assert.rejects(stranger.webhooks.deliveries(endpoint.id), NotFoundError);

  await client.webhooks.delete(endpoint.id);
  await client.providers.delete(provider.id);
  await assert.rejects(client.providers.get(provider.id), NotFoundError);
});

test('a webhook signed by the server is verified, and a forged or stale one is not', async () => {
  const { body, headers, secret } = JSON.parse(env.MAILPASS_SIGNED);
  const now = Number(headers['webhook-timestamp']);
  const event = await verifyWebhook(body, headers, secret, { now });
  assert.equal(event.type, 'email.test');
  await assert.rejects(
    verifyWebhook(body.replace('test', 'tost'), headers, secret, { now }),
    WebhookVerificationError,
  );
  await assert.rejects(verifyWebhook(body, headers, secret, { now: now + 600 }), /5 minutes/);
  await assert.rejects(verifyWebhook(body, {}, secret), /missing/);

  // Signed here, the Standard Webhooks way, and read from a fetch Headers object.
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const stamp = String(Math.floor(Date.now() / 1000));
  const signature = createHmac('sha256', key).update(`msg_1.${stamp}.${body}`).digest('base64');
  const fetchHeaders = new Headers({
    'Webhook-Id': 'msg_1',
    'Webhook-Timestamp': stamp,
    'Webhook-Signature': `v1,bm90aXQ= v1,${signature}`,
  });
  assert.equal((await verifyWebhook(new TextEncoder().encode(body), fetchHeaders, secret)).type, 'email.test');
});
