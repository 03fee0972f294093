// Compiled with `tsc --strict --noEmit` by the project's tests: the SDK's types describe what
// its calls take and give, so that a typed application gets its mistakes at compile time.
import MailPass, {
  MailPass as Named,
  SendFailedError,
  ValidationError,
  verifyWebhook,
  type BatchResult,
  type CreatedApiKey,
  type MessageStatus,
  type Provider,
  type SendResult,
} from 'mailpass';

export async function typed(client: MailPass): Promise<string[]> {
  const sent: SendResult = await client.mail.send(
    { to: ['a@example.com'], subject: 'Hi', html: '<p>Hi</p>', scheduled_at: new Date() },
    { idempotencyKey: 'k' },
  );
  const batch: BatchResult = await client.mail.sendBatch({
    from_email: 'shop@example.com',
    messages: [{ to: 'b@example.com', subject: 'B', text: 'b' }],
  });
  const notes: string[] = [sent.message_id, String(batch.queued)];
  for (const item of batch.messages) {
    notes.push(item.status === 'failed' ? item.code : item.message_id);
  }
  const status: MessageStatus = await client.mail.status(sent.message_id);
  notes.push(status.message.to_email, ...status.events.map((event) => event.event_type));
  const provider: Provider = await client.providers.create({ name: 'relay', kind: 'smtp', host: 'h' });
  notes.push(provider.password_set ? 'set' : 'unset');
  const key: CreatedApiKey = await client.keys.create({ permissions: ['mail'] });
  notes.push(key.key);
  try {
    await client.mail.send({ to: 'x', subject: 'y' });
  } catch (error) {
    if (error instanceof SendFailedError) notes.push(String(error.smtpCode));
    if (error instanceof ValidationError) notes.push(String(error.details.length));
  }
  const event = await verifyWebhook('{}', new Headers(), 'whsec_x');
  notes.push(String(event.type));
  return notes;
}

export const client: MailPass = new Named('mp_live_x', { baseUrl: 'http://127.0.0.1:8000', maxRetries: 1 });

// What must not compile: a send without a subject, an unknown provider kind, a wrong option.
// @ts-expect-error subject is required
client.mail.send({ to: 'a@example.com' });
// @ts-expect-error no such provider kind
client.providers.create({ name: 'x', kind: 'postfix' });
// @ts-expect-error no such option
new MailPass('k', { retries: 3 });
