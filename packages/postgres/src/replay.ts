/**
 * Single use shared by every guard and Authority instance on one Postgres, for teams without
 * Redis. A key is claimed with one statement:
 *
 *   INSERT … ON CONFLICT (key) DO UPDATE SET expires_at = … WHERE <the stored row has expired> RETURNING 1
 *
 * A row comes back only when the key was new or its earlier use has expired, and Postgres
 * serializes concurrent claims of one key on its unique index (the second waits for the first,
 * then re-evaluates the WHERE against the committed row), so exactly one concurrent claim wins.
 * Expiry is on the database clock (a relative TTL computed on the verifier's clock), so instances
 * with differing clocks agree. Expired rows are deleted in bounded batches every
 * `pruneEverySeconds`.
 *
 * Isolation: the claim needs READ COMMITTED semantics (the waiting claim re-checks the row the
 * winner committed). Under REPEATABLE READ or SERIALIZABLE (a database's
 * `default_transaction_isolation`) Postgres instead fails the waiting claim with a serialization
 * error (40001): a pool the store creates pins READ COMMITTED on its sessions, and on a pool of
 * yours such a claim is retried in a fresh statement (fresh snapshot) — it then sees the winner's
 * row and answers "replay". Still exactly one first use; an unresolved conflict fails closed.
 *
 * Fail closed: a database that is down, slow (beyond `timeoutMs`) or failing makes `use()` throw
 * `REPLAY_STORE_UNAVAILABLE`; it never resolves true unless the row was written.
 */
import { createHash } from 'node:crypto'
import { MandateError, type ReplayStore } from '@mandate/core'
import pg from 'pg'
import { connectClient } from './pool_client.js'

export interface PostgresReplayStoreOptions {
  /** A connection string; the store creates and owns a pool. */
  connectionString?: string
  /** Or a `pg.Pool` you own: the store never ends it. */
  pool?: pg.Pool
  /** Table name (an unquoted identifier). Default `mandate_replay`. */
  table?: string
  /** Create the table if missing (under an advisory lock, safe when many instances start at once). Default true. */
  createTable?: boolean
  /** A claim not answered after this many ms (waiting for a pool connection included) fails (REPLAY_STORE_UNAVAILABLE). Default 2000. */
  timeoutMs?: number
  /** Delete expired rows this often (seconds; 0 disables). Default 60. */
  pruneEverySeconds?: number
  /** Pool size when `connectionString` is given. Default 5. */
  max?: number
  /**
   * Wait for each claim to be durable (Postgres `synchronous_commit`). Default true. false (only
   * with `connectionString`) trades the last ~0.6 s of claims on a database crash — a replay window
   * for credentials still alive then — for several times the throughput, like Redis without AOF.
   */
  synchronousCommit?: boolean
  /** Called with each database failure (metrics, logs). */
  onError?: (err: unknown) => void
  /** Clock in ms (tests). */
  now?: () => number
}

/** Keys longer than this (UTF-8 bytes) are stored as `h:<sha256>` (see @mandate/redis key.ts). */
const MAX_LITERAL_KEY_BYTES = 200
const PRUNE_BATCH = 5000
/** Attempts of one claim that meets a serialization failure (40001) before it fails closed. */
const MAX_CLAIM_ATTEMPTS = 5

function boundedKey(key: string): string {
  if (Buffer.byteLength(key, 'utf8') <= MAX_LITERAL_KEY_BYTES) return `k:${key}`
  return `h:${createHash('sha256').update(key, 'utf8').digest('base64url')}`
}

/** A `ReplayStore` on Postgres. Build it with {@link createPostgresReplayStore}. */
export class PostgresReplayStore implements ReplayStore {
  readonly #pool: pg.Pool
  readonly #owned: boolean
  readonly #table: string
  readonly #timeoutMs: number
  readonly #onError: ((err: unknown) => void) | undefined
  readonly #now: () => number
  readonly #claimSql: string
  readonly #pruneSql: string
  #pruneTimer: ReturnType<typeof setInterval> | undefined
  #pruning = false
  #closed = false

