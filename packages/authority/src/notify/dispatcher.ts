/**
 * The delivery worker of the notification outbox. It never runs inside a request: the exchange or
 * decision only writes outbox rows (in its own transaction); this worker, woken by the committed
 * audit record and by timers, sends them. Bounded: `concurrency` requests in flight, a timeout per
 * request, `maxAttempts` per message with exponential backoff and jitter, then the row is marked
 * failed (and shown to admins). Rows of one approval go out in order per endpoint: the store hands
 * out a row only when no earlier row of the same endpoint and approval is still pending.
 * Rows are durable, so pending deliveries resume when an Authority opens the same store again.
 */
import { MandateError } from '@mandate/core'
import type { AuthorityStore, OutboxRow } from '../store/store.js'
import type { AuditRecord } from '../types.js'
import { attemptDelivery } from './deliver.js'
import { notificationEvent, outboxPlanner, type NotificationEventType } from './events.js'
import { redactedUrl, type ResolvedEndpoint, type ResolvedNotifications } from './options.js'
import { buildPayload, slackBody } from './payload.js'
import { signWebhook } from './sign.js'

/** One endpoint as admins see it (no secret, and only the origin of the URL). */
export interface NotificationEndpointStatus {
  id: string
  /** Origin of the URL only: the path of some webhooks (Slack) is itself a secret. */
  url: string
  format: 'standard' | 'slack'
  events: NotificationEventType[]
  includeArguments: boolean
  pending: number
  delivered: number
  failed: number
  lastSuccessAt?: string
  lastFailureAt?: string
  lastError?: string
}

/** A message that was given up on after its last attempt. */
export interface FailedNotification {
  endpoint: string
  messageId: string
  event: string
  auditSeq: number
  approval?: string
  attempts: number
  lastError?: string
  lastStatus?: number
  createdAt: string
  failedAt?: string
}

/** Delivery status of the notification outbox (`GET /admin/notifications`, `Authority.notificationStatus()`). */
export interface NotificationStatus {
  enabled: boolean
  endpoints: NotificationEndpointStatus[]
  recentFailures: FailedNotification[]
}

const PRUNE_EVERY_MS = 3_600_000
/** Delivered rows are kept this long (the admin status counts them), then pruned. */
const KEEP_DELIVERED_MS = 7 * 86_400_000
const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString())

/** The outbox of a store, all of whose methods the dispatcher needs. */
type OutboxStore = AuthorityStore & Required<Pick<AuthorityStore, 'planOutboxWith' | 'outboxDue' | 'outboxNextDue' | 'outboxUpdate' | 'outboxStats' | 'outboxFailed' | 'outboxPrune'>>

function hasOutbox(store: AuthorityStore): store is OutboxStore {
  return ['planOutboxWith', 'outboxDue', 'outboxNextDue', 'outboxUpdate', 'outboxStats', 'outboxFailed', 'outboxPrune'].every((m) => typeof (store as unknown as Record<string, unknown>)[m] === 'function')
}

export class NotificationDispatcher {
  readonly #store: OutboxStore
  readonly #o: ResolvedNotifications
  readonly #endpoints: Map<string, ResolvedEndpoint>
  readonly #inflight = new Map<number, Promise<void>>()
  readonly #stop = new AbortController()
  #closed = false
  #timer: ReturnType<typeof setTimeout> | undefined
  #pumping: Promise<void> | undefined
  #again = false
  #lastPrune = 0
  readonly #perEndpoint = new Map<string, number>()
  /** Requests in flight per endpoint: all slots for one endpoint, half of them (rounded up) for several. */
  readonly #endpointCap: number

  /** CONFIG_INVALID when the store keeps no outbox. Nothing is installed before start(). */
  constructor(store: AuthorityStore, options: ResolvedNotifications) {
    if (!hasOutbox(store)) throw new MandateError('CONFIG_INVALID', `notifications need a store with an outbox (the memory and SQLite stores have one; this "${String(store.kind).slice(0, 40)}" store has not)`)
    this.#store = store
    this.#o = options
    this.#endpoints = new Map(options.endpoints.map((e) => [e.id, e]))
    this.#endpointCap = options.endpoints.length > 1 ? Math.ceil(options.delivery.concurrency / 2) : options.delivery.concurrency
  }

  /**
   * Install the outbox planner on the store (from now on its audit transactions write outbox rows)
   * and start delivering, pending rows of an earlier run first.
   */
  start(): void {
    this.#store.planOutboxWith(outboxPlanner(this.#o.endpoints))
    this.#kick()
  }

  /** An audit record was committed: deliver its notifications now. */
  onRecord(rec: AuditRecord): void {
    if (notificationEvent(rec) !== undefined) this.#kick()
  }

