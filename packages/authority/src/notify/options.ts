/**
 * The `notifications` option of createAuthority: webhook endpoints (Standard Webhooks signatures,
 * optionally a Slack-shaped body), the dashboard's base URL for deep links, and delivery bounds.
 * Validated strictly before anything is created: any problem is CONFIG_INVALID, and no message
 * ever repeats a secret or a URL (a Slack webhook URL is itself a secret).
 */
import { createHash } from 'node:crypto'
import { MandateError } from '@mandate/core'
import { NOTIFICATION_EVENTS, type NotificationEventType } from './events.js'

/** One webhook endpoint. */
export interface WebhookEndpointOptions {
  /** Stable id (`[A-Za-z0-9._-]{1,64}`) naming the endpoint in the outbox and the admin status. Default: derived from the URL. */
  id?: string
  /** http(s) URL the notifications are POSTed to (no user:password part). */
  url: string
  /**
   * The endpoint's signing secret, `whsec_<base64 of 24..64 random bytes>` (Standard Webhooks). During a
   * rotation give several (newest first): every message then carries one signature per secret.
   */
  secret: string | readonly string[]
  /** Event types to send (exact names, or `approval.*`, `revocation.*`, `*`). Default: all. */
  events?: readonly string[]
  /** `standard` (default): `{ type, timestamp, data }`. `slack`: `{ text, blocks }` for a Slack incoming webhook. */
  format?: 'standard' | 'slack'
  /** Include the call's arguments in approval notifications (only when the Authority stores them). Default false. */
  includeArguments?: boolean
}

/** Bounds of delivery (defaults suit production; tests shorten them). */
export interface NotificationDeliveryOptions {
  /** Attempts per message before it is marked failed. Default 15 (about 2 to 4 hours of retries). */
  maxAttempts?: number
  /** Delay before the first retry, ms; doubles per attempt (with jitter). Default 2000. */
  initialBackoffMs?: number
  /** Cap of the retry delay, ms. Default 3 600 000 (1 hour). */
  maxBackoffMs?: number
  /** Per-request timeout (connect, headers and the bounded read of the answer), ms. Default 10 000. */
  timeoutMs?: number
  /** Requests in flight at once, over all endpoints. Default 4. */
  concurrency?: number
}

export interface NotificationOptions {
  webhooks: readonly WebhookEndpointOptions[]
  /**
   * Base URL of the dashboard (e.g. `https://authority.example/dashboard`): approval notifications
   * carry `${dashboardUrl}/approvals/<id>`. Default: `<issuer>/dashboard`.
   */
  dashboardUrl?: string
  delivery?: NotificationDeliveryOptions
}

/** A validated endpoint. */
export interface ResolvedEndpoint {
  id: string
  url: URL
  /** Decoded secrets, newest first. */
  keys: Buffer[]
  events: ReadonlySet<NotificationEventType>
  format: 'standard' | 'slack'
  includeArguments: boolean
}

export interface ResolvedNotifications {
  endpoints: ResolvedEndpoint[]
  dashboardUrl: string | undefined
  delivery: Required<NotificationDeliveryOptions>
}

const bad = (message: string): MandateError => new MandateError('CONFIG_INVALID', message)
const ID = /^[A-Za-z0-9._-]{1,64}$/
const SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/

function known(o: object, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw bad(`unknown ${where} option "${k.slice(0, 40)}" (known: ${allowed.join(', ')})`)
}

function httpUrl(v: unknown, where: string): URL {
  let u: URL | undefined
  try {
    u = typeof v === 'string' ? new URL(v) : undefined
  } catch {
    u = undefined
  }
  if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw bad(`${where} must be an http(s) URL`)
  if (u.username !== '' || u.password !== '') throw bad(`${where} must not carry a user name or password`)
  return u
}

/** Decode `whsec_<base64>`; the message never includes the secret. */
export function decodeSecret(v: unknown, where: string): Buffer {
  const m = typeof v === 'string' ? SECRET.exec(v) : null
  if (!m) throw bad(`${where} must be "whsec_" followed by base64 (Standard Webhooks)`)
  const key = Buffer.from(m[1] as string, 'base64')
  if (key.length < 24 || key.length > 64) throw bad(`${where} must encode 24..64 random bytes (it encodes ${key.length})`)
  return key
}

function events(v: unknown, where: string): Set<NotificationEventType> {
  if (v === undefined) return new Set(NOTIFICATION_EVENTS)
  if (!Array.isArray(v) || v.length === 0) throw bad(`${where} must be a non-empty array of event types`)
  const out = new Set<NotificationEventType>()
  for (const e of v as unknown[]) {
    if (e === '*') NOTIFICATION_EVENTS.forEach((t) => out.add(t))
    else if (e === 'approval.*' || e === 'revocation.*') NOTIFICATION_EVENTS.filter((t) => t.startsWith(e.slice(0, -1))).forEach((t) => out.add(t))
    else if (typeof e === 'string' && (NOTIFICATION_EVENTS as readonly string[]).includes(e)) out.add(e as NotificationEventType)
    else throw bad(`${where}: unknown event type "${String(e).slice(0, 40)}" (known: ${NOTIFICATION_EVENTS.join(', ')}, approval.*, revocation.*, *)`)
  }
  return out
}

