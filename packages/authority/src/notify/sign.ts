/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 keyed with the
 * endpoint's decoded secret over `${id}.${timestamp}.${body}`, sent as
 * `webhook-signature: v1,<base64>` — one space-separated signature per secret during a rotation.
 */
import { createHmac } from 'node:crypto'

/** The three Standard Webhooks headers of one message. */
export interface WebhookHeaders {
  'webhook-id': string
  'webhook-timestamp': string
  'webhook-signature': string
}

/** Sign `body` (the exact bytes sent) for message `id` at `timestampSeconds` with every key. */
export function signWebhook(keys: readonly Buffer[], id: string, timestampSeconds: number, body: string): WebhookHeaders {
  const ts = String(Math.floor(timestampSeconds))
  const signed = `${id}.${ts}.${body}`
  const signatures = keys.map((k) => `v1,${createHmac('sha256', k).update(signed, 'utf8').digest('base64')}`)
  return { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': signatures.join(' ') }
}
