/**
 * Single use shared by every guard and Authority instance that points at one Redis: a key is
 * claimed by one script that Redis executes atomically (set the key to a token unique to this
 * claim, unless it is set), so of any number of concurrent claims from any number of processes
 * exactly one wins. The token tells a claim's own earlier attempt from another's: a client that
 * resends a command after a reconnection (ioredis does, for commands that got no reply) would
 * otherwise read its own claim back as a replay and refuse a first use.
 *
 * Fail closed: a Redis that is down, slow (beyond `timeoutMs`) or answering with an error makes
 * `use()` throw `REPLAY_STORE_UNAVAILABLE`; it never resolves true without Redis having recorded
 * the key.
 */
import { randomBytes } from 'node:crypto'
import { MandateError, type ReplayStore } from '@mandate/core'
import { Redis, type Cluster } from 'ioredis'
import { boundedKey } from './key.js'

/** What the store needs of a client: an ioredis `Redis` or `Cluster` instance. */
export type RedisClient = Redis | Cluster

export interface RedisReplayStoreOptions {
  /** A Redis URL (`redis://` or `rediss://`); the store creates and owns the client. */
  url?: string
  /** Or an ioredis client (Redis or Cluster) you own: the store never closes it. */
  client?: RedisClient
  /** Prefix of every key, so several deployments can share one Redis. Default `mandate:replay:`. */
  prefix?: string
  /** A command that has not answered after this many ms fails (REPLAY_STORE_UNAVAILABLE). Default 500. */
  timeoutMs?: number
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

/** A `ReplayStore` on Redis. Build it with {@link createRedisReplayStore}. */
export class RedisReplayStore implements ReplayStore {
  readonly #client: RedisClient
  readonly #owned: boolean
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #onError: ((err: unknown) => void) | undefined
  readonly #now: () => number

  constructor(options: RedisReplayStoreOptions) {
    if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'createRedisReplayStore needs { url } or { client }')
    const { url, client } = options
    if ((url === undefined) === (client === undefined)) throw new MandateError('CONFIG_INVALID', 'give exactly one of url or client')
    const timeoutMs = options.timeoutMs ?? 500
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) throw new MandateError('CONFIG_INVALID', 'timeoutMs must be an integer 1..60000')
    const prefix = options.prefix ?? DEFAULT_PREFIX
    if (typeof prefix !== 'string' || Buffer.byteLength(prefix) > 128) throw new MandateError('CONFIG_INVALID', 'prefix must be a string of at most 128 bytes')
    this.#prefix = prefix
    this.#timeoutMs = timeoutMs
    this.#onError = options.onError
    this.#now = options.now ?? Date.now
    if (url !== undefined) {
      if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) throw new MandateError('CONFIG_INVALID', 'url must be a redis:// or rediss:// URL')
      this.#client = new Redis(url, {
        // a command waits for at most one reconnection attempt; our own timer bounds it anyway
        maxRetriesPerRequest: 1,
        commandTimeout: timeoutMs,
        connectTimeout: Math.max(timeoutMs, 1000),
        // keep reconnecting (capped backoff) so the store works again as soon as Redis is back
        retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
      })
      // an unhandled 'error' event would be printed for every reconnection attempt; report it instead
      this.#client.on('error', (err) => this.#report(err))
      this.#owned = true
    } else {
      if (typeof client !== 'object' || client === null || typeof (client as Redis).set !== 'function') throw new MandateError('CONFIG_INVALID', 'client must be an ioredis Redis or Cluster instance')
      this.#client = client
      this.#owned = false
    }
  }

  /**
   * Claim `key` until `expiresAt` (seconds since the epoch; kept through that second). Resolves
   * true for the first use, false for a replay; throws REPLAY_STORE_UNAVAILABLE when Redis cannot
   * say.
   */
  async use(key: string, expiresAt: number): Promise<boolean> {
    if (typeof key !== 'string' || key.length === 0) throw new MandateError('CONFIG_INVALID', 'replay key must be a non-empty string')
    if (!Number.isFinite(expiresAt)) throw new MandateError('CONFIG_INVALID', 'replay expiresAt must be a finite number of seconds')
    // A relative TTL on the verifier's clock (not PXAT on Redis's): how long a key must live is
    // decided by the clock that judged the credential fresh, so a Redis host whose clock runs ahead
    // cannot shorten it. An already-expired key is still written (≥ 1 s): the answer never skips Redis.
    const ttl = Math.max(1000, Math.ceil((Math.floor(expiresAt) + 1) * 1000 - this.#now()))
    return this.#claim(boundedKey(this.#prefix, key), ttl)
  }

  async #claim(key: string, ttl: number): Promise<boolean> {
    const token = randomBytes(16).toString('base64url')
    const answer = await this.#run(() => this.#client.eval(CLAIM, 1, key, token, String(ttl)))
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
   * CONFIG_INVALID when it evicts; a Redis that does not answer INFO is not checked for eviction.
   */
  async ping(): Promise<void> {
    // the very command use() sends (a Redis user allowed SET but not EVAL would look ready otherwise)
    if (!(await this.#claim(boundedKey(this.#prefix, `readiness-check:${randomBytes(9).toString('base64url')}`), 1000))) {
      throw this.#unavailable(new Error('a fresh readiness key was already claimed'))
    }
    // INFO may be refused (managed Redis): then eviction is not checked, and nothing is reported
    let timer: ReturnType<typeof setTimeout> | undefined
    const info = await Promise.race([
      this.#client.info('memory').catch(() => undefined),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), this.#timeoutMs))),
    ]).finally(() => clearTimeout(timer))
    const policy = typeof info === 'string' ? /^maxmemory_policy:(\S+)/m.exec(info)?.[1] : undefined
    if (policy !== undefined && policy !== 'noeviction') {
      throw new MandateError('CONFIG_INVALID', `Redis evicts keys (maxmemory-policy ${policy.slice(0, 40)}): evicted single-use keys would let replays through; set maxmemory-policy noeviction`)
    }
  }

  /** Close the client if the store created it (from `url`); a given client is left to its owner. */
  async close(): Promise<void> {
    if (!this.#owned) return
    try {
      await this.#client.quit()
    } catch {
      this.#client.disconnect()
    }
  }

  async #run<T>(command: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from Redis within ${this.#timeoutMs} ms`)), this.#timeoutMs)
    })
    try {
      return await Promise.race([command(), timeout])
    } catch (err) {
      throw this.#unavailable(err)
    } finally {
      clearTimeout(timer)
    }
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
