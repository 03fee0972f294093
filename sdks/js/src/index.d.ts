// Types of the MailPass API client. Field names are the API's own (snake_case), as in the
// API document (GET /openapi.json).

export const VERSION: string;
export const DEFAULT_BASE_URL: string;
export const TOLERANCE_SECONDS: number;

export type Recipients = string | string[];

export interface Attachment {
  filename: string;
  /** base64 text, or the bytes themselves (encoded for you). */
  content: string | Uint8Array | ArrayBuffer;
  content_type?: string;
  /** Makes it an inline part, referenced as `cid:<content_id>` from the html. */
  content_id?: string;
}

export interface MessageParams {
  to: Recipients;
  subject: string;
  html?: string;
  text?: string;
  from_email?: string;
  from_name?: string;
  reply_to?: Recipients;
  cc?: Recipients;
  bcc?: Recipients;
  tags?: string[];
  metadata?: Record<string, unknown>;
  headers?: Record<string, string>;
  list_unsubscribe?: string | string[];
  attachments?: Attachment[];
  /** A Date, or ISO 8601 text; at most 30 days ahead. */
  scheduled_at?: Date | string;
  track_opens?: boolean;
  track_clicks?: boolean;
  [field: string]: unknown;
}

export interface BatchParams extends Omit<Partial<MessageParams>, 'to' | 'subject'> {
  messages: Array<Partial<MessageParams>>;
}

export interface CallOptions {
  /** Makes retries of your own safe: the same key and body never send twice (24 hours). */
  idempotencyKey?: string;
}

export interface SuppressedRecipient {
  field: string;
  email: string;
  reason: string;
}

export interface SendResult {
  message_id: string;
  status: 'sent' | 'queued';
  to: string;
  from: string;
  queue_id?: number;
  scheduled_at?: string;
  suppressed?: SuppressedRecipient[];
  ignored_fields?: string[];
}

export type BatchItemResult =
  | {
      to: string;
      status: 'queued';
      queue_id: number;
      message_id: string;
      suppressed?: SuppressedRecipient[];
    }
  | {
      to: string | null;
      status: 'failed';
      /** The error /send would answer for it. */
      code: 'VALIDATION_ERROR' | 'RECIPIENT_SUPPRESSED';
      error: string;
      details: Array<Record<string, unknown>>;
    };

export interface BatchResult {
  total: number;
  queued: number;
  failed: number;
  messages: BatchItemResult[];
  ignored_fields?: string[];
  [field: string]: unknown;
}

export interface MessageEvent {
  event_type: string;
  created_at: string;
  [field: string]: unknown;
}

export interface MessageRecord {
  message_id: string;
  queue_id: number;
  from_email: string;
  from_name: string | null;
  /** The `to` addresses, comma-separated. */
  to_email: string;
  cc: string[];
  bcc: string[];
  reply_to: string | null;
  subject: string;
  status: string;
  error_message: string | null;
  attempts: number;
  next_attempt_at: string | null;
  held_reason: string | null;
  tags: string[];
  metadata: Record<string, unknown>;
  test: boolean;
  sent_at: string | null;
  created_at: string;
  first_opened_at: string | null;
  first_clicked_at: string | null;
  scheduled_at: string | null;
  attachments: Array<{ filename: string; content_type: string; size: number; content_id: string | null }>;
  [field: string]: unknown;
}

export interface MessageStatus {
  message: MessageRecord;
  /** Oldest first. */
  events: MessageEvent[];
}

export interface CancelResult {
  message_id: string;
  queue_id: number;
  status: 'cancelled';
}

export interface Suppression {
  email: string;
  reason: string;
  message_id: string | null;
  created_at: string;
}

export interface SuppressionPage {
  suppressions: Suppression[];
  next_cursor: string | null;
}

export type ProviderKind = 'smtp' | 'ses' | 'sendgrid' | 'mailgun' | 'direct';
export type Security = 'starttls' | 'tls' | 'none';

export interface ProviderSettings {
  host?: string | null;
  port?: number | null;
  security?: Security | null;
  username?: string | null;
  /** Write-only: never returned. */
  password?: string | null;
  region?: string | null;
  from_email?: string | null;
  from_name?: string | null;
  hourly_limit?: number | null;
  daily_limit?: number | null;
  track_opens?: boolean;
  track_clicks?: boolean;
  /** SendGrid's verification key or Mailgun's signing key; write-only. */
  webhook_key?: string | null;
  /** Ids of the providers its mail fails over to, in order. */
  fallbacks?: number[] | null;
}

export interface NewProvider extends ProviderSettings {
  name: string;
  kind: ProviderKind;
  default?: boolean;
}

export interface ProviderChanges extends ProviderSettings {
  name?: string;
  kind?: ProviderKind;
  default?: true;
}

export interface Provider {
  id: number;
  name: string;
  kind: ProviderKind;
  host: string;
  port: number;
  security: Security;
  username: string | null;
  password_set: boolean;
  region: string | null;
  from_email: string | null;
  from_name: string | null;
  hourly_limit: number | null;
  daily_limit: number | null;
  default: boolean;
  track_opens: boolean;
  track_clicks: boolean;
  webhook_url: string | null;
  webhook_key_set: boolean;
  down_until: string | null;
  down_reason: string | null;
  fallbacks: number[];
  created_at: string;
  updated_at: string;
}