  /** Use {@link createPostgresReplayStore} (it also creates the table). */
  constructor(options: PostgresReplayStoreOptions) {
    if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'PostgresReplayStore needs { connectionString } or { pool }')
    if ((options.connectionString === undefined) === (options.pool === undefined)) throw new MandateError('CONFIG_INVALID', 'give exactly one of connectionString or pool')
    const table = options.table ?? 'mandate_replay'
    if (typeof table !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(table)) throw new MandateError('CONFIG_INVALID', 'table must be a lower-case unquoted identifier')
    const timeoutMs = options.timeoutMs ?? 2000
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000) throw new MandateError('CONFIG_INVALID', 'timeoutMs must be an integer 1..60000')
    const prune = options.pruneEverySeconds ?? 60
    if (!Number.isFinite(prune) || prune < 0 || prune > 86_400) throw new MandateError('CONFIG_INVALID', 'pruneEverySeconds must be 0..86400')
    this.#table = table
    this.#timeoutMs = timeoutMs
    this.#onError = options.onError
    this.#now = options.now ?? Date.now
    this.#claimSql =
      `INSERT INTO ${table} (key, expires_at) VALUES ($1, clock_timestamp() + $2::bigint * interval '1 millisecond') ` +
      `ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE ${table}.expires_at < clock_timestamp() RETURNING 1`
    this.#pruneSql = `DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} WHERE expires_at < clock_timestamp() LIMIT ${PRUNE_BATCH})`
    if (options.synchronousCommit !== undefined && typeof options.synchronousCommit !== 'boolean') throw new MandateError('CONFIG_INVALID', 'synchronousCommit must be a boolean')
    if (options.pool !== undefined) {
      if (options.synchronousCommit === false) throw new MandateError('CONFIG_INVALID', 'synchronousCommit: false needs connectionString (set synchronous_commit on your own pool)')
      if (!(options.pool instanceof pg.Pool) && typeof (options.pool as { query?: unknown }).query !== 'function') throw new MandateError('CONFIG_INVALID', 'pool must be a pg.Pool')
      this.#pool = options.pool
      this.#owned = false
    } else {
      if (typeof options.connectionString !== 'string') throw new MandateError('CONFIG_INVALID', 'connectionString must be a string')
      this.#pool = new pg.Pool({
        connectionString: options.connectionString,
        max: options.max ?? 5,
        connectionTimeoutMillis: timeoutMs,
        query_timeout: timeoutMs,
        // READ COMMITTED whatever the database's default (see the isolation note above)
        options: `-c default_transaction_isolation=read\\ committed${options.synchronousCommit === false ? ' -c synchronous_commit=off' : ''}`,
      })
      // an idle client losing its connection (database restarted) emits 'error' on the pool: without
      // a listener that would crash the process
      this.#pool.on('error', (err) => this.#report(err))
      this.#owned = true
    }
    if (prune > 0) {
      this.#pruneTimer = setInterval(() => void this.prune().catch(() => {}), prune * 1000)
      this.#pruneTimer.unref()
    }
  }

  /** Create the table and its expiry index if missing. Idempotent; safe to run from many instances at once. */
  async createTable(): Promise<void> {
    await this.#run(async () => {
      let broken: Error | undefined
      const client = await connectClient(this.#pool, (err: Error) => void (broken = err))
      try {
        await client.query('BEGIN')
        // concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog: serialize them
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`mandate:replay-table:${this.#table}`])
        await client.query(`CREATE TABLE IF NOT EXISTS ${this.#table} (key text PRIMARY KEY, expires_at timestamptz NOT NULL)`)
        await client.query(`CREATE INDEX IF NOT EXISTS ${this.#table}_expires_at ON ${this.#table} (expires_at)`)
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      } finally {
        // a connection that broke is discarded, never handed out again
        client.release(broken ?? false)
      }
    })
  }

  /**
   * Claim `key` until `expiresAt` (seconds since the epoch; kept through that second). Resolves
   * true for the first use (or a use after the earlier one expired), false for a replay; throws
   * REPLAY_STORE_UNAVAILABLE when the database cannot say.
   */
  async use(key: string, expiresAt: number): Promise<boolean> {
    if (typeof key !== 'string' || key.length === 0) throw new MandateError('CONFIG_INVALID', 'replay key must be a non-empty string')
    if (!Number.isFinite(expiresAt)) throw new MandateError('CONFIG_INVALID', 'replay expiresAt must be a finite number of seconds')
    const ttl = Math.max(1000, Math.ceil((Math.floor(expiresAt) + 1) * 1000 - this.#now()))
    // a named statement is parsed and planned once per connection, not on every claim
    const query = { name: `mandate-replay-claim:${this.#table}`, text: this.#claimSql, values: [boundedKey(key), ttl] }
    const result = await this.#run(async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#pool.query(query)
        } catch (err) {
          // 40001 under REPEATABLE READ / SERIALIZABLE: a concurrent claim of this key committed
          // after our snapshot. A fresh statement sees it (bounded by timeoutMs and the attempts)
          if ((err as { code?: unknown })?.code !== '40001' || attempt >= MAX_CLAIM_ATTEMPTS || this.#closed) throw err
        }
      }
    })
    return result.rowCount === 1
  }

  /** Delete expired rows (bounded batches); returns how many. Runs periodically on its own. */
  async prune(): Promise<number> {
    if (this.#pruning || this.#closed) return 0
    this.#pruning = true
    try {
      let total = 0
      for (let i = 0; i < 20; i++) {
        const r = await this.#run(() => this.#pool.query(this.#pruneSql))
        total += r.rowCount ?? 0
        if ((r.rowCount ?? 0) < PRUNE_BATCH) break
      }
      return total
    } finally {
      this.#pruning = false
    }
  }

  /** Resolves when the database answers (readiness); throws REPLAY_STORE_UNAVAILABLE otherwise. */
  async ping(): Promise<void> {
    await this.#run(() => this.#pool.query('SELECT 1'))
  }

  /** Stop pruning; end the pool if the store created it. */
  async close(): Promise<void> {
    this.#closed = true
    if (this.#pruneTimer) clearInterval(this.#pruneTimer)
    if (this.#owned) await this.#pool.end().catch(() => {})
  }

  async #run<T>(work: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from Postgres within ${this.#timeoutMs} ms`)), this.#timeoutMs)
    })
    try {
      return await Promise.race([work(), timeout])
    } catch (err) {
      this.#report(err)
      throw new MandateError('REPLAY_STORE_UNAVAILABLE', 'the shared replay store (Postgres) did not answer; single-use credentials are refused', { cause: err })
    } finally {
      clearTimeout(timer)
    }
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
 * A shared `ReplayStore` on Postgres for `createGuard({ replay })` and `createAuthority({ replay })`;
 * creates its table if missing (unless `createTable: false`).
 *
 * @example
 * const replay = await createPostgresReplayStore({ connectionString: process.env.DATABASE_URL })
 */
export async function createPostgresReplayStore(options: PostgresReplayStoreOptions): Promise<PostgresReplayStore> {
  const store = new PostgresReplayStore(options)
  if (options.createTable !== false) {
    try {
      await store.createTable()
    } catch (err) {
      await store.close()
      throw err
    }
  }
  return store
}
