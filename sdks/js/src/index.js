// The MailPass API client, for Node 18+ and browsers: no dependency beyond `fetch`.
//
//   import { MailPass } from 'mailpass';
//   const client = new MailPass('mp_live_YOUR_KEY', { baseUrl: 'https://mail.example.com' });
//   const sent = await client.mail.send({ to: 'user@example.com', subject: 'Hello', html: '<p>Hi</p>' });
//   console.log(sent.message_id);
//
// Calls return the answer's `data`; an error answer throws the error class of its code.

import {
  APIConnectionError,
  APITimeoutError,
  ConfigurationError,
  errorFromAnswer,
} from './errors.js';

export * from './errors.js';
export { TOLERANCE_SECONDS, WebhookVerificationError, verifyWebhook } from './webhooks.js';

export const VERSION = '0.1.0';
export const DEFAULT_BASE_URL = 'http://127.0.0.1:8000'; // where `mailpass dev` listens
const API = '/api/v1';
const RETRIED_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const FINAL_CODES = new Set(['SEND_FAILED']);
const MAX_RETRY_AFTER = 60; // seconds: a longer wait (a daily limit) is the caller's to decide
const MAX_BACKOFF = 8000; // ms
// Node's codes for a connection that was never made: the request did not leave.
const UNSENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

