import { isIP } from 'node:net'
import { MandateError } from '@mandate/core'

/** Bounds on the MCP sessions one handler keeps (see `McpHttpHandlerOptions.sessionLimits`). */
export interface SessionLimits {
  /**
   * Most open sessions (default 1024). When every slot is taken and no unauthenticated session may be
   * closed (see `unauthenticatedGraceMs`), a new `initialize` is refused with 503 `CAPACITY_EXCEEDED`:
   * authenticated sessions are never evicted to make room.
   */
  max?: number
  /**
   * Most sessions that have not (yet) carried a verified `tools/call` (default 128). Anyone can open
   * one, so when they are full the least recently used one past its grace period is closed to make
   * room (one from the same remote address first); when none is past it, 503 `CAPACITY_EXCEEDED`.
   */
  maxUnauthenticated?: number
  /**
   * Most unauthenticated sessions per remote address (default 16; IPv6 addresses count per /64).
   * A new one from an address at its budget can only replace that address's own oldest session past
   * its grace period, so one peer cannot push out anybody else's session. Behind a reverse proxy,
   * set `remoteAddress` on the handler, or every client shares the proxy's budget.
   */
  maxUnauthenticatedPerAddress?: number
  /**
   * An unauthenticated session younger than this is never closed to make room (default 60 000 ms):
   * agents initialize, list tools and then wait for the model before their first call.
   */
  unauthenticatedGraceMs?: number
  /**
   * Most authenticated sessions one actor (the verified `did:key` of the calling agent) holds
   * (default 32). Past it, a session that carries a verified call of that actor stays
   * unauthenticated (it still works, but counts against the unauthenticated bounds), so one agent
   * holding any valid mandate cannot take every slot.
   */
  maxAuthenticatedPerActor?: number
  /** Close a session that has had no request for this long (default 30 minutes). */
  idleTimeoutMs?: number
}

export const DEFAULT_SESSION_LIMITS = {
  max: 1024,
  maxUnauthenticated: 128,
  maxUnauthenticatedPerAddress: 16,
  unauthenticatedGraceMs: 60_000,
  maxAuthenticatedPerActor: 32,
  idleTimeoutMs: 30 * 60_000,
} as const

interface Entry<S> {
  value: S
  /** The remote address bucket the session was opened from. */
  address: string
  /** The actor whose verified call authenticated the session; unset while unauthenticated. */
  actor: string | undefined
  created: number
  lastSeen: number
}

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback
  if (!Number.isInteger(v) || v < 1) throw new MandateError('CONFIG_INVALID', `sessionLimits.${name} must be a positive integer`)
  return v
}

function nonNegativeInt(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback
  if (!Number.isInteger(v) || v < 0) throw new MandateError('CONFIG_INVALID', `sessionLimits.${name} must be a non-negative integer`)
  return v
}

/**
 * The budget bucket of a remote address: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64 prefix
 * (one host usually holds a whole /64), anything else (unknown, a proxy's label) as given.
 */
