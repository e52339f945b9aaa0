/**
 * Single use shared by every guard and Authority instance that points at one Redis: a key is
 * claimed by one script that Redis executes atomically (set the key to a token unique to this
 * claim, unless it is set), so of any number of concurrent claims from any number of processes
 * exactly one wins. The token tells a claim's own earlier attempt from another's: a client that
 * resends a command after a reconnection (a caller-owned ioredis client may) would otherwise read
 * its own claim back as a replay and refuse a first use.
 *
 * Fail closed: a Redis that is down, slow (beyond `timeoutMs`), answering with an error, evicting
 * keys, or not on the configured database makes `use()` throw `REPLAY_STORE_UNAVAILABLE`; it never
 * resolves true without Redis having recorded the key.
 *
 * Recovery (a client the store owns, from `url`): a command that times out with nothing heard from
 * Redis since it was sent resets the connection (at most once per second), which drops every
 * command still queued on it — nothing stale is resent — and reconnects. A half-open connection
 * (partition, failover: bytes silently dropped) is thus replaced on the first timeout instead of
 * after the kernel's ~15 min. Commands handed to ioredis and not yet settled are capped
 * (`maxInFlight`): beyond it a claim fails at once instead of piling up while Redis hangs.
 */
import { createHash, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { MandateError, type ReplayStore } from '@mandate/core'
import { Redis, type Cluster } from 'ioredis'
import { boundedKey } from './key.js'

/** What the store needs of a client: an ioredis `Redis` or `Cluster` instance. */
export type RedisClient = Redis | Cluster

export interface RedisReplayStoreOptions {
  /** A Redis URL (`redis://` or `rediss://`); the store creates and owns the client. */
  url?: string
  /** Or an ioredis client (Redis or Cluster) you own: the store never closes it, and never resets its connection (set its own `keepAlive` / timeouts). */
  client?: RedisClient
  /** Prefix of every key, so several deployments can share one Redis. Default `mandate:replay:`. */
  prefix?: string
  /** A command that has not answered after this many ms fails (REPLAY_STORE_UNAVAILABLE). Default 500. */
  timeoutMs?: number
  /**
   * Most commands this store keeps handed to ioredis and not yet settled (answered, or dropped by a
   * connection reset). Beyond it `use()` fails at once with REPLAY_STORE_UNAVAILABLE instead of
   * queueing: a hung Redis otherwise makes the client hold every timed-out command until it
   * answers. Integer 1..1,000,000. Default 2000.
   */
  maxInFlight?: number
  /**
   * How often (ms) `use()` re-reads the `maxmemory-policy` (`INFO memory`, in the background, not
   * on the claim's path), so a switch to an evicting policy at runtime is noticed without `ping()`
   * being polled; from then on `use()` refuses until a later check sees `noeviction`. Integer
   * 100..3,600,000. Default 5000.
   */
  policyCheckEveryMs?: number
  /** Called with each Redis failure (for metrics or logs; it never carries a key's value). */
  onError?: (err: unknown) => void
  /** Clock in ms (tests). TTLs are computed on this clock, not on Redis's. */
  now?: () => number
}

const DEFAULT_PREFIX = 'mandate:replay:'

/** KEYS[1] the key, ARGV[1] this claim's token, ARGV[2] the TTL in ms: 1 when this claim holds the key, 0 when another does. */
const CLAIM = `local v = redis.call('GET', KEYS[1])
if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if v == ARGV[1] then return 1 end
return 0`
const CLAIM_SHA = createHash('sha1').update(CLAIM).digest('hex')

/** Resets of the connection are at least this far apart (and at least timeoutMs): a slow Redis must not make the store thrash. */
const MIN_RESET_INTERVAL_MS = 1000
/** TCP keep-alive delay of an owned client's socket (ms): an idle dead peer is noticed by the kernel too (NAT tables kept warm). */
const KEEPALIVE_MS = 5000

/** Whether `err` is Redis's own answer (a reply error), as opposed to a connection failure. */
function isReply(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError'
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** A `ReplayStore` on Redis. Build it with {@link createRedisReplayStore}. */
export class RedisReplayStore implements ReplayStore {
  readonly #client: RedisClient
  /** The client when the store created it (from `url`): only then does the store reset its connection. */
  readonly #owned: Redis | undefined
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #maxInFlight: number
  readonly #policyCheckEveryMs: number
  readonly #resetIntervalMs: number
  readonly #onError: ((err: unknown) => void) | undefined
  readonly #now: () => number
  /** Commands handed to ioredis and not settled yet. */
  #pending = 0
  /** When (performance.now) Redis last answered anything; -Infinity before the first answer. */
  #lastReplyAt = -Infinity
  #lastResetAt = -Infinity
  /** The `maxmemory-policy` last seen when it was not `noeviction` (use() refuses while set). */
  #unsafePolicy: string | undefined
  #policyCheckedAt = -Infinity
  #policyCheck: Promise<void> | undefined
  /** The SELECT of the URL's database index failed for good (out of range, not allowed): keys would land in db 0. */
  #badDb: Error | undefined
  /**
   * The SELECT failed for a reason a new connection may not have (too many clients, BUSY, LOADING,
   * NOAUTH): claims are refused (this connection is on db 0) until a connection selects; then cleared.
   */
  #selectFailing: Error | undefined
  /** Whether the SELECT of the current connection failed (reset on each 'connect'). */
  #selectFailedHere = false
  /** The Redis user may EVAL but not EVALSHA: send the script each time. */
  #evalOnly = false
  /** Claims waiting for the owned client's next 'ready' (rather than in ioredis's queue); each leaves on its timeout. */
  readonly #readyWaiters = new Set<() => void>()
  /** The last connection error of the owned client, the cause of a claim that found it not ready. */
  #lastConnectionError: unknown
  #closed = false

  constructor(options: RedisReplayStoreOptions) {
    if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'createRedisReplayStore needs { url } or { client }')
    const { url, client } = options
    if ((url === undefined) === (client === undefined)) throw new MandateError('CONFIG_INVALID', 'give exactly one of url or client')
    const timeoutMs = options.timeoutMs ?? 500
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) throw new MandateError('CONFIG_INVALID', 'timeoutMs must be an integer 1..60000')
    const maxInFlight = options.maxInFlight ?? 2000
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 1_000_000) throw new MandateError('CONFIG_INVALID', 'maxInFlight must be an integer 1..1000000')
    const policyCheckEveryMs = options.policyCheckEveryMs ?? 5000
    if (!Number.isSafeInteger(policyCheckEveryMs) || policyCheckEveryMs < 100 || policyCheckEveryMs > 3_600_000) throw new MandateError('CONFIG_INVALID', 'policyCheckEveryMs must be an integer 100..3600000')
    const prefix = options.prefix ?? DEFAULT_PREFIX
    if (typeof prefix !== 'string' || Buffer.byteLength(prefix) > 128) throw new MandateError('CONFIG_INVALID', 'prefix must be a string of at most 128 bytes')
    this.#prefix = prefix
    this.#timeoutMs = timeoutMs
    this.#maxInFlight = maxInFlight
    this.#policyCheckEveryMs = policyCheckEveryMs
    this.#resetIntervalMs = Math.max(MIN_RESET_INTERVAL_MS, timeoutMs)
    this.#onError = options.onError
    this.#now = options.now ?? Date.now
    if (url !== undefined) {
      if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) throw new MandateError('CONFIG_INVALID', 'url must be a redis:// or rediss:// URL')
      const owned = new Redis(url, {
        // no command outlives its connection: a reset (or any close) rejects everything queued on it,
        // and nothing is resent on the next connection (its caller was told "unavailable" long ago)
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        // commands wait for 'ready' in #run (bounded by timeoutMs), never in an unbounded offline queue
        enableOfflineQueue: false,
        connectTimeout: Math.max(timeoutMs, 1000),
        keepAlive: KEEPALIVE_MS,
        // a reset ends the socket; a peer that never acknowledges (partition) must not delay the reconnect
        disconnectTimeout: 100,
        // keep reconnecting (capped backoff) so the store works again as soon as Redis is back
        retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
      })
      // an unhandled 'error' event would be printed for every reconnection attempt; report it instead
      owned.on('error', (err: unknown) => this.#connectionError(err))
      owned.on('connect', () => void (this.#selectFailedHere = false))
      owned.on('ready', () => {
        // a connection whose SELECT went through: a passing reason to refuse is over
        if (!this.#selectFailedHere) this.#selectFailing = undefined
        this.#lastConnectionError = undefined
        const waiting = [...this.#readyWaiters]
        this.#readyWaiters.clear()
        for (const resolve of waiting) resolve()
      })
      this.#client = owned
      this.#owned = owned
    } else {
      if (typeof client !== 'object' || client === null || typeof (client as Redis).set !== 'function') throw new MandateError('CONFIG_INVALID', 'client must be an ioredis Redis or Cluster instance')
      this.#client = client
      this.#owned = undefined
    }
  }

  /**
   * Claim `key` until `expiresAt` (seconds since the epoch; kept through that second). Resolves
   * true for the first use, false for a replay; throws REPLAY_STORE_UNAVAILABLE when Redis cannot
   * say — also while Redis is seen to evict keys or the URL's database index does not exist.
   */
  async use(key: string, expiresAt: number): Promise<boolean> {
    if (typeof key !== 'string' || key.length === 0) throw new MandateError('CONFIG_INVALID', 'replay key must be a non-empty string')
    if (!Number.isFinite(expiresAt)) throw new MandateError('CONFIG_INVALID', 'replay expiresAt must be a finite number of seconds')
    // re-checked before refusing: a store refusing because of the policy must notice it reverted
    this.#maybeCheckPolicy()
    this.#refuseIfUnsafe()
    // A relative TTL on the verifier's clock (not PXAT on Redis's): how long a key must live is
    // decided by the clock that judged the credential fresh, so a Redis host whose clock runs ahead
    // cannot shorten it. An already-expired key is still written (≥ 1 s): the answer never skips Redis.
    const ttl = Math.max(1000, Math.ceil((Math.floor(expiresAt) + 1) * 1000 - this.#now()))
    const answer = await this.#claim(boundedKey(this.#prefix, key), ttl)
    // the SELECT failure is reported before the claim's answer (Redis answers in order)
    this.#refuseIfUnsafe()
    return answer
  }

  async #claim(key: string, ttl: number): Promise<boolean> {
    const token = randomBytes(16).toString('base64url')
    const answer = await this.#run(async () => {
      // checked once connected: the SELECT failure arrives before the connection is ready
      if (this.#badDb) throw this.#badDbError('REPLAY_STORE_UNAVAILABLE')
      if (this.#selectFailing) throw this.#unavailable(this.#selectFailing)
      // EVALSHA: the script text is not sent (nor held while Redis is slow) on every claim
      if (!this.#evalOnly) {
        try {
          return await this.#send(() => this.#client.evalsha(CLAIM_SHA, 1, key, token, String(ttl)))
        } catch (err) {
          // NOSCRIPT: a fresh Redis (restart, failover) has no script cache; NOPERM: a user allowed
          // EVAL only. Either way the same claim (same token) is sent as EVAL, which is safe to repeat
          const denied = /^NOPERM\b.*evalsha/i.test(errorText(err))
          if (!isReply(err) || !(denied || /^NOSCRIPT\b/.test(errorText(err)))) throw err
          if (denied) this.#evalOnly = true
        }
      }
      return this.#send(() => this.#client.eval(CLAIM, 1, key, token, String(ttl)))
    })
    if (answer === 1) return true
    if (answer === 0) return false
    throw this.#unavailable(new Error('unexpected answer from the claim script'))
  }

  /**
   * Readiness: resolves when this store can do its job. A claim, not a PING (a Redis user allowed
   * PING but not the claim would look ready while every `use()` fails), and, where Redis tells
   * (`INFO memory`), a `maxmemory-policy` of `noeviction`: under any other policy a full Redis
   * evicts single-use keys (every key here has a TTL, so `volatile-*` policies evict them too) and
   * a replay is accepted. REPLAY_STORE_UNAVAILABLE when Redis does not answer or refuses the write,
   * CONFIG_INVALID when it evicts or the URL's database index does not exist (Redis answers SELECT
   * with an error and ioredis would go on in db 0); a Redis that does not answer INFO is not
   * checked for eviction.
   */
  async ping(): Promise<void> {
    let claimed: boolean
    try {
      // the very command use() sends (a Redis user allowed SET but not EVAL would look ready otherwise)
      claimed = await this.#claim(boundedKey(this.#prefix, `readiness-check:${randomBytes(9).toString('base64url')}`), 1000)
    } catch (err) {
      if (this.#badDb) throw this.#badDbError('CONFIG_INVALID')
      throw err
    }
    if (!claimed) throw this.#unavailable(new Error('a fresh readiness key was already claimed'))
    await this.#checkPolicy()
    if (this.#unsafePolicy !== undefined) throw this.#evictsError('CONFIG_INVALID')
  }

  /** Close the client if the store created it (from `url`); a given client is left to its owner. */
  async close(): Promise<void> {
    this.#closed = true
    if (!this.#owned) return
    try {
      await this.#owned.quit()
    } catch {
      this.#owned.disconnect()
    }
  }

  /** Refuse while the store knows Redis cannot keep single use (evicting policy, wrong database). */
  #refuseIfUnsafe(): void {
    if (this.#badDb) throw this.#badDbError('REPLAY_STORE_UNAVAILABLE')
    if (this.#selectFailing) throw this.#unavailable(this.#selectFailing)
    if (this.#unsafePolicy !== undefined) throw this.#evictsError('REPLAY_STORE_UNAVAILABLE')
  }

  /** Start a background policy check when the last one is older than policyCheckEveryMs (one at a time). */
  #maybeCheckPolicy(): void {
    const now = performance.now()
    if (this.#policyCheck !== undefined || now - this.#policyCheckedAt < this.#policyCheckEveryMs) return
    this.#policyCheckedAt = now
    this.#policyCheck = this.#checkPolicy().finally(() => (this.#policyCheck = undefined))
  }

  /** Read `maxmemory-policy`; INFO refused (managed Redis) or unanswered leaves what is known unchanged. */
  async #checkPolicy(): Promise<void> {
    let info: unknown
    try {
      info = await this.#withTimeout(() => this.#send(() => this.#client.info('memory')))
    } catch {
      return
    }
    const policy = typeof info === 'string' ? /^maxmemory_policy:(\S+)/m.exec(info)?.[1] : undefined
    if (policy === undefined) return
    this.#policyCheckedAt = performance.now()
    if (policy === 'noeviction') {
      this.#unsafePolicy = undefined
    } else {
      if (this.#unsafePolicy === undefined) this.#report(new Error(`Redis evicts keys (maxmemory-policy ${policy.slice(0, 40)}); claims are refused`))
      this.#unsafePolicy = policy.slice(0, 40)
    }
  }

  #evictsError(code: 'CONFIG_INVALID' | 'REPLAY_STORE_UNAVAILABLE'): MandateError {
    return new MandateError(code, `Redis evicts keys (maxmemory-policy ${this.#unsafePolicy ?? '?'}): evicted single-use keys would let replays through; set maxmemory-policy noeviction`)
  }

  #badDbError(code: 'CONFIG_INVALID' | 'REPLAY_STORE_UNAVAILABLE'): MandateError {
    return new MandateError(code, `Redis refused to SELECT the database index in the URL (${errorText(this.#badDb).slice(0, 120)}): keys would land in db 0; use an index below the server's \`databases\` that the user may select`, { cause: this.#badDb })
  }

  #connectionError(err: unknown): void {
    this.#lastConnectionError = err
    const command = (err as { command?: { name?: unknown } } | undefined)?.command
    if (command?.name === 'select') {
      // ioredis reports a failed SELECT only as an 'error' event and carries on in db 0, so claims are
      // refused either way. An index out of range or a user not allowed SELECT will not change by
      // reconnecting (refused until restart); anything else (too many clients, BUSY, LOADING, NOAUTH)
      // may: the connection is replaced, and the first one that selects clears the refusal
      const e = err instanceof Error ? err : new Error(errorText(err))
      this.#selectFailedHere = true
      if (/^ERR (DB index is out of range|invalid DB index)|^NOPERM\b/i.test(e.message)) this.#badDb = e
      else {
        this.#selectFailing = e
        this.#reset()
        // a reset skipped (one just happened) must not leave a connection on db 0 for good: try again
        // once the interval has passed, unless a connection selected meanwhile
        const retry = setTimeout(() => {
          if (this.#selectFailing !== undefined) this.#reset()
        }, this.#resetIntervalMs + 10)
        retry.unref?.()
      }
    }
    this.#report(err)
  }

  /**
   * Hand one command to ioredis, counted until it settles (that is when ioredis lets go of it).
   * Beyond maxInFlight: refused without sending.
   */
  #send<T>(command: () => Promise<T>): Promise<T> {
    if (this.#pending >= this.#maxInFlight) return Promise.reject(new Error(`${this.#pending} Redis commands are still waiting for an answer (maxInFlight ${this.#maxInFlight})`))
    this.#pending++
    let sent: Promise<T>
    try {
      sent = command()
    } catch (err) {
      this.#pending--
      return Promise.reject(err)
    }
    sent.then(
      () => {
        this.#pending--
        this.#lastReplyAt = performance.now()
      },
      (err: unknown) => {
        this.#pending--
        if (isReply(err)) this.#lastReplyAt = performance.now()
      },
    )
    return sent
  }

  /** `work` bounded by timeoutMs; the owned client is waited for (not queued in) while it connects. */
  async #withTimeout<T>(work: () => Promise<T>): Promise<T> {
    const startedAt = performance.now()
    let timer: ReturnType<typeof setTimeout> | undefined
    let timedOut = false
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true
        const cause = this.#owned !== undefined && this.#owned.status !== 'ready' ? this.#lastConnectionError : undefined
        reject(new Error(`no answer from Redis within ${this.#timeoutMs} ms${cause !== undefined ? ` (not connected: ${errorText(cause)})` : ''}`, cause !== undefined ? { cause } : undefined))
      }, this.#timeoutMs)
    })
    try {
      const ready = this.#waitReady()
      if (ready) {
        try {
          await Promise.race([ready.promise, timeout])
        } finally {
          ready.cancel()
        }
      }
      return await Promise.race([work(), timeout])
    } catch (err) {
      if (timedOut) this.#stalled(startedAt)
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  async #run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await this.#withTimeout(command)
    } catch (err) {
      // the store's own refusal (eviction, database index) keeps its message
      if (MandateError.is(err)) throw err
      throw this.#unavailable(err)
    }
  }

  /**
   * The owned client's next 'ready', or undefined when it is ready (or not ours). One promise per
   * waiter, dropped by `cancel`: a shared never-settling promise raced against every claim's timer
   * would keep every claim of a long outage reachable.
   */
  #waitReady(): { promise: Promise<void>; cancel(): void } | undefined {
    const client = this.#owned
    if (client === undefined || client.status === 'ready' || this.#closed) return undefined
    let resolve!: () => void
    const promise = new Promise<void>((r) => (resolve = r))
    this.#readyWaiters.add(resolve)
    return { promise, cancel: () => void this.#readyWaiters.delete(resolve) }
  }

  /** A command timed out: when nothing at all was heard from Redis since it started, the connection is presumed dead. */
  #stalled(startedAt: number): void {
    if (this.#lastReplyAt > startedAt) return // Redis answered something since: a slow command, not a dead connection
    this.#reset()
  }

  /** Drop the owned client's connection (rejecting everything queued on it) and reconnect; at most once per reset interval. */
  #reset(): void {
    const client = this.#owned
    if (client === undefined || this.#closed) return
    // 'connecting' is bounded by connectTimeout; 'reconnecting' has no connection to drop
    if (client.status !== 'ready' && client.status !== 'connect') return
    const now = performance.now()
    if (now - this.#lastResetAt < this.#resetIntervalMs) return
    this.#lastResetAt = now
    this.#report(new Error('no answer from Redis on this connection: reconnecting'))
    client.disconnect(true)
  }

  #unavailable(err: unknown): MandateError {
    this.#report(err)
    return new MandateError('REPLAY_STORE_UNAVAILABLE', 'the shared replay store (Redis) did not answer; single-use credentials are refused', { cause: err })
  }

  #report(err: unknown): void {
    try {
      this.#onError?.(err)
    } catch {
      // a failing metrics hook must not change the answer
    }
  }
}

/**
 * A shared `ReplayStore` on Redis for `createGuard({ replay })` and `createAuthority({ replay })`.
 *
 * @example
 * const replay = createRedisReplayStore({ url: 'redis://127.0.0.1:6379' })
 * const guard = createGuard({ issuer, jwks, audience, replay })
 */
export function createRedisReplayStore(options: RedisReplayStoreOptions): RedisReplayStore {
  return new RedisReplayStore(options)
}