function environment(name) {
  return typeof process !== 'undefined' && process.env ? process.env[name] : undefined;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function newIdempotencyKey() {
  return globalThis.crypto?.randomUUID
    ? globalThis.crypto.randomUUID()
    : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

function toBase64(content) {
  if (typeof content === 'string') return content; // already base64, as the API takes it
  const bytes = content instanceof ArrayBuffer ? new Uint8Array(content) : content;
  if (typeof Buffer !== 'undefined') return Buffer.from(bytes).toString('base64');
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function wireMessage(message) {
  const wire = { ...message };
  if (Array.isArray(wire.attachments)) {
    wire.attachments = wire.attachments.map((part) => ({ ...part, content: toBase64(part.content) }));
  }
  if (wire.scheduled_at instanceof Date) wire.scheduled_at = wire.scheduled_at.toISOString();
  return wire;
}

function retryAfterOf(response) {
  const value = response.headers.get('retry-after');
  return value && /^\d+$/.test(value) ? Number(value) : null;
}

class Resource {
  constructor(client) {
    this.client = client;
  }
}

/** `client.mail`: send, sendBatch, status, cancel. */
class Mail extends Resource {
  /** Send one message now; resolves once the provider has accepted it (or, scheduled, queued). */
  send(message, { idempotencyKey } = {}) {
    return this.client.request('POST', '/mail/send', {
      body: wireMessage(message),
      idempotencyKey: idempotencyKey ?? newIdempotencyKey(),
    });
  }

  /** Queue up to 100 messages; an item that fails validation fails alone. */
  sendBatch(batch, { idempotencyKey } = {}) {
    const body = { ...wireMessage(batch), messages: (batch.messages ?? []).map(wireMessage) };
    return this.client.request('POST', '/mail/send-batch', {
      body,
      idempotencyKey: idempotencyKey ?? newIdempotencyKey(),
    });
  }

  /** A message and its events; `messageId` with or without its angle brackets. */
  status(messageId) {
    return this.client.request('GET', `/mail/status/${encodeURIComponent(messageId)}`);
  }

  /** Take a scheduled (or still queued) message back. */
  cancel(messageId) {
    return this.client.request('POST', `/mail/cancel/${encodeURIComponent(messageId)}`);
  }
}

/** `client.suppressions`: the account's suppression list. */
class Suppressions extends Resource {
  list({ limit, cursor, search } = {}) {
    return this.client.request('GET', '/suppressions', { query: { limit, cursor, search } });
  }

  add(email, { reason } = {}) {
    return this.client.request('POST', '/suppressions', { body: { email, ...(reason ? { reason } : {}) } });
  }

  remove(email) {
    return this.client.request('DELETE', `/suppressions/${encodeURIComponent(email)}`);
  }
}

/** `client.providers`: the account's SMTP providers (passwords are write-only). */
class Providers extends Resource {
  async list() {
    return (await this.client.request('GET', '/providers')).providers;
  }

  get(id) {
    return this.client.request('GET', `/providers/${Number(id)}`);
  }

  create(fields) {
    return this.client.request('POST', '/providers', { body: fields });
  }

  /** Change the fields given; `null` clears an optional one. */
  update(id, changes) {
    return this.client.request('PATCH', `/providers/${Number(id)}`, { body: changes });
  }

  delete(id) {
    return this.client.request('DELETE', `/providers/${Number(id)}`);
  }

  setDefault(id) {
    return this.client.request('POST', `/providers/${Number(id)}/default`);
  }

  /** Connect and log in as the workers would; `{ok, error, transcript}`. */
  test(id) {
    return this.client.request('POST', `/providers/${Number(id)}/test`);
  }
}

/** `client.keys`: the account's API keys. */
class Keys extends Resource {
  async list() {
    return (await this.client.request('GET', '/keys')).keys;
  }

  /** A new key; its `key` is in this answer only. */
  create(fields = {}) {
    return this.client.request('POST', '/keys', { body: fields });
  }

  revoke(id) {
    return this.client.request('DELETE', `/keys/${Number(id)}`);
  }
}

/** `client.webhooks`: where the account's events are POSTed. */
class Webhooks extends Resource {
  async list() {
    return (await this.client.request('GET', '/webhooks')).webhooks;
  }

  /** A new endpoint; its `secret` is in this answer only. */
  create(fields) {
    return this.client.request('POST', '/webhooks', { body: fields });
  }

  delete(id) {
    return this.client.request('DELETE', `/webhooks/${Number(id)}`);
  }

  async deliveries(id, { limit } = {}) {
    const answer = await this.client.request('GET', `/webhooks/${Number(id)}/deliveries`, {
      query: { limit },
    });
    return answer.deliveries;
  }

  sendTest(id) {
    return this.client.request('POST', `/webhooks/${Number(id)}/test`);
  }

  enable(id) {
    return this.client.request('POST', `/webhooks/${Number(id)}/enable`);
  }
}

export class MailPass {
  /**
   * `apiKey` defaults to `$MAILPASS_API_KEY`, `options.baseUrl` to `$MAILPASS_API_URL` (else
   * http://127.0.0.1:8000). A call is retried up to `maxRetries` times when no answer came, on
   * 408, 429 (after its Retry-After), IDEMPOTENCY_IN_PROGRESS and 5xx other than SEND_FAILED;
   * every try of a send carries the same Idempotency-Key, so a retry never sends twice.
   */
  constructor(apiKey, options = {}) {
    const key = apiKey ?? environment('MAILPASS_API_KEY');
    if (!key) {
      throw new ConfigurationError('no API key: pass one, or set MAILPASS_API_KEY');
    }
    const base = options.baseUrl ?? environment('MAILPASS_API_URL') ?? DEFAULT_BASE_URL;
    let url;
    try {
      url = new URL(base);
    } catch {
      throw new ConfigurationError(`the base URL ${JSON.stringify(base)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigurationError('the base URL must be http:// or https://');
    }
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.apiKey = key;
    this.timeout = options.timeout ?? 60000;
    this.maxRetries = options.maxRetries ?? 2;
    this.retryBackoff = options.retryBackoff ?? 500;
    this.headers = options.headers ?? {};
    this.fetch = options.fetch ?? globalThis.fetch;
    this.warn = options.onIgnoredFields ?? ((fields) => console.warn(`MailPass ignored these fields of the request: ${fields.join(', ')}`));
    if (typeof this.fetch !== 'function') {
      throw new ConfigurationError('no fetch: use Node 18+ or pass options.fetch');
    }
    this.mail = new Mail(this);
    this.suppressions = new Suppressions(this);
    this.providers = new Providers(this);
    this.keys = new Keys(this);
    this.webhooks = new Webhooks(this);
  }

  delay(attempt, retryAfter) {
    if (retryAfter !== null && retryAfter !== undefined) return retryAfter * 1000;
    const base = Math.min(this.retryBackoff * 2 ** (attempt - 1), MAX_BACKOFF);
    return base * (1 + Math.random() * 0.25);
  }

  /** One API call, retried as the constructor says; resolves to the answer's `data`. */
  async request(method, path, { body, query, idempotencyKey } = {}) {
    let url = `${this.baseUrl}${API}${path}`;
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) params.set(name, String(value));
    }
    if ([...params].length) url += `?${params}`;
    const headers = {
      ...this.headers,
      Authorization: `Bearer ${this.apiKey}`,
      Accept: 'application/json',
    };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const content = body === undefined ? undefined : JSON.stringify(body);
    // A try that got no answer is made again only if doing it twice is harmless.
    const resendable = method === 'GET' || method === 'PATCH' || Boolean(idempotencyKey);

    for (let attempt = 1; ; attempt += 1) {
      let response;
      try {
        response = await this.fetch(url, {
          method,
          headers,
          body: content,
          signal: AbortSignal.timeout(this.timeout),
        });
      } catch (error) {
        const timedOut = error?.name === 'TimeoutError' || error?.name === 'AbortError';
        const unsent = UNSENT_CODES.has(error?.cause?.code);
        if (attempt <= this.maxRetries && (resendable || unsent)) {
          await sleep(this.delay(attempt, null));
          continue;
        }
        const Failure = timedOut ? APITimeoutError : APIConnectionError;
        const failure = new Failure(
          timedOut
            ? `no answer from the MailPass server in ${this.timeout} ms`
            : `could not talk to the MailPass server: ${error?.cause?.code ?? error?.message ?? error}`,
        );
        failure.cause = error;
        throw failure;
      }
      const text = await response.text();
      let parsed = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = null;
      }
      const replayed = response.headers.get('idempotent-replayed') === 'true';
      if (response.ok && parsed?.success === true && parsed.data && typeof parsed.data === 'object') {
        const ignored = parsed.data.ignored_fields;
        if (Array.isArray(ignored) && ignored.length) this.warn(ignored);
        return parsed.data;
      }
      const retryAfter = retryAfterOf(response);
      const code = parsed?.error?.code;
      const retried =
        !replayed &&
        attempt <= this.maxRetries &&
        (response.status === 409
          ? code === 'IDEMPOTENCY_IN_PROGRESS'
          : RETRIED_STATUSES.has(response.status) && !FINAL_CODES.has(code)) &&
        (retryAfter === null || retryAfter <= MAX_RETRY_AFTER);
      if (retried) {
        await sleep(this.delay(attempt, retryAfter));
        continue;
      }
      throw errorFromAnswer(response.status, parsed, { retryAfter, replayed });
    }
  }
}

export { MailPass as Client };
export default MailPass;