export function addressBucket(address: string | undefined): string {
  if (!address) return 'unknown'
  const a = address.toLowerCase()
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (mapped) return mapped[1] as string
  if (isIP(a) !== 6) return a
  const [head = '', tail] = a.split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups.slice(0, 4).map((g) => parseInt(g || '0', 16).toString(16)).join(':')}::/64`
}

/**
 * The open sessions of one handler, bounded in number, per remote address, per actor and in idle
 * time. New sessions start unauthenticated; {@link SessionTable.authenticate} promotes one after a
 * verified call.
 */
export class SessionTable<S> {
  readonly #entries = new Map<string, Entry<S>>()
  readonly #max: number
  readonly #maxAnon: number
  readonly #maxAnonPerAddress: number
  readonly #grace: number
  readonly #maxPerActor: number
  readonly #idle: number
  readonly #now: () => number
  readonly #close: (value: S) => void
  /** Reservations in flight (initialize requests whose session is being created), by address bucket. */
  readonly #reserved = new Map<string, number>()
  #reservedTotal = 0
  #timer: ReturnType<typeof setInterval> | undefined

  constructor(limits: SessionLimits | undefined, close: (value: S) => void, now: () => number = Date.now) {
    this.#max = positiveInt('max', limits?.max, DEFAULT_SESSION_LIMITS.max)
    this.#maxAnon = Math.min(this.#max, positiveInt('maxUnauthenticated', limits?.maxUnauthenticated, DEFAULT_SESSION_LIMITS.maxUnauthenticated))
    this.#maxAnonPerAddress = Math.min(this.#maxAnon, positiveInt('maxUnauthenticatedPerAddress', limits?.maxUnauthenticatedPerAddress, DEFAULT_SESSION_LIMITS.maxUnauthenticatedPerAddress))
    this.#grace = nonNegativeInt('unauthenticatedGraceMs', limits?.unauthenticatedGraceMs, DEFAULT_SESSION_LIMITS.unauthenticatedGraceMs)
    this.#maxPerActor = positiveInt('maxAuthenticatedPerActor', limits?.maxAuthenticatedPerActor, DEFAULT_SESSION_LIMITS.maxAuthenticatedPerActor)
    this.#idle = positiveInt('idleTimeoutMs', limits?.idleTimeoutMs, DEFAULT_SESSION_LIMITS.idleTimeoutMs)
    this.#close = close
    this.#now = now
  }

  get size(): number {
    return this.#entries.size
  }

  /** Look a session up and mark it used now. */
  touch(id: string): S | undefined {
    const e = this.#entries.get(id)
    if (!e) return undefined
    if (this.#now() - e.lastSeen >= this.#idle) {
      this.#evict(id, e)
      return undefined
    }
    e.lastSeen = this.#now()
    return e.value
  }

  /**
   * Reserve room for a new (unauthenticated) session opened from `address` (see
   * {@link addressBucket}), closing expired sessions and, if needed, an unauthenticated one past its
   * grace period: from the same address first, and only from it when that address is at its budget.
   * Release the reservation with {@link SessionTable.add} or {@link SessionTable.release}.
   *
   * @throws MandateError `CAPACITY_EXCEEDED` when no room can be made.
   */
  reserve(address: string): void {
    this.sweep()
    for (;;) {
      let anon = 0
      let anonHere = 0
      for (const e of this.#entries.values()) {
        if (e.actor !== undefined) continue
        anon++
        if (e.address === address) anonHere++
      }
      anon += this.#reservedTotal
      anonHere += this.#reserved.get(address) ?? 0
      if (anonHere >= this.#maxAnonPerAddress) {
        if (!this.#evictAnonymous(address, true)) throw this.#full('too many unauthenticated MCP sessions from this address; try again later')
      } else if (anon >= this.#maxAnon || this.#entries.size + this.#reservedTotal >= this.#max) {
        if (!this.#evictAnonymous(address, false)) throw this.#full('too many open MCP sessions; try again later')
      } else break
    }
    this.#reserved.set(address, (this.#reserved.get(address) ?? 0) + 1)
    this.#reservedTotal++
    this.#schedule()
  }

  /** Give back a reservation whose session was not stored. */
  release(address: string): void {
    const n = this.#reserved.get(address) ?? 0
    if (n === 0) return
    if (n === 1) this.#reserved.delete(address)
    else this.#reserved.set(address, n - 1)
    this.#reservedTotal--
  }

  /** Store a session created under a reservation for `address`. */
  add(id: string, value: S, address: string): void {
    this.release(address)
    const now = this.#now()
    this.#entries.set(id, { value, address, actor: undefined, created: now, lastSeen: now })
    // the timer may have stopped while this session was being created (the table was empty)
    this.#schedule()
  }

  /**
   * The session carried a verified call of `actor`: it no longer counts as unauthenticated and is
   * never evicted for room, unless that actor already holds `maxAuthenticatedPerActor` sessions
   * (then it stays unauthenticated).
   */
  authenticate(id: string, actor: string): void {
    const e = this.#entries.get(id)
    if (!e || e.actor !== undefined) return
    let held = 0
    for (const o of this.#entries.values()) if (o.actor === actor) held++
    if (held >= this.#maxPerActor) return
    e.actor = actor
  }

  /** Forget a session (it closed itself). */
  delete(id: string): void {
    this.#entries.delete(id)
    if (this.#entries.size === 0 && this.#reservedTotal === 0) this.#unschedule()
  }

  /** Close every session whose idle time is over. */
  sweep(): void {
    const now = this.#now()
    for (const [id, e] of this.#entries) if (now - e.lastSeen >= this.#idle) this.#evict(id, e)
  }

  /** Remove and return every session (for shutdown). */
  drain(): S[] {
    const all = [...this.#entries.values()].map((e) => e.value)
    this.#entries.clear()
    this.#unschedule()
    return all
  }

  #full(message: string): MandateError {
    return new MandateError('CAPACITY_EXCEEDED', message, { detail: { max: this.#max } })
  }

  /** Close the least recently used unauthenticated session past its grace period (from `address` first). */
  #evictAnonymous(address: string, onlyThisAddress: boolean): boolean {
    const now = this.#now()
    let here: [string, Entry<S>] | undefined
    let any: [string, Entry<S>] | undefined
    for (const kv of this.#entries) {
      const e = kv[1]
      if (e.actor !== undefined || now - e.created < this.#grace) continue
      if (e.address === address && (!here || e.lastSeen < here[1].lastSeen)) here = kv
      if (!any || e.lastSeen < any[1].lastSeen) any = kv
    }
    const victim = here ?? (onlyThisAddress ? undefined : any)
    if (!victim) return false
    this.#evict(victim[0], victim[1])
    return true
  }

  #evict(id: string, e: Entry<S>): void {
    this.#entries.delete(id)
    this.#close(e.value)
    if (this.#entries.size === 0 && this.#reservedTotal === 0) this.#unschedule()
  }

  // idle sessions are closed even when no new request arrives; the timer never keeps the process alive
  #schedule(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => this.sweep(), Math.max(1_000, Math.min(60_000, Math.floor(this.#idle / 2))))
    this.#timer.unref()
  }

  #unschedule(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }
}