  #kick(): void {
    if (this.#closed) return
    if (this.#pumping) {
      this.#again = true
      return
    }
    this.#pumping = this.#pump()
      .catch(() => this.#schedule(1000)) // a store error: try again shortly
      .finally(() => {
        this.#pumping = undefined
        // a record committed while this pass was finishing is not left for the timer
        if (this.#again) this.#kick()
      })
  }

  async #pump(): Promise<void> {
    do {
      this.#again = false
      const free = this.#o.delivery.concurrency - this.#inflight.size
      if (free <= 0) return // a finishing delivery kicks again
      const rows = await this.#store.outboxDue({ now: Date.now(), exclude: [...this.#inflight.keys()], limit: Math.min(200, free * 4) })
      let started = 0
      for (const row of rows) {
        if (this.#closed || started >= free) return
        // fairness: an endpoint that hangs holds at most its share of the slots, not all of them
        if ((this.#perEndpoint.get(row.endpoint) ?? 0) >= this.#endpointCap) continue
        started++
        this.#perEndpoint.set(row.endpoint, (this.#perEndpoint.get(row.endpoint) ?? 0) + 1)
        const p = this.#deliver(row)
          .catch(() => undefined)
          .finally(() => {
            this.#inflight.delete(row.id)
            this.#perEndpoint.set(row.endpoint, (this.#perEndpoint.get(row.endpoint) ?? 1) - 1)
            this.#kick()
          })
        this.#inflight.set(row.id, p)
      }
    } while (this.#again && !this.#closed)
    const next = await this.#store.outboxNextDue()
    if (next !== undefined) this.#schedule(next - Date.now())
    if (Date.now() - this.#lastPrune > PRUNE_EVERY_MS) {
      this.#lastPrune = Date.now()
      await this.#store.outboxPrune(Date.now() - KEEP_DELIVERED_MS)
    }
  }

  #schedule(ms: number): void {
    if (this.#closed) return
    if (this.#timer) clearTimeout(this.#timer)
    // due rows still pending may be in flight or wait for an earlier row: their completion kicks
    // the worker; the timer is for retries coming due (and a safety net)
    const delay = Math.min(30_000, Math.max(10, ms > 0 ? ms : 1000))
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#kick()
    }, delay)
    this.#timer.unref?.()
  }

  #backoff(attempts: number): number {
    const { initialBackoffMs, maxBackoffMs } = this.#o.delivery
    const full = Math.min(maxBackoffMs, initialBackoffMs * 2 ** Math.min(attempts - 1, 30))
    // "equal jitter": at least half the delay, so retries of many messages spread out
    return Math.round(full / 2 + Math.random() * (full / 2))
  }

  async #deliver(row: OutboxRow): Promise<void> {
    const ep = this.#endpoints.get(row.endpoint)
    const attempts = row.attempts + 1
    if (!ep) {
      await this.#store.outboxUpdate(row.id, { status: 'failed', attempts: row.attempts, nextAttemptAt: row.nextAttemptAt, lastError: 'endpoint no longer configured', lastFailureAt: Date.now() })
      return
    }
    let body = row.body
    let built: string | undefined
    if (body === undefined) {
      try {
        const payload = await buildPayload(this.#store, row.event as NotificationEventType, row.record, { includeArguments: ep.includeArguments, dashboardUrl: this.#o.dashboardUrl })
        body = built = JSON.stringify(ep.format === 'slack' ? slackBody(payload) : payload)
      } catch {
        await this.#failed(row, attempts, 'the notification could not be built (store error)', undefined, undefined)
        return
      }
    }
    const headers = signWebhook(ep.keys, row.messageId, Date.now() / 1000, body)
    const out = await attemptDelivery(ep.url, { ...headers }, body, this.#o.delivery.timeoutMs, this.#stop.signal)
    if (out.ok) {
      await this.#store.outboxUpdate(row.id, { status: 'delivered', attempts, nextAttemptAt: row.nextAttemptAt, deliveredAt: Date.now(), ...(built !== undefined ? { body: built } : {}) })
      return
    }
    // cut short because the Authority is closing: not an attempt; the row stays pending for the next start
    if (this.#stop.signal.aborted) return
    await this.#failed(row, attempts, out.error, out.status, built)
  }

  async #failed(row: OutboxRow, attempts: number, error: string, status: number | undefined, body: string | undefined): Promise<void> {
    const now = Date.now()
    const final = attempts >= this.#o.delivery.maxAttempts
    await this.#store.outboxUpdate(row.id, {
      status: final ? 'failed' : 'pending', attempts, nextAttemptAt: final ? row.nextAttemptAt : now + this.#backoff(attempts),
      lastError: error, lastFailureAt: now, ...(status !== undefined ? { lastStatus: status } : {}), ...(body !== undefined ? { body } : {}),
    })
  }

  /** Delivery status for admins. */
  async status(): Promise<NotificationStatus> {
    const stats = new Map((await this.#store.outboxStats()).map((s) => [s.endpoint, s]))
    const endpoints = this.#o.endpoints.map((e): NotificationEndpointStatus => {
      const s = stats.get(e.id)
      const out: NotificationEndpointStatus = {
        id: e.id, url: redactedUrl(e.url), format: e.format, events: [...e.events], includeArguments: e.includeArguments,
        pending: s?.pending ?? 0, delivered: s?.delivered ?? 0, failed: s?.failed ?? 0,
      }
      const ok = iso(s?.lastSuccessAt)
      const bad = iso(s?.lastFailureAt)
      if (ok) out.lastSuccessAt = ok
      if (bad) out.lastFailureAt = bad
      if (s?.lastError) out.lastError = s.lastError
      return out
    })
    const recentFailures = (await this.#store.outboxFailed(20)).map((r): FailedNotification => {
      const f: FailedNotification = { endpoint: r.endpoint, messageId: r.messageId, event: r.event, auditSeq: r.record.seq, attempts: r.attempts, createdAt: new Date(r.createdAt).toISOString() }
      if (typeof r.record.fields.approval === 'string') f.approval = r.record.fields.approval
      if (r.lastError !== undefined) f.lastError = r.lastError
      if (r.lastStatus !== undefined) f.lastStatus = r.lastStatus
      const at = iso(r.lastFailureAt)
      if (at) f.failedAt = at
      return f
    })
    return { enabled: true, endpoints, recentFailures }
  }

  /** Stop: abort requests in flight (their rows stay pending) and wait for them. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#stop.abort()
    await this.#pumping?.catch(() => undefined)
    await Promise.allSettled([...this.#inflight.values()])
    this.#store.planOutboxWith(undefined)
  }
}
