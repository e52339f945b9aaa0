/**
 * Cross-instance events over LISTEN/NOTIFY. Writers publish `pg_notify` inside their transaction (so
 * an event is delivered exactly when its change commits); every instance keeps one dedicated
 * connection LISTENing and hands other instances' events to the store's subscribers. When that
 * connection breaks it reconnects by itself (backoff up to 5 s) and then announces `resync`, since
 * events of the outage were missed. A half-open connection (the peer gone without a FIN, a stopped
 * server) never reports an error by itself: a heartbeat `SELECT 1` every `heartbeatMs` that is not
 * answered within that time destroys the connection, which then reconnects and resyncs the same way.
 */
import { randomUUID } from 'node:crypto'
import type { StoreChange } from '@mandate/authority'
import type pg from 'pg'
import { connectClient } from './pool_client.js'

export const CHANNEL = 'mandate_store'

const KINDS = new Set(['approval', 'audit', 'revocation', 'keys'])

/** The event of a NOTIFY payload sent by another instance, or undefined (ours, or malformed). */
export function parseChange(payload: string | undefined, self: string): StoreChange | undefined {
  if (payload === undefined || payload.length > 4096) return undefined
  let v: unknown
  try {
    v = JSON.parse(payload)
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const { o, kind, id, seq } = v as Record<string, unknown>
  if (o === self || typeof kind !== 'string' || !KINDS.has(kind)) return undefined
  if (kind === 'approval') return typeof id === 'string' && id.length <= 128 ? { kind, id } : undefined
  if (kind === 'audit') return typeof seq === 'number' && Number.isSafeInteger(seq) && seq > 0 ? { kind, seq } : undefined
  return { kind } as StoreChange
}

export class ChangeChannel {
  /** This instance's id in the payloads (its own events are not handed back to it). */
  readonly instance = randomUUID()
  #client: pg.PoolClient | undefined
  /** The current connection's own listeners, removed on stop. */
  #handlers: { lost: (err?: Error) => void; ended: () => void } | undefined
  #stopped = false
  #retry: ReturnType<typeof setTimeout> | undefined
  #backoff = 100
  #heartbeat: ReturnType<typeof setInterval> | undefined
  readonly #heartbeatMs: number

  constructor(private readonly pool: pg.Pool, private readonly deliver: (change: StoreChange) => Promise<void>, options: { heartbeatMs?: number } = {}) {
    this.#heartbeatMs = options.heartbeatMs ?? 30_000
  }

  /** Connect and LISTEN (rejects when the database cannot be reached: the store does not open). */
  async start(): Promise<void> {
    await this.#connect()
  }

  async #connect(): Promise<void> {
    let dead = false
    let client: pg.PoolClient | undefined
    let early: Error | undefined
    const lost = (err?: Error) => {
      // an error the pool saw before connectClient resolved: handled once the client is known
      if (!client) return void (early = err ?? new Error('listener connection ended'))
      if (dead) return
      dead = true
      client.removeAllListeners('notification')
      client.release(err ?? new Error('listener connection ended'))
      if (this.#client === client) this.#client = undefined
      this.#schedule()
    }
    client = await connectClient(this.pool, lost)
    if (early) {
      lost(early)
      throw early
    }
    const ended = () => lost()
    client.on('end', ended)
    this.#handlers = { lost, ended }
    client.on('notification', (msg: pg.Notification) => {
      if (msg.channel !== CHANNEL) return
      const change = parseChange(msg.payload, this.instance)
      if (change) void this.deliver(change)
    })
    try {
      await client.query(`LISTEN ${CHANNEL}`)
    } catch (err) {
      lost(err as Error)
      throw err
    }
    if (this.#stopped) {
      // stopped while connecting: nothing may keep a pool connection checked out (pool.end() would wait for it)
      dead = true
      client.release()
      return
    }
    this.#client = client
    this.#backoff = 100
    this.#startHeartbeat(client, lost)
  }

  /** Probe `client` every heartbeatMs; no answer (or an error) within it → the connection is lost. */
  #startHeartbeat(client: pg.PoolClient, lost: (err?: Error) => void): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat)
    let inFlight = false
    const beat = setInterval(() => {
      if (this.#client !== client) {
        clearInterval(beat)
        return
      }
      if (inFlight) return
      inFlight = true
      let answered = false
      const timer = setTimeout(() => {
        if (answered || this.#client !== client) return
        // no answer: half-open or stuck. Destroy the socket (its pending query fails) and reconnect
        const err = new Error(`the LISTEN connection did not answer a heartbeat within ${this.#heartbeatMs} ms`)
        ;(client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.()
        lost(err)
      }, this.#heartbeatMs)
      timer.unref?.()
      client.query('SELECT 1').then(
        () => {
          answered = true
          clearTimeout(timer)
          inFlight = false
        },
        (err: Error) => {
          answered = true
          clearTimeout(timer)
          inFlight = false
          lost(err)
        },
      )
    }, this.#heartbeatMs)
    beat.unref?.()
    this.#heartbeat = beat
  }

  #schedule(): void {
    if (this.#stopped || this.#retry) return
    const wait = this.#backoff
    this.#backoff = Math.min(5000, this.#backoff * 2)
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (this.#stopped) return
      this.#connect().then(
        // whatever changed while we were not listening: waiters re-read, keys are reloaded
        () => void this.deliver({ kind: 'resync' }),
        () => this.#schedule(),
      )
    }, wait)
    this.#retry.unref?.()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#retry) clearTimeout(this.#retry)
    if (this.#heartbeat) clearInterval(this.#heartbeat)
    const c = this.#client
    this.#client = undefined
    if (!c) return
    c.removeAllListeners('notification')
    // only this channel's own listeners: the pool's and the connection watcher's (pool_client.ts) stay
    const h = this.#handlers
    this.#handlers = undefined
    if (h) {
      c.off('error', h.lost)
      c.off('end', h.ended)
    }
    await c.query(`UNLISTEN ${CHANNEL}`).catch(() => undefined)
    c.release()
  }
}