function bound(v: unknown, where: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw bad(`${where} must be an integer ${min}..${max}`)
  return v
}

/** Validate the `notifications` option (CONFIG_INVALID on any problem). */
export function resolveNotificationOptions(v: unknown, issuer: string | undefined): ResolvedNotifications {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('notifications must be { webhooks, dashboardUrl?, delivery? }')
  known(v, ['webhooks', 'dashboardUrl', 'delivery'], 'notifications')
  const o = v as Record<string, unknown>
  if (!Array.isArray(o.webhooks) || o.webhooks.length === 0 || o.webhooks.length > 32) throw bad('notifications.webhooks must be an array of 1..32 endpoints')
  const ids = new Set<string>()
  const endpoints = (o.webhooks as unknown[]).map((w, i): ResolvedEndpoint => {
    const where = `notifications.webhooks[${i}]`
    if (typeof w !== 'object' || w === null || Array.isArray(w)) throw bad(`${where} must be { id?, url, secret, events?, format?, includeArguments? }`)
    known(w, ['id', 'url', 'secret', 'events', 'format', 'includeArguments'], where)
    const e = w as Record<string, unknown>
    const url = httpUrl(e.url, `${where}.url`)
    if (e.id !== undefined && (typeof e.id !== 'string' || !ID.test(e.id))) throw bad(`${where}.id must be 1..64 of A-Z a-z 0-9 . _ -`)
    // default id: stable across restarts and reorderings of the list (the outbox refers to it)
    const id = (e.id as string | undefined) ?? `ep_${createHash('sha256').update(url.href).digest('hex').slice(0, 16)}`
    if (ids.has(id)) throw bad(`${where}: endpoint id "${id}" is used twice (give each endpoint its own id)`)
    ids.add(id)
    const secrets = typeof e.secret === 'string' ? [e.secret] : e.secret
    if (!Array.isArray(secrets) || secrets.length === 0 || secrets.length > 4) throw bad(`${where}.secret must be a secret or an array of 1..4 secrets`)
    const keys = (secrets as unknown[]).map((s, j) => decodeSecret(s, `${where}.secret${Array.isArray(e.secret) ? `[${j}]` : ''}`))
    if (e.format !== undefined && e.format !== 'standard' && e.format !== 'slack') throw bad(`${where}.format must be "standard" or "slack"`)
    if (e.includeArguments !== undefined && typeof e.includeArguments !== 'boolean') throw bad(`${where}.includeArguments must be a boolean`)
    return { id, url, keys, events: events(e.events, `${where}.events`), format: (e.format as 'standard' | 'slack' | undefined) ?? 'standard', includeArguments: e.includeArguments === true }
  })
  let dashboardUrl: string | undefined
  if (o.dashboardUrl !== undefined) {
    const u = httpUrl(o.dashboardUrl, 'notifications.dashboardUrl')
    if (u.search !== '' || u.hash !== '') throw bad('notifications.dashboardUrl must have no query or fragment')
    dashboardUrl = u.href.replace(/\/+$/, '')
  } else if (issuer !== undefined) {
    dashboardUrl = `${issuer.replace(/\/+$/, '')}/dashboard`
  }
  const d = o.delivery ?? {}
  if (typeof d !== 'object' || d === null || Array.isArray(d)) throw bad('notifications.delivery must be { maxAttempts?, initialBackoffMs?, maxBackoffMs?, timeoutMs?, concurrency? }')
  known(d, ['maxAttempts', 'initialBackoffMs', 'maxBackoffMs', 'timeoutMs', 'concurrency'], 'notifications.delivery')
  const dd = d as Record<string, unknown>
  const delivery = {
    maxAttempts: bound(dd.maxAttempts, 'notifications.delivery.maxAttempts', 1, 100, 15),
    initialBackoffMs: bound(dd.initialBackoffMs, 'notifications.delivery.initialBackoffMs', 1, 3_600_000, 2000),
    maxBackoffMs: bound(dd.maxBackoffMs, 'notifications.delivery.maxBackoffMs', 1, 86_400_000, 3_600_000),
    timeoutMs: bound(dd.timeoutMs, 'notifications.delivery.timeoutMs', 100, 120_000, 10_000),
    concurrency: bound(dd.concurrency, 'notifications.delivery.concurrency', 1, 64, 4),
  }
  if (delivery.maxBackoffMs < delivery.initialBackoffMs) throw bad('notifications.delivery.maxBackoffMs must be at least initialBackoffMs')
  return { endpoints, dashboardUrl, delivery }
}

/** What the admin status shows of an endpoint URL: its origin only (the path of a Slack webhook is its secret). */
export function redactedUrl(u: URL): string {
  return u.pathname === '/' && u.search === '' ? u.origin : `${u.origin}/…`
}