export interface ProviderTest {
  id: number;
  ok: boolean;
  error: string | null;
  transcript: string[];
}

export type Permission = 'mail' | 'providers' | 'domains' | 'keys' | 'suppressions' | 'webhooks';

export interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  permissions: Permission[];
  test: boolean;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface CreatedApiKey extends ApiKey {
  /** The key itself: in this answer only. */
  key: string;
}

export interface WebhookEndpoint {
  id: number;
  url: string;
  event_types: string[];
  enabled: boolean;
  failing_since: string | null;
  disabled_reason: string | null;
  created_at: string;
}

export interface CreatedWebhookEndpoint extends WebhookEndpoint {
  /** The signing secret (`whsec_…`): in this answer only. */
  secret: string;
}

export interface WebhookDelivery {
  webhook_id: string;
  event_type: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  delivered_at: string | null;
  created_at: string;
}

export interface ClientOptions {
  /** Default: $MAILPASS_API_URL, else http://127.0.0.1:8000. */
  baseUrl?: string;
  /** Milliseconds a try may take (default 60000). */
  timeout?: number;
  /** Tries after the first (default 2). */
  maxRetries?: number;
  /** Milliseconds before the first retry, doubling (default 500). */
  retryBackoff?: number;
  headers?: Record<string, string>;
  fetch?: typeof fetch;
  /** Called when the server ignored fields of a request (default: console.warn). */
  onIgnoredFields?: (fields: string[]) => void;
}

declare class Mail {
  send(message: MessageParams, options?: CallOptions): Promise<SendResult>;
  sendBatch(batch: BatchParams, options?: CallOptions): Promise<BatchResult>;
  status(messageId: string): Promise<MessageStatus>;
  cancel(messageId: string): Promise<CancelResult>;
}

declare class Suppressions {
  list(options?: { limit?: number; cursor?: string; search?: string }): Promise<SuppressionPage>;
  add(email: string, options?: { reason?: string }): Promise<{ email: string; reason: string; added: boolean }>;
  remove(email: string): Promise<{ email: string; removed: true }>;
}

declare class Providers {
  list(): Promise<Provider[]>;
  get(id: number): Promise<Provider>;
  create(fields: NewProvider): Promise<Provider>;
  update(id: number, changes: ProviderChanges): Promise<Provider>;
  delete(id: number): Promise<{ id: number; deleted: true }>;
  setDefault(id: number): Promise<Provider>;
  test(id: number): Promise<ProviderTest>;
}

declare class Keys {
  list(): Promise<ApiKey[]>;
  create(fields?: { name?: string; permissions?: Permission[]; test?: boolean }): Promise<CreatedApiKey>;
  revoke(id: number): Promise<ApiKey>;
}

declare class Webhooks {
  list(): Promise<WebhookEndpoint[]>;
  create(fields: { url: string; event_types?: string[] }): Promise<CreatedWebhookEndpoint>;
  delete(id: number): Promise<{ id: number; deleted: true }>;
  deliveries(id: number, options?: { limit?: number }): Promise<WebhookDelivery[]>;
  sendTest(id: number): Promise<{ id: number; queued: true }>;
  enable(id: number): Promise<WebhookEndpoint>;
}

export class MailPass {
  constructor(apiKey?: string, options?: ClientOptions);
  readonly baseUrl: string;
  readonly mail: Mail;
  readonly suppressions: Suppressions;
  readonly providers: Providers;
  readonly keys: Keys;
  readonly webhooks: Webhooks;
}
export { MailPass as Client };
export default MailPass;

export class MailPassError extends Error {}
export class ConfigurationError extends MailPassError {}
export class APIConnectionError extends MailPassError {}
export class APITimeoutError extends APIConnectionError {}
export class APIError extends MailPassError {
  readonly status: number;
  readonly code: string | null;
  readonly details: Array<Record<string, unknown>>;
  /** Seconds, from Retry-After. */
  readonly retryAfter: number | null;
  /** The stored answer of an earlier request with the same Idempotency-Key. */
  readonly replayed: boolean;
}
export class ValidationError extends APIError {}
export class UnauthorizedError extends APIError {}
export class ForbiddenError extends APIError {}
export class NotFoundError extends APIError {}
export class MethodNotAllowedError extends APIError {}
export class IdempotencyConflictError extends APIError {}
export class IdempotencyInProgressError extends APIError {}
export class NotCancellableError extends APIError {}
export class RequestTimeoutError extends APIError {}
export class PayloadTooLargeError extends APIError {}
export class HeadersTooLargeError extends APIError {}
export class NoSmtpProviderError extends APIError {}
export class RecipientSuppressedError extends APIError {}
export class SendLimitExceededError extends APIError {}
export class RateLimitedError extends APIError {}
export class InternalServerError extends APIError {}
export class ServiceUnavailableError extends APIError {}
export class SendFailedError extends APIError {
  readonly smtpCode: number | null;
  readonly smtpReply: string | null;
}
export const ERROR_CLASSES: Record<string, typeof APIError>;

export class WebhookVerificationError extends MailPassError {}
/** The delivery's JSON once its signature is checked; throws WebhookVerificationError. */
export function verifyWebhook(
  payload: string | Uint8Array | ArrayBuffer,
  headers: Headers | Record<string, string | string[] | undefined>,
  secret: string,
  options?: { now?: number },
): Promise<Record<string, unknown>>;
