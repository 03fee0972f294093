// Checking a MailPass webhook where it arrives. Each delivery is signed the Standard Webhooks
// way: `webhook-signature` holds `v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}` keyed
// with the endpoint's secret (`whsec_` and base64); a delivery more than five minutes away from
// now is refused, so that a captured one cannot be replayed later. Web Crypto only, so it runs
// in Node 18+, Deno, Bun, workers and browsers alike.

import { MailPassError } from './errors.js';

export const TOLERANCE_SECONDS = 5 * 60;
const PREFIX = 'whsec_';

/** The delivery is not MailPass's, was altered, or is too old; the message says which. */
export class WebhookVerificationError extends MailPassError {}

function header(headers, name) {
  if (typeof headers?.get === 'function') return headers.get(name);
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

function fromBase64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i += 1) difference |= a[i] ^ b[i];
  return difference === 0;
}

/**
 * The delivery's JSON once its signature is checked; throws WebhookVerificationError.
 * `payload` is the request body exactly as received (a string or bytes, before any JSON
 * parsing); `headers` a Headers object or a plain object (names in any case).
 */
export async function verifyWebhook(payload, headers, secret, { now } = {}) {
  const body =
    typeof payload === 'string' ? new TextEncoder().encode(payload) : new Uint8Array(payload);
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError(
      'missing webhook-id, webhook-timestamp or webhook-signature header',
    );
  }
  if (!/^\d+$/.test(timestamp)) {
    throw new WebhookVerificationError('webhook-timestamp is not a whole number');
  }
  const current = now ?? Date.now() / 1000;
  if (Math.abs(current - Number(timestamp)) > TOLERANCE_SECONDS) {
    throw new WebhookVerificationError('webhook-timestamp is more than 5 minutes away from now');
  }
  const keyBytes = fromBase64(String(secret).replace(/^whsec_/, ''));
  if (!String(secret).startsWith(PREFIX) || keyBytes === null) {
    throw new WebhookVerificationError('the secret is not a whsec_ secret');
  }
  const key = await crypto.subtle.importKey(
    'raw',
    keyBytes,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const signedPrefix = new TextEncoder().encode(`${id}.${timestamp}.`);
  const signed = new Uint8Array(signedPrefix.length + body.length);
  signed.set(signedPrefix);
  signed.set(body, signedPrefix.length);
  const expected = new Uint8Array(await crypto.subtle.sign('HMAC', key, signed));
  for (const candidate of String(signatures).split(' ')) {
    const comma = candidate.indexOf(',');
    const version = candidate.slice(0, comma);
    const given = comma > 0 ? fromBase64(candidate.slice(comma + 1)) : null;
    if (version === 'v1' && given !== null && sameBytes(given, expected)) {
      try {
        return JSON.parse(new TextDecoder().decode(body));
      } catch {
        throw new WebhookVerificationError('the body is not JSON');
      }
    }
  }
  throw new WebhookVerificationError('no signature matches the secret');
}
