/**
 * PostgresStore: the Authority's AuthorityStore on PostgreSQL, for many Authority processes sharing
 * one database. Same semantics as the SQLite store: a change and its audit record in one
 * transaction, together with a head of the audit chain signed over its last record; an operation
 * resolves only after its transaction committed with `synchronous_commit = on` (answered = durable).
 *
 * The audit chain across instances: every write transaction first takes one transaction-scoped
 * advisory lock (the chain lock), then reads the chain tail, so appends are serialized across all
 * processes and seq is assigned under the lock: no fork, no gap (the primary key on seq backs it).
 * Within one instance, writes queued while a transaction is in flight share the next transaction
 * (group commit, each operation in its own savepoint): one lock, one head signature and one commit
 * per group. See docs/deploy.md (audit chain design).
 */
import { MandateError, type RevocationQuery } from '@mandate/core'
import {
  assertAdminRemains, auditFacets, auditIndex, auditRecordFromRow, chainRecord, grantedTaskDraft, sameApprovalRequest, SealState,
  type AdminGuard, type AgentBinding, type AgentRecord, type ApprovalAdmission, type ApprovalDecision, type ApprovalPageQuery, type ApprovalRecord, type ApprovalStatus, type AuditDraft,
  type AuditPageQuery, type AuditQuery, type AuditRecord, type AuditSealer, type AuthorityStore, type ChainHead, type IssueMandateInput,
  type IssueMandateResult, type MandateRecord, type OutboxChange, type OutboxEndpointStats, type OutboxPlanner, type OutboxRow,
  type OutboxStatus, type RevocationEntry, type RevocationKind, type Role, type StoredCheckpoint, type StoredSigningKey,
  type StoreChange, type StoreChangeListener, type StoredFederationRule, type FederationRule, type TaskPageQuery, type TaskRow,
} from '@mandate/authority'
import pg from 'pg'
import { isTransient, storeError } from './errors.js'
import { AUDIT_CHAIN_LOCK, LOCK_NAMESPACE, migrate, schemaVersion, SCHEMA_VERSION, SIGNING_KEY_LOCK } from './migrations.js'
import { ChangeChannel, CHANNEL } from './changes.js'
import { connectClient } from './pool_client.js'

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/db`. Give this or `pool`. */
  connectionString?: string
  /** A pool of your own (not ended by close()). Give this or `connectionString`. */
  pool?: pg.Pool
  /** Apply pending migrations on start. Default false: an outdated schema is refused (CONFIG_INVALID). */
  migrate?: boolean
  /** Pool size with `connectionString`. Default 10. */
  max?: number
  /** ms to wait for a connection (an unreachable database fails after this). Default 5000. */
  connectTimeoutMs?: number
  /** ms a write waits for the audit chain lock before failing STORE_UNAVAILABLE. Default 10 000. */
  lockTimeoutMs?: number
  /** Cross-instance events over LISTEN/NOTIFY (approvals, audit appends, revocations, key rotation). Default true. */
  listen?: boolean
  /** Most operations per group-commit transaction. Default 256. */
  maxBatch?: number
  /**
   * Most writes waiting for a group transaction. Beyond it a write fails at once with
   * CAPACITY_EXCEEDED (503): a stuck database must not pile up requests in memory. Default 10 000.
   */
  maxQueuedWrites?: number
  /**
   * Client-side watchdog of one group transaction (ms, from BEGIN to the COMMIT's answer). On expiry
   * the writer connection is destroyed and the group fails STORE_UNAVAILABLE: a half-open TCP
   * connection or a stuck server never hangs writes. If COMMIT had already been sent its outcome is
   * unknown (it may have committed); the answer is still STORE_UNAVAILABLE and the client retries,
   * which single-use jtis and approvals make safe. Default 10 000 (at least lockTimeoutMs + 1000).
   */
  writeTimeoutMs?: number
  /**
   * Client-side bound on any one query of the pool's connections (ms, with `connectionString`): a
   * server that stopped answering (a stuck or paused Postgres, a half-open connection) cannot make a
   * read hang; the query fails STORE_UNAVAILABLE and its connection is dropped. The server's own
   * `statement_timeout` (30 s) cannot fire while the server is stuck. Default 35 000 (the statement
   * timeout plus 5 s, so no query the server would still finish is cut short).
   */
  queryTimeoutMs?: number
  /** TCP keepalive initial delay of the pool's connections (ms, with `connectionString`). Default 10 000. */
  keepAliveInitialDelayMillis?: number
  /** A `SELECT 1` on the LISTEN connection this often (ms); no answer within it → reconnect + resync. Default 30 000. */
  listenHeartbeatMs?: number
}

type Row = Record<string, unknown>
const str = (v: unknown) => v as string
const num = (v: unknown) => Number(v)
const nn = (v: unknown) => v !== null && v !== undefined

/**
 * JSON text read back from a column. Corrupt text (a manual edit, a damaged restore) fails the
 * request as STORE_ERROR, never as a raw SyntaxError; the parser's message is not kept, as it
 * quotes the stored text (claims, arguments).
 */
function parseStored<T>(v: unknown, what: string): T {
  try {
    return JSON.parse(str(v)) as T
  } catch {
    throw new MandateError('STORE_ERROR', `the stored ${what} is not valid JSON; restore the database from a backup`)
  }
}

function agentFromRow(r: Row): AgentRecord {
  const revoked = nn(r.revoked_at)
  // a revoked principal is disabled whatever the disabled column says (fail closed)
  const disabled = r.disabled === true || revoked
  const a: AgentRecord = {
    did: str(r.did), jkt: str(r.jkt), name: str(r.name), role: str(r.role) as Role,
    status: revoked ? 'revoked' : disabled ? 'disabled' : 'enabled', disabled, createdAt: num(r.created_at),
  }
  if (nn(r.owner)) a.owner = str(r.owner)
  if (nn(r.metadata)) a.metadata = parseStored<AgentRecord['metadata'] & object>(r.metadata, `metadata of agent ${String(r.did).slice(0, 80)}`)
  if (nn(r.disabled_at)) a.disabledAt = num(r.disabled_at)
  if (nn(r.disabled_reason)) a.disabledReason = str(r.disabled_reason)
  if (revoked) a.revokedAt = num(r.revoked_at)
  if (nn(r.revoked_reason)) a.revokedReason = str(r.revoked_reason)
  if (nn(r.binding)) a.binding = parseStored<AgentBinding>(r.binding, `binding of agent ${String(r.did).slice(0, 80)}`)
  if (nn(r.expires_at)) a.expiresAt = num(r.expires_at)
  return a
}
function federationRuleFromRow(r: Row): StoredFederationRule {
  const out: StoredFederationRule = { rule: parseStored<FederationRule>(r.rule, `federation rule ${String(r.id).slice(0, 64)}`), createdAt: num(r.created_at) }
  if (nn(r.created_by)) out.createdBy = str(r.created_by)
  return out
}
function mandateFromRow(r: Row): MandateRecord {
  const m: MandateRecord = {
    jti: str(r.jti), txn: str(r.txn), subject: str(r.subject), holder: str(r.holder), kind: str(r.kind) as MandateRecord['kind'],
    depth: num(r.depth), iat: num(r.iat), exp: num(r.exp), tokenHash: str(r.token_hash), uses: num(r.uses), claims: parseStored<MandateRecord['claims']>(r.claims, `claims of mandate ${String(r.jti).slice(0, 80)}`),
  }
  if (nn(r.parent)) m.parent = str(r.parent)
  if (nn(r.grantor)) m.grantor = str(r.grantor)
  if (nn(r.max_uses)) m.maxUses = num(r.max_uses)
  return m
}
function approvalFromRow(r: Row): ApprovalRecord {
  const a: ApprovalRecord = {
    id: str(r.id), status: str(r.status) as ApprovalStatus, requestedBy: str(r.requested_by), parent: str(r.parent), subject: str(r.subject),
    txn: str(r.txn), actorChain: parseStored<string[]>(r.actor_chain, `actor chain of approval ${String(r.id).slice(0, 80)}`), audience: str(r.audience), tool: str(r.tool),
    argumentsDigest: str(r.args_digest), reason: str(r.reason), createdAt: num(r.created_at), expiresAt: num(r.expires_at), used: r.used === true,
  }
  if (nn(r.arguments)) a.arguments = parseStored<ApprovalRecord['arguments']>(r.arguments, `arguments of approval ${String(r.id).slice(0, 80)}`)
  if (nn(r.decided_by)) a.decidedBy = str(r.decided_by)
  if (nn(r.decided_at)) a.decidedAt = num(r.decided_at)
  if (nn(r.decision_reason)) a.decisionReason = str(r.decision_reason)
  return a
}
function revocationFromRow(r: Row): RevocationEntry {
  const e: RevocationEntry = { seq: num(r.seq), kind: str(r.kind) as RevocationKind, id: str(r.id), at: num(r.at) }
  if (nn(r.reason)) e.reason = str(r.reason)
  if (nn(r.by_did)) e.by = str(r.by_did)
  return e
}
function outboxFromRow(r: Row): OutboxRow {
  const o: OutboxRow = {
    id: num(r.id), endpoint: str(r.endpoint), event: str(r.event), messageId: str(r.message_id), status: str(r.status) as OutboxStatus,
    attempts: num(r.attempts), nextAttemptAt: num(r.next_at), createdAt: num(r.created_at),
    record: auditRecordFromRow({ seq: r.seq, time: r.a_time, type: r.a_type, fields: r.a_fields, prev: '', hash: '' }),
  }
  if (nn(r.order_key)) o.orderKey = str(r.order_key)
  if (nn(r.body)) o.body = str(r.body)
  if (nn(r.last_error)) o.lastError = str(r.last_error)
  if (nn(r.last_status)) o.lastStatus = num(r.last_status)
  if (nn(r.last_failure_at)) o.lastFailureAt = num(r.last_failure_at)
  if (nn(r.delivered_at)) o.deliveredAt = num(r.delivered_at)
  return o
}
const hasNul = (v: unknown): boolean => (typeof v === 'string' ? v.includes('\u0000') : Array.isArray(v) && v.some(hasNul))
const OUTBOX_SELECT = 'SELECT o.*, a.time AS a_time, a.type AS a_type, a.fields AS a_fields FROM outbox o JOIN audit a ON a.seq = o.seq'
/** How long a claimed outbox row is reserved for the instance delivering it (then another may retry it). */
const OUTBOX_LEASE_MS = 60_000

/** Whether the record itself (not its query columns) matches the exact filters of `q`. */
function facetsMatch(r: AuditRecord, q: AuditPageQuery): boolean {
  const f = auditFacets(r.type, r.fields)
  return (q.txn === undefined || f.txn === q.txn) && (q.agent === undefined || f.agent === q.agent) && (q.subject === undefined || f.subject === q.subject)
    && (q.tool === undefined || f.tool === q.tool) && (q.decision === undefined || f.decision === q.decision) && (!q.callsOnly || f.call)
    && (q.types === undefined || q.types.includes(r.type)) && (q.jtis === undefined || (f.jti !== null && q.jtis.includes(f.jti)))
}

/** A WHERE clause built from optional filters: values are always bound ($n), never spliced into SQL. */
class Where {
  readonly parts: string[] = []
  readonly args: unknown[] = []
  #p(v: unknown): string {
    this.args.push(v)
    return `$${this.args.length}`
  }
  add(sql: (p: string) => string, v: string | number | boolean | undefined): this {
    if (v === undefined) return this
    this.parts.push(sql(this.#p(v)))
    return this
  }
  raw(sql: string): this {
    this.parts.push(sql)
    return this
  }
  in(col: string, values: readonly string[] | undefined): this {
    if (values === undefined) return this
    return this.raw(`${col} = ANY(${this.#p([...values])}::text[])`)
  }
  /** Case-insensitive substring over `cols`, or `agentCol` among the dids whose names matched. */
  search(cols: readonly string[], q: string, agentCol: string, agents: readonly string[] = []): this {
    const pattern = this.#p(`%${q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`)
    const terms = cols.map((c) => `${c} ILIKE ${pattern} ESCAPE '\\'`)
    if (agents.length) terms.push(`${agentCol} = ANY(${this.#p([...agents])}::text[])`)
    return this.raw(`(${terms.join(' OR ')})`)
  }
  /** The next placeholder for a value used after the WHERE clause (LIMIT). */
  param(v: unknown): string {
    return this.#p(v)
  }
  sql(): string {
    return this.parts.length ? `WHERE ${this.parts.join(' AND ')}` : ''
  }
}

/** The open group-commit transaction, as one operation sees it. */
interface Tx {
  client: pg.PoolClient
  /** The chain tail inside this transaction (read under the chain lock). */
  tail: ChainHead | undefined
  /** The stored signed head, read at the start of the transaction. */
  stored: StoredCheckpoint | undefined
  /** The last record appended in this transaction. */
  last: ChainHead | undefined
  /** Cross-instance events to publish with the commit. */
  events: StoreChange[]
  /** The watchdog state of this group (an expired group must not touch the shared seal state). */
  group: Group
}

/** The reserved writer connection; `released` once it went back to the pool (never twice). */
interface Writer {
  client: pg.PoolClient
  broken?: Error
  released?: boolean
}
/** One group transaction's watchdog state: `expired` once the watchdog failed it. */
interface Group {
  expired: boolean
  finished: boolean
}
interface Op {
  run: (tx: Tx) => Promise<unknown>
  resolve: (v: unknown) => void
  reject: (err: unknown) => void
  value?: unknown
  done?: boolean
  /** An issuance: run in bulk with the issuances next to it in the group (#issueMany). */
  issue?: IssueMandateInput
}

type OutboxEntryLike = { endpoint: string; event: string; messageId: string; orderKey?: string }

/**
 * Open a Postgres store: connects, checks (or with `migrate: true` applies) the schema, starts the
 * cross-instance event listener. STORE_UNAVAILABLE when the database cannot be reached.
 */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'createPostgresStore needs { connectionString } or { pool }')
  const known = new Set(['connectionString', 'pool', 'migrate', 'max', 'connectTimeoutMs', 'lockTimeoutMs', 'listen', 'maxBatch', 'maxQueuedWrites', 'writeTimeoutMs', 'queryTimeoutMs', 'keepAliveInitialDelayMillis', 'listenHeartbeatMs'])
  for (const k of Object.keys(options)) if (!known.has(k)) throw new MandateError('CONFIG_INVALID', `unknown Postgres store option "${k.slice(0, 40)}" (known: ${[...known].join(', ')})`)
  if ((options.connectionString === undefined) === (options.pool === undefined)) throw new MandateError('CONFIG_INVALID', 'give exactly one of connectionString or pool')
  if (options.connectionString !== undefined && (typeof options.connectionString !== 'string' || !/^postgres(ql)?:\/\//.test(options.connectionString))) {
    throw new MandateError('CONFIG_INVALID', 'connectionString must be a postgres:// URL')
  }
  for (const k of ['max', 'connectTimeoutMs', 'lockTimeoutMs', 'maxBatch', 'maxQueuedWrites', 'writeTimeoutMs', 'queryTimeoutMs', 'keepAliveInitialDelayMillis', 'listenHeartbeatMs'] as const) {
    const v = options[k]
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) throw new MandateError('CONFIG_INVALID', `${k} must be a positive integer`)
  }
  // the writer and the LISTEN connection stay checked out and a key rotation holds its lock on a
  // third while it reads the keys on a fourth: a smaller pool times out every read (or rotation)
  if (options.max !== undefined && options.max < 4) throw new MandateError('CONFIG_INVALID', 'max must be at least 4 (the writer, LISTEN, the signing-key lock and one for reads)')
  if (options.writeTimeoutMs !== undefined && options.writeTimeoutMs <= (options.lockTimeoutMs ?? 10_000)) {
    // the watchdog must not fire while the server is still legitimately waiting for the chain lock
    throw new MandateError('CONFIG_INVALID', 'writeTimeoutMs must be greater than lockTimeoutMs')
  }
  const own = options.pool === undefined
  const pool = options.pool ?? new pg.Pool({
    connectionString: options.connectionString, max: options.max ?? 10, connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000, keepAlive: true, keepAliveInitialDelayMillis: options.keepAliveInitialDelayMillis ?? 10_000, statement_timeout: 30_000,
    query_timeout: options.queryTimeoutMs ?? 35_000,
  })
  // an idle connection that dies (Postgres restarted) is dropped by the pool; without a listener
  // the 'error' event would end the process
  pool.on('error', () => undefined)
  let store: PostgresStore | undefined
  try {
    if (options.migrate) await migrate(pool)
    else {
      const v = await schemaVersion(pool)
      if (v !== SCHEMA_VERSION) {
        throw new MandateError('CONFIG_INVALID', v < SCHEMA_VERSION
          ? `the database schema is at version ${v}, this Authority needs ${SCHEMA_VERSION}: run \`mandate authority migrate\` (or start with migrate: true)`
          : `the database schema (version ${v}) is newer than this @mandate/postgres (version ${SCHEMA_VERSION}); upgrade the Authority`)
      }
    }
    store = new PostgresStore(pool, own, options)
    if (options.listen !== false) await store.startListening()
    return store
  } catch (err) {
    // a LISTEN that failed has scheduled its reconnection: stop it, or it would retry for ever (and,
    // on a pool of the caller's, keep a connection checked out); close() also ends a pool of ours
    if (store) await store.close().catch(() => undefined)
    else if (own) await pool.end().catch(() => undefined)
    throw storeError(err, 'opening the store')
  }
}

export class PostgresStore implements AuthorityStore {
  readonly kind = 'postgres'
  readonly pool: pg.Pool
  readonly #ownPool: boolean
  readonly #lockTimeoutMs: number
  readonly #maxBatch: number
  readonly #maxQueued: number
  readonly #writeTimeoutMs: number
  readonly #seal = new SealState()
  #sealer: AuditSealer | undefined
  #planner: OutboxPlanner | undefined
  readonly #listeners = new Set<StoreChangeListener>()
  readonly #channel: ChangeChannel
  /** The chain tail after this instance's last commit (another writer moved it when they differ). */
  #lastTail: ChainHead | undefined
  readonly #queue: Op[] = []
  #flushing: Promise<void> | undefined
  #closed = false

  /** @internal use createPostgresStore */
  constructor(pool: pg.Pool, ownPool: boolean, options: Pick<PostgresStoreOptions, 'lockTimeoutMs' | 'maxBatch' | 'maxQueuedWrites' | 'writeTimeoutMs' | 'listenHeartbeatMs'> = {}) {
    this.pool = pool
    this.#ownPool = ownPool
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 10_000
    this.#maxBatch = options.maxBatch ?? 256
    this.#maxQueued = options.maxQueuedWrites ?? 10_000
    this.#writeTimeoutMs = options.writeTimeoutMs ?? Math.max(10_000, this.#lockTimeoutMs + 1000)
    this.#channel = new ChangeChannel(pool, async (change) => void (await this.#emit(change)), { heartbeatMs: options.listenHeartbeatMs ?? 30_000 })
  }

  /** @internal */
  startListening(): Promise<void> {
    return this.#channel.start()
  }

  /**
   * Readiness: the database answers and takes writes. A read-only one (a hot standby, a failover
   * in progress, `default_transaction_read_only`) answers SELECT 1 while every exchange would fail:
   * not ready, so a load balancer sends the traffic elsewhere.
   */
  async ping(): Promise<void> {
    const [row] = await this.#q("SELECT current_setting('transaction_read_only') AS ro, pg_is_in_recovery() AS recovery", [], 'a readiness check')
    if (row?.ro !== 'off' || row?.recovery !== false) {
      throw new MandateError('STORE_UNAVAILABLE', 'the database is read-only (a standby, or default_transaction_read_only): writes would fail')
    }
  }

  subscribe(listener: StoreChangeListener): () => void {
    this.#listeners.add(listener)
    return () => void this.#listeners.delete(listener)
  }

  /** Hand `change` to every listener; whether one of them failed. */
  async #emit(change: StoreChange): Promise<boolean> {
    let failed = false
    await Promise.all([...this.#listeners].map(async (l) => {
      try {
        await l(change)
      } catch {
        // a listener's failure never breaks the store (it re-reads on the next event or resync)
        failed = true
      }
    }))
    return failed
  }

  async withSigningKeyLock<T>(fn: () => Promise<T>): Promise<T> {
    let client: pg.PoolClient
    let broken: Error | undefined
    const onError = (err: Error) => void (broken = err)
    try {
      client = await connectClient(this.pool, onError)
    } catch (err) {
      throw storeError(err, 'locking the signing keys')
    }
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, SIGNING_KEY_LOCK])
      try {
        return await fn()
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, SIGNING_KEY_LOCK]).catch((err: Error) => void (broken = err))
      }
    } catch (err) {
      if (isTransient(err)) broken = err as Error
      throw storeError(err, 'locking the signing keys')
    } finally {
      // a session lock dies with its connection: a broken one is discarded, never reused
      client.removeListener('error', onError)
      client.release(broken)
    }
  }

  async #q(sql: string, args: unknown[], what: string): Promise<Row[]> {
    // Postgres text cannot hold NUL: no stored value equals (or contains) one, so a lookup by such
    // a value finds nothing (instead of failing 22021 as a 500)
    if (args.some(hasNul)) return []
    try {
      return (await this.pool.query(sql, args)).rows as Row[]
    } catch (err) {
      throw storeError(err, what)
    }
  }

  // ---------------------------------------------------------------- group commit

  /** Queue a write; it runs in the next group transaction and resolves after that commits. */
  #tx<T>(run: (tx: Tx) => Promise<T>, issue?: IssueMandateInput): Promise<T> {
    if (this.#closed) return Promise.reject(new MandateError('STORE_UNAVAILABLE', 'the Postgres store is closed'))
    if (this.#queue.length >= this.#maxQueued) {
      // the database is not keeping up (or stuck): refuse now rather than hold the request in memory
      return Promise.reject(new MandateError('CAPACITY_EXCEEDED', `too many writes are waiting for the Postgres store (${this.#maxQueued}); retry later`))
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run, resolve: resolve as (v: unknown) => void, reject, ...(issue ? { issue } : {}) })
      // writes of this event-loop turn (and those arriving while a group is in flight) share a group
      if (!this.#flushing) this.#flushing = new Promise<void>((r) => setImmediate(r)).then(() => this.#drain())
    })
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length) await this.#runGroup(this.#queue.splice(0, this.#maxBatch))
    } finally {
      this.#flushing = undefined
    }
  }

  #groups = 0
  #grouped = 0
  #lockedMs = 0

  /** Group-commit counters since the store opened: transactions, operations in them, ms spent holding the chain lock. */
  get groupStats(): { groups: number; operations: number; lockHeldMs: number } {
    return { groups: this.#groups, operations: this.#grouped, lockHeldMs: Math.round(this.#lockedMs) }
  }

  async #runGroup(ops: Op[]): Promise<void> {
    this.#groups++
    this.#grouped += ops.length
    const started = performance.now()
    try {
      await this.#runGroupTx(ops)
    } finally {
      this.#lockedMs += performance.now() - started
    }
  }

  /**
   * The connection group transactions run on, kept checked out between groups: a write never waits
   * behind the reads for a pool connection while it could hold the chain lock. Replaced when broken.
   */
  #writer: Writer | undefined

  async #writerClient(): Promise<Writer> {
    if (this.#writer && !this.#writer.broken) return this.#writer
    this.#dropWriter()
    // a connection that breaks between two queries emits 'error' on the checked-out client (with no
    // listener the process would crash): remember it, the next query fails and the group rolls back
    const w = {} as Writer
    w.client = await connectClient(this.pool, (err: Error) => void (w.broken = err))
    this.#writer = w
    return w
  }

  #dropWriter(w: Writer | undefined = this.#writer): void {
    if (!w) return
    if (this.#writer === w) this.#writer = undefined
    if (w.released) return
    w.released = true
    w.client.release(w.broken ?? true)
  }

  /**
   * Run one group under the client-side watchdog: the server answers within writeTimeoutMs or the
   * writer connection is destroyed and every operation of the group fails STORE_UNAVAILABLE (a
   * half-open connection or a stopped server would otherwise hang this and every later write). The
   * abandoned attempt settles on its own once its socket is gone and touches nothing shared.
   */
  async #runGroupTx(ops: Op[]): Promise<void> {
    let w: Writer
    try {
      w = await this.#writerClient()
    } catch (err) {
      const e = storeError(err, 'connecting')
      for (const op of ops) op.reject(e)
      return
    }
    const group: Group = { expired: false, finished: false }
    let timer: ReturnType<typeof setTimeout> | undefined
    const watchdog = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (group.finished) return resolve()
        group.expired = true
        // COMMIT may already be on its way: its outcome is unknown, so nothing is answered as
        // committed; a retry is safe (single-use jtis and approvals refuse a second application)
        const e = new MandateError('STORE_UNAVAILABLE', `the Postgres store did not answer a write within ${this.#writeTimeoutMs} ms; the connection was dropped and the write was not confirmed, retry later`)
        w.broken ??= e
        this.#seal.rollback()
        for (const op of ops) op.reject(e)
        ;(w.client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.()
        this.#dropWriter(w)
        resolve()
      }, this.#writeTimeoutMs)
    })
    try {
      await Promise.race([this.#groupTx(ops, w, group), watchdog])
    } finally {
      clearTimeout(timer)
    }
  }

  async #groupTx(ops: Op[], w: Writer, group: Group): Promise<void> {
    try {
      await this.#groupTxBody(ops, w, group)
    } finally {
      group.finished = true
    }
  }

  async #groupTxBody(ops: Op[], w: Writer, group: Group): Promise<void> {
    const client = w.client
    const settled: Op[] = []
    try {
      const res = (await client.query(
        // READ COMMITTED whatever the database's default_transaction_isolation: the tail read after
        // the chain lock must see the previous holder's commit (a snapshot taken at the lock
        // statement, as REPEATABLE READ / SERIALIZABLE do, would fork the chain or fail every write)
        `BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit TO on; SET LOCAL lock_timeout = ${Math.floor(this.#lockTimeoutMs)};
         SELECT pg_advisory_xact_lock(${LOCK_NAMESPACE}, ${AUDIT_CHAIN_LOCK});
         SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1;
         SELECT seq, hash, time, jws FROM audit_head WHERE id = 1`,
      )) as unknown as pg.QueryResult[]
      const tailRow = res[4]?.rows[0] as Row | undefined
      const headRow = res[5]?.rows[0] as Row | undefined
      const tx: Tx = {
        client, events: [], last: undefined, group,
        tail: tailRow && { seq: num(tailRow.seq), hash: str(tailRow.hash) },
        stored: headRow && { seq: num(headRow.seq), hash: str(headRow.hash), time: num(headRow.time), jws: str(headRow.jws) },
      }
      await this.#trustOthers(tx)
      // the watchdog fired while the key reload ran: a newer group may own the seal state by now
      if (group.expired) return
      this.#seal.begin()
      const single = ops.length === 1
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!
        if (op.issue) {
          // this issuance and the ones right after it: one round trip (plus one for their records)
          let end = i
          while (end + 1 < ops.length && ops[end + 1]!.issue) end++
          const run = ops.slice(i, end + 1)
          await this.#issueMany(tx, run)
          for (const o of run) if (!o.done) settled.push(o)
          i = end
          continue
        }
        const savepoint = !single
        if (savepoint) await client.query('SAVEPOINT op')
        const tail = tx.tail
        const last = tx.last
        const events = tx.events.length
        const checked = this.#seal.snapshot()
        try {
          op.value = await op.run(tx)
          if (savepoint) await client.query('RELEASE SAVEPOINT op')
          settled.push(op)
        } catch (err) {
          if (isTransient(err) || !savepoint) throw err
          await client.query('ROLLBACK TO SAVEPOINT op')
          await client.query('RELEASE SAVEPOINT op')
          tx.tail = tail
          tx.last = last
          tx.events.length = events
          this.#seal.restore(checked)
          op.done = true
          op.reject(MandateError.is(err) ? err : storeError(err, 'a write'))
        }
      }
      // the signed head, the events and COMMIT in one round trip (a simple multi-statement query:
      // values as escaped literals; an error in any statement aborts the transaction before COMMIT)
      const tail: string[] = []
      if (tx.last) {
        const cp = this.#seal.seal(tx.last)
        if (cp) {
          tail.push(`INSERT INTO audit_head(id, seq, hash, time, jws) VALUES (1, ${Math.trunc(cp.seq)}, ${client.escapeLiteral(cp.hash)}, ${Math.trunc(cp.time)}, ${client.escapeLiteral(cp.jws)})
            ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, time = excluded.time, jws = excluded.jws`)
        }
      }
      // delivered to the other instances when (and only if) this transaction commits; one `audit`
      // event per group (its last seq) wakes their event streams, which re-read the log by seq
      if (tx.last) tx.events.push({ kind: 'audit', seq: tx.last.seq })
      for (const p of new Set(tx.events.map((e) => JSON.stringify({ o: this.#channel.instance, ...e })))) tail.push(`SELECT pg_notify('${CHANNEL}', ${client.escapeLiteral(p)})`)
      tail.push('COMMIT')
      await client.query(tail.join(';\n'))
      // expired: the watchdog already failed the group and rolled the seal back (and the socket is gone)
      if (group.expired) return
      this.#lastTail = tx.tail
      this.#seal.commit()
      for (const op of settled) op.resolve(op.value)
    } catch (err) {
      if (group.expired) return
      if (isTransient(err)) w.broken ??= err as Error
      else await client.query('ROLLBACK').catch((e: Error) => void (w.broken ??= e))
      this.#seal.rollback()
      // nothing of this group was committed (or, when the connection broke during COMMIT, nothing
      // was answered): every operation still waiting fails, typed
      const e = MandateError.is(err) ? err : storeError(err, 'a write')
      for (const op of ops) if (!op.done && !settled.includes(op)) op.reject(e)
      for (const op of settled) op.reject(e)
    } finally {
      // a broken connection is discarded (destroyed), never reused; a healthy one stays reserved
      if (w.broken) this.#dropWriter(w)
    }
  }

  /**
   * Another instance moved the chain: its stored head is signed by a key of this Authority, but
   * perhaps one rotated in there and not loaded here yet. Reload the keys (listeners of `keys`)
   * before the seal check, so a head signed by a sibling is never taken for a foreign write.
   */
  async #trustOthers(tx: Tx): Promise<void> {
    const sealer = this.#sealer
    if (!sealer || !tx.stored) return
    const moved = tx.tail?.seq !== this.#lastTail?.seq || tx.tail?.hash !== this.#lastTail?.hash
    if (moved && sealer.trust(tx.stored) === undefined && (await this.#emit({ kind: 'keys' })) && sealer.trust(tx.stored) === undefined) {
      // the keys could not be reloaded (the pool busy, a blip): not knowing whether a sibling signed
      // the head, fail this group (retry later) rather than record a permanent audit.unsealed
      throw new MandateError('STORE_UNAVAILABLE', 'the signing keys could not be reloaded to check the audit head another instance signed; retry later')
    }
  }

  async #insertAudit(tx: Tx, rec: AuditRecord): Promise<void> {
    const idx = auditIndex(rec.fields)
    const f = auditFacets(rec.type, rec.fields)
    await tx.client.query(
      'INSERT INTO audit(seq, time, type, fields, prev, hash, txn, agent, subject, tool, jti, decision, call) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)',
      [rec.seq, rec.time, rec.type, JSON.stringify(rec.fields), rec.prev, rec.hash, idx.txn, idx.agent, idx.subject, f.tool, f.jti, f.decision, f.call],
    )
  }

  async #append(tx: Tx, draft: AuditDraft): Promise<AuditRecord> {
    if (tx.group.expired) throw new MandateError('STORE_UNAVAILABLE', 'the write timed out')
    const unsealed = this.#seal.check(tx.tail, () => tx.stored)
    if (unsealed) {
      const marker = chainRecord(tx.tail, unsealed)
      await this.#insertAudit(tx, marker)
      tx.tail = marker
    }
    const rec = chainRecord(tx.tail, draft)
    await this.#insertAudit(tx, rec)
    // notifications of this record are written in its transaction: committed together or not at all
    const planned = this.#planner?.(rec) ?? []
    if (planned.length) {
      await tx.client.query(
        `INSERT INTO outbox(endpoint, seq, event, message_id, order_key, status, next_at, created_at)
         SELECT e, $1, ev, m, k, 'pending', $2, $2 FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS t(e, ev, m, k)`,
        [rec.seq, rec.time, planned.map((e) => e.endpoint), planned.map((e) => e.event), planned.map((e) => e.messageId), planned.map((e) => e.orderKey ?? null)],
      )
    }
    tx.tail = rec
    tx.last = rec
    return rec
  }

  async #revoked(c: pg.PoolClient | pg.Pool, q: RevocationQuery): Promise<boolean> {
    const r = await c.query(
      `SELECT 1 FROM revocations WHERE (kind = 'task' AND id = $1) OR (kind = 'mandate' AND id = ANY($2::text[])) OR (kind = 'agent' AND id = ANY($3::text[])) LIMIT 1`,
      // a value with NUL cannot be stored, so it is never revoked (and would fail the query)
      [q.txn.includes('\u0000') ? null : q.txn, q.ids.filter((x) => !hasNul(x)), q.actors.filter((x) => !hasNul(x))],
    )
    return r.rows.length > 0
  }

  // ---------------------------------------------------------------- principals

  async insertAgent(a: AgentRecord, audit: AuditDraft) {
    return this.#tx(async (tx) => {
      const r = await tx.client.query(
        'INSERT INTO agents(did, jkt, name, owner, role, metadata, disabled, created_at, binding, expires_at) VALUES ($1,$2,$3,$4,$5,$6,FALSE,$7,$8,$9) ON CONFLICT (did) DO NOTHING',
        [a.did, a.jkt, a.name, a.owner ?? null, a.role, a.metadata ? JSON.stringify(a.metadata) : null, a.createdAt, a.binding ? JSON.stringify(a.binding) : null, a.expiresAt ?? null],
      )
      if (r.rowCount === 0) return undefined
      return this.#append(tx, audit)
    })
  }
  /** The registered admins, as the transaction on `client` reads them (for assertAdminRemains). */
  async #admins(client: pg.PoolClient): Promise<AgentRecord[]> {
    return ((await client.query(`SELECT * FROM agents WHERE role = 'admin'`)).rows as Row[]).map(agentFromRow)
  }
  async getAgent(did: string) {
    const r = (await this.#q('SELECT * FROM agents WHERE did = $1', [did], 'reading a principal'))[0]
    return r && agentFromRow(r)
  }
  async listAgents() {
    return (await this.#q('SELECT * FROM agents ORDER BY created_at, did', [], 'listing principals')).map(agentFromRow)
  }
  async disableAgent(did: string, at: number, audit: AuditDraft, reason?: string, keepAdmin?: AdminGuard) {
    return this.#tx(async (tx) => {
      // under the chain lock every write transaction holds: two instances cannot each take out a different last admin
      if (keepAdmin) assertAdminRemains(await this.#admins(tx.client), new Set([did]), keepAdmin.now)
      const r = await tx.client.query('UPDATE agents SET disabled = TRUE, disabled_at = $1, disabled_reason = $2 WHERE did = $3 AND NOT disabled', [at, reason ?? null, did])
      if (r.rowCount === 0) return undefined
      return this.#append(tx, audit)
    })
  }
  async enableAgent(did: string, audit: AuditDraft) {
    return this.#tx(async (tx) => {
      // an agent revocation entry without the registry mark (a custom writer) still blocks enabling
      if ((await tx.client.query(`SELECT 1 FROM revocations WHERE kind = 'agent' AND id = $1`, [did])).rows.length) return undefined
      const r = await tx.client.query('UPDATE agents SET disabled = FALSE, disabled_at = NULL, disabled_reason = NULL WHERE did = $1 AND disabled AND revoked_at IS NULL', [did])
      if (r.rowCount === 0) return undefined
      return this.#append(tx, audit)
    })
  }

  // ---------------------------------------------------------------- federation rules

  async putFederationRule(rec: StoredFederationRule, audit: AuditDraft) {
    return this.#tx(async (tx) => {
      const r = await tx.client.query(
        'INSERT INTO federation_rules(id, rule, created_at, created_by) VALUES ($1,$2,$3,$4) ON CONFLICT (id) DO NOTHING',
        [rec.rule.id, JSON.stringify(rec.rule), rec.createdAt, rec.createdBy ?? null],
      )
      if (r.rowCount === 0) throw new MandateError('INVALID_REQUEST', `a federation rule with the id ${String(rec.rule.id).slice(0, 64)} already exists; remove it first`)
      return this.#append(tx, audit)
    })
  }
  async listFederationRules() {
    return (await this.#q('SELECT * FROM federation_rules ORDER BY pos', [], 'listing federation rules')).map(federationRuleFromRow)
  }
  async deleteFederationRule(id: string, audit: AuditDraft) {
    // no stored id holds NUL (Postgres text cannot): nothing to delete
    if (hasNul(id)) return undefined
    return this.#tx(async (tx) => {
      const r = await tx.client.query('DELETE FROM federation_rules WHERE id = $1', [id])
      if (r.rowCount === 0) return undefined
      return this.#append(tx, audit)
    })
  }

  // ---------------------------------------------------------------- mandates

  async issueMandate(input: IssueMandateInput): Promise<IssueMandateResult> {
    // run by #issueMany with the other issuances of its group (one round trip for all of them)
    return this.#tx(async () => {
      throw new Error('unreachable: issuances run in bulk')
    }, input) as Promise<IssueMandateResult>
  }

  /**
   * The issuances `ops` (consecutive in their group) in two round trips: mandate_issue_many()
   * applies each in its own subtransaction and says which were refused; the accepted ones' audit
   * records (chained here, in order) and outbox rows then go in with one insert.
   */
  async #issueMany(tx: Tx, ops: Op[]): Promise<void> {
    if (tx.group.expired) throw new MandateError('STORE_UNAVAILABLE', 'the write timed out')
    const unsealed = this.#seal.check(tx.tail, () => tx.stored)
    if (unsealed) {
      const marker = chainRecord(tx.tail, unsealed)
      await this.#insertAudit(tx, marker)
      tx.tail = marker
      tx.last = marker // sealed with the group even if every issuance is refused
    }
    const send: Op[] = []
    const payload: unknown[] = []
    for (const op of ops) {
      const { mandate: m, revocation: q, consumeUses, consumeApproval } = op.issue!
      const claims = JSON.stringify(m.claims)
      // the audit record's query columns too: they go in one insert with the siblings' records, where
      // a failure would fail the whole group
      const facets = Object.values(auditFacets(op.issue!.audit.type, op.issue!.audit.fields))
      if ([m.jti, m.parent, m.txn, m.subject, m.holder, m.grantor, m.kind, m.tokenHash, consumeApproval, ...(consumeUses ?? []), ...facets].some(hasNul)) {
        // Postgres text (and jsonb) cannot hold NUL: refused as input, nothing sent
        op.done = true
        op.reject(new MandateError('INVALID_REQUEST', 'a value of this mandate holds a character the store cannot keep (NUL)'))
        continue
      }
      send.push(op)
      payload.push({
        rev: q !== undefined, rtxn: q && !hasNul(q.txn) ? q.txn : null, rids: q ? q.ids.filter((x) => !hasNul(x)) : [], ractors: q ? q.actors.filter((x) => !hasNul(x)) : [],
        uses: [...(consumeUses ?? [])], approval: consumeApproval ?? null,
        jti: m.jti, parent: m.parent ?? null, txn: m.txn, subject: m.subject, holder: m.holder, grantor: m.grantor ?? null, kind: m.kind, depth: m.depth,
        iat: m.iat, exp: m.exp, token_hash: m.tokenHash, max_uses: m.maxUses ?? null, claims,
      })
    }
    if (!send.length) return
    const r = await tx.client.query<{ r: string[] }>('SELECT mandate_issue_many($1::jsonb) AS r', [JSON.stringify(payload)])
    const statuses = r.rows[0]?.r ?? []
    const recs: AuditRecord[] = []
    const outbox: Array<{ seq: number; time: number; e: OutboxEntryLike }> = []
    send.forEach((op, i) => {
      const out = String(statuses[i])
      if (out === 'ok') {
        const rec = chainRecord(tx.tail, op.issue!.audit)
        tx.tail = rec
        tx.last = rec
        recs.push(rec)
        for (const e of this.#planner?.(rec) ?? []) outbox.push({ seq: rec.seq, time: rec.time, e })
        op.value = { ok: true, audit: rec }
      } else if (out === 'revoked' || out === 'approval_unusable' || out === 'duplicate') {
        op.value = { ok: false, reason: out }
      } else if (out.startsWith('uses_exhausted:')) {
        op.value = { ok: false, reason: 'uses_exhausted', jti: out.slice('uses_exhausted:'.length) }
      } else {
        // the function caught the error and rolled back this issuance's own changes: only it fails
        op.done = true
        op.reject(storeError({ code: out.startsWith('error:') ? out.slice(6) : 'XX000', message: 'issuing a mandate' }, 'issuing a mandate'))
      }
    })
    if (!recs.length) return
    const cols = recs.map((rec) => ({ rec, idx: auditIndex(rec.fields), f: auditFacets(rec.type, rec.fields) }))
    await tx.client.query(
      `WITH a AS (
         INSERT INTO audit(seq, time, type, fields, prev, hash, txn, agent, subject, tool, jti, decision, call)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::boolean[]))
       INSERT INTO outbox(endpoint, seq, event, message_id, order_key, status, next_at, created_at)
       SELECT e, s, ev, m, k, 'pending', t, t FROM unnest($14::text[], $15::bigint[], $16::text[], $17::text[], $18::text[], $19::bigint[]) AS o(e, s, ev, m, k, t)`,
      [
        cols.map((c) => c.rec.seq), cols.map((c) => c.rec.time), cols.map((c) => c.rec.type), cols.map((c) => JSON.stringify(c.rec.fields)), cols.map((c) => c.rec.prev),
        cols.map((c) => c.rec.hash), cols.map((c) => c.idx.txn), cols.map((c) => c.idx.agent), cols.map((c) => c.idx.subject), cols.map((c) => c.f.tool),
        cols.map((c) => c.f.jti), cols.map((c) => c.f.decision), cols.map((c) => c.f.call),
        outbox.map((o) => o.e.endpoint), outbox.map((o) => o.seq), outbox.map((o) => o.e.event), outbox.map((o) => o.e.messageId), outbox.map((o) => o.e.orderKey ?? null), outbox.map((o) => o.time),
      ],
    )
  }
  async getMandate(jti: string) {
    const r = (await this.#q('SELECT * FROM mandates WHERE jti = $1', [jti], 'reading a mandate'))[0]
    return r && mandateFromRow(r)
  }
  async getMandateByTokenHash(hash: string) {
    const r = (await this.#q('SELECT * FROM mandates WHERE token_hash = $1', [hash], 'reading a mandate'))[0]
    return r && mandateFromRow(r)
  }
  async countMandates() {
    return num((await this.#q('SELECT COUNT(*) AS n FROM mandates', [], 'counting mandates'))[0]?.n)
  }
  async descendants(jti: string) {
    const rows = await this.#q('WITH RECURSIVE d(jti) AS (SELECT jti FROM mandates WHERE parent = $1 UNION ALL SELECT m.jti FROM mandates m JOIN d ON m.parent = d.jti) SELECT jti FROM d', [jti], 'reading descendants')
    return rows.map((r) => str(r.jti))
  }

  // ---------------------------------------------------------------- revocation

  async revoke(entries: ReadonlyArray<{ kind: RevocationKind; id: string }>, meta: { at: number; reason?: string; by?: string }, audit: AuditDraft, grantedTask = (txn: string, grantor: string) => grantedTaskDraft(txn, grantor, meta, audit.time), keepAdmin?: AdminGuard) {
    return this.#tx(async (tx) => {
      const c = tx.client
      if (keepAdmin) assertAdminRemains(await this.#admins(c), new Set(entries.filter((e) => e.kind === 'agent').map((e) => e.id)), keepAdmin.now)
      const added: RevocationEntry[] = []
      const add = async (kind: RevocationKind, id: string): Promise<boolean> => {
        const r = await c.query('INSERT INTO revocations(kind, id, at, reason, by_did) VALUES ($1,$2,$3,$4,$5) ON CONFLICT (kind, id) DO NOTHING RETURNING *', [kind, id, meta.at, meta.reason ?? null, meta.by ?? null])
        const row = r.rows[0] as Row | undefined
        if (!row) return false
        added.push(revocationFromRow(row))
        return true
      }
      const granted: Array<[string, string]> = []
      for (const e of entries) {
        await add(e.kind, e.id)
        if (e.kind !== 'agent') continue
        // the registry reads truthfully: a revoked principal is also disabled, for good
        await c.query('UPDATE agents SET revoked_at = $1, revoked_reason = $2, disabled_at = CASE WHEN disabled THEN disabled_at ELSE $1 END, disabled = TRUE WHERE did = $3 AND revoked_at IS NULL', [meta.at, meta.reason ?? null, e.id])
        // and the tasks it granted, read inside this transaction (under the chain lock every
        // writer takes) so a grant committed just before, on any instance, is included
        for (const r of (await c.query('SELECT txn FROM mandates WHERE grantor = $1 GROUP BY txn ORDER BY MIN(id)', [e.id])).rows as Row[]) granted.push([str(r.txn), e.id])
      }
      const rec = await this.#append(tx, audit)
      const cascade: AuditRecord[] = []
      for (const [txn, grantor] of granted) if (await add('task', txn)) cascade.push(await this.#append(tx, grantedTask(txn, grantor)))
      if (added.length) tx.events.push({ kind: 'revocation' })
      return { added, audit: rec, cascade }
    })
  }
  async tasksGrantedBy(did: string) {
    return (await this.#q('SELECT txn FROM mandates WHERE grantor = $1 GROUP BY txn ORDER BY MIN(id)', [did], 'reading granted tasks')).map((r) => str(r.txn))
  }
  async isRevoked(q: RevocationQuery) {
    try {
      return await this.#revoked(this.pool, q)
    } catch (err) {
      throw storeError(err, 'reading revocations')
    }
  }
  async hasTask(txn: string) {
    return (await this.#q('SELECT 1 FROM mandates WHERE txn = $1 LIMIT 1', [txn], 'reading a task')).length > 0
  }
  async revocationsSince(afterSeq: number, limit: number) {
    return (await this.#q('SELECT * FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq, limit], 'reading revocations')).map(revocationFromRow)
  }
  async revocationHead() {
    return num((await this.#q('SELECT COALESCE(MAX(seq), 0) AS n FROM revocations', [], 'reading revocations'))[0]?.n)
  }

  // ---------------------------------------------------------------- approvals

  async insertApproval(a: ApprovalRecord, audit: AuditDraft, admit?: ApprovalAdmission): Promise<AuditRecord | { existing: ApprovalRecord }> {
    return this.#tx(async (tx) => {
      if (admit) {
        // under the chain lock every write transaction holds (#groupTxBody), across every instance:
        // the agent's pending approvals are read and the new one inserted as one step
        const pending = (await tx.client.query(
          `SELECT * FROM approvals WHERE requested_by = $1 AND status = 'pending' AND expires_at > $2 ORDER BY created_at, cursor LIMIT $3`,
          [a.requestedBy, a.createdAt, admit.maxPending],
        )).rows.map(approvalFromRow)
        const same = pending.find((p) => sameApprovalRequest(p, a))
        if (same) return { existing: same }
        if (pending.length >= admit.maxPending) {
          throw new MandateError('CAPACITY_EXCEEDED', `this agent has ${admit.maxPending} approvals pending; retry when some are decided or expire`)
        }
      }
      await tx.client.query(
        `INSERT INTO approvals(id, status, requested_by, parent, subject, txn, actor_chain, audience, tool, args_digest, arguments, reason, created_at, expires_at, used)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,FALSE)`,
        [a.id, a.status, a.requestedBy, a.parent, a.subject, a.txn, JSON.stringify(a.actorChain), a.audience, a.tool, a.argumentsDigest, a.arguments === undefined ? null : JSON.stringify(a.arguments), a.reason, a.createdAt, a.expiresAt],
      )
      tx.events.push({ kind: 'approval', id: a.id })
      return this.#append(tx, audit)
    })
  }
  async getApproval(id: string) {
    const r = (await this.#q('SELECT * FROM approvals WHERE id = $1', [id], 'reading an approval'))[0]
    return r && approvalFromRow(r)
  }
  async listApprovals(filter: { status?: ApprovalStatus; limit?: number }) {
    const limit = filter.limit ?? 1000
    const rows = filter.status === undefined
      ? await this.#q('SELECT * FROM approvals ORDER BY created_at, cursor LIMIT $1', [limit], 'listing approvals')
      : await this.#q('SELECT * FROM approvals WHERE status = $1 ORDER BY created_at, cursor LIMIT $2', [filter.status, limit], 'listing approvals')
    return rows.map(approvalFromRow)
  }
  async pendingApprovalsBy(requestedBy: string, now: number, limit: number) {
    const rows = await this.#q(`SELECT * FROM approvals WHERE requested_by = $1 AND status = 'pending' AND expires_at > $2 ORDER BY created_at, cursor LIMIT $3`, [requestedBy, now, limit], 'reading approvals')
    return rows.map(approvalFromRow)
  }
  async decideApproval(id: string, d: ApprovalDecision, audit: AuditDraft) {
    return this.#tx(async (tx) => {
      const r = await tx.client.query(`UPDATE approvals SET status = $1, decided_by = $2, decided_at = $3, decision_reason = $4 WHERE id = $5 AND status = 'pending'`, [d.status, d.decidedBy ?? null, d.decidedAt, d.decisionReason ?? null, id])
      if (r.rowCount === 0) return undefined
      tx.events.push({ kind: 'approval', id })
      return this.#append(tx, audit)
    })
  }
  async expiredPending(now: number, limit: number) {
    return (await this.#q(`SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= $1 LIMIT $2`, [now, limit], 'reading approvals')).map((r) => str(r.id))
  }

  // ---------------------------------------------------------------- audit

  sealAuditWith(sealer: AuditSealer, trusted: ChainHead | undefined): void {
    this.#sealer = sealer
    this.#seal.attach(sealer, trusted)
    this.#lastTail = trusted
  }
  async appendAudit(draft: AuditDraft) {
    return this.#tx((tx) => this.#append(tx, draft))
  }
  async appendAuditBatch(drafts: readonly AuditDraft[]) {
    return this.#tx(async (tx) => {
      const out: AuditRecord[] = []
      for (const d of drafts) out.push(await this.#append(tx, d))
      return out
    })
  }
  async auditHead() {
    const r = (await this.#q('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1', [], 'reading the audit head'))[0]
    return r && { seq: num(r.seq), hash: str(r.hash) }
  }
  async readAudit(afterSeq: number, limit: number) {
    return (await this.#q('SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq, limit], 'reading the audit log')).map(auditRecordFromRow)
  }
  async readAuditIndex(afterSeq: number, limit: number) {
    const rows = await this.#q('SELECT seq, txn, agent, subject, tool, jti, decision, call FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2', [afterSeq, limit], 'reading the audit log')
    return rows.map((r) => ({
      seq: num(r.seq), txn: r.txn as string | null, agent: r.agent as string | null, subject: r.subject as string | null,
      tool: r.tool as string | null, jti: r.jti as string | null, decision: r.decision as string | null, call: r.call as boolean | null,
    }))
  }
  async queryAudit(q: AuditQuery) {
    const w = new Where()
    w.add((p) => `seq > ${p}`, q.afterSeq)
    w.add((p) => `seq <= ${p}`, q.untilSeq)
    w.add((p) => `txn = ${p}`, q.txn)
    w.add((p) => `agent = ${p}`, q.agent)
    w.add((p) => `subject = ${p}`, q.subject)
    w.add((p) => `type = ${p}`, q.type)
    w.add((p) => `time >= ${p}`, q.since)
    w.add((p) => `time < ${p}`, q.until)
    const limit = w.param(Math.min(Math.max(1, q.limit ?? 1000), 10_000))
    return (await this.#q(`SELECT * FROM audit ${w.sql()} ORDER BY seq LIMIT ${limit}`, w.args, 'querying the audit log')).map(auditRecordFromRow)
  }
  async latestCheckpoint() {
    const r = (await this.#q('SELECT seq, hash, time, jws FROM audit_head WHERE id = 1', [], 'reading the signed head'))[0]
    return r && { seq: num(r.seq), hash: str(r.hash), time: num(r.time), jws: str(r.jws) }
  }

  async queryAuditPage(q: AuditPageQuery) {
    const w = new Where()
    w.add((p) => `seq < ${p}`, q.beforeSeq)
    w.add((p) => `txn = ${p}`, q.txn)
    w.add((p) => `agent = ${p}`, q.agent)
    w.add((p) => `subject = ${p}`, q.subject)
    w.add((p) => `tool = ${p}`, q.tool)
    w.in('type', q.types)
    w.add((p) => `decision = ${p}`, q.decision)
    w.in('jti', q.jtis)
    if (q.callsOnly) w.raw('call')
    w.add((p) => `time >= ${p}`, q.since)
    w.add((p) => `time < ${p}`, q.until)
    if (q.q !== undefined) w.search(['txn', 'agent', 'subject', 'type', 'tool', 'jti'], q.q, 'agent', q.qAgents)
    const limit = w.param(Math.max(1, Math.min(q.limit, 10_000)))
    const rows = (await this.#q(`SELECT * FROM audit ${w.sql()} ORDER BY seq DESC LIMIT ${limit}`, w.args, 'querying the audit log')).map(auditRecordFromRow)
    // the query columns sit beside the hashed record: a row whose record does not say what its
    // columns say (a tampered column) is not returned as matching
    return rows.filter((r) => facetsMatch(r, q))
  }
  async countAuditSince(since: number) {
    const r = (await this.#q(`SELECT COUNT(*) FILTER (WHERE call) AS calls, COUNT(*) FILTER (WHERE decision = 'refused') AS refused FROM audit WHERE time >= $1`, [since], 'counting audit records'))[0]
    return { calls: num(r?.calls ?? 0), refused: num(r?.refused ?? 0) }
  }
  async countTasks() {
    return num((await this.#q(`SELECT COUNT(*) AS n FROM mandates WHERE kind = 'root'`, [], 'counting tasks'))[0]?.n)
  }
  async queryTasks(q: TaskPageQuery): Promise<TaskRow[]> {
    const revoked = `(EXISTS (SELECT 1 FROM revocations r WHERE r.kind = 'task' AND r.id = m.txn) OR EXISTS (SELECT 1 FROM revocations r WHERE r.kind = 'mandate' AND r.id = m.jti))`
    const w = new Where()
    w.raw(`m.kind = 'root'`)
    w.add((p) => `m.id < ${p}`, q.before)
    w.add((p) => `m.subject = ${p}`, q.subject)
    w.add((p) => `m.txn IN (SELECT txn FROM mandates WHERE holder = ${p})`, q.agent)
    w.add((p) => `m.iat * 1000 >= ${p}`, q.since)
    w.add((p) => `m.iat * 1000 < ${p}`, q.until)
    // claims are stored as JSON text, which may hold an escaped NUL (\u0000, e.g. in a purpose): jsonb
    // refuses it (22P05), and one such row would fail every task search; such rows are not searched by purpose
    const purpose = `(CASE WHEN strpos(m.claims, '\\u0000') = 0 THEN m.claims::jsonb ->> 'purpose' END)`
    if (q.q !== undefined) w.search(['m.txn', 'm.subject', 'm.holder', purpose], q.q, 'm.holder', q.qAgents)
    const nowSec = Math.floor(q.now / 1000)
    if (q.status === 'revoked') w.raw(revoked)
    else if (q.status === 'expired') w.raw(`NOT ${revoked}`).add((p) => `m.exp <= ${p}`, nowSec)
    else if (q.status === 'active') w.raw(`NOT ${revoked}`).add((p) => `m.exp > ${p}`, nowSec)
    const limit = w.param(Math.max(1, Math.min(q.limit, 1000)))
    const rows = await this.#q(
      `SELECT m.id AS cursor, m.*, ${revoked} AS revoked,
         (SELECT COUNT(*) FROM mandates c WHERE c.txn = m.txn AND c.kind = 'call') AS calls,
         (SELECT COUNT(*) FROM mandates c WHERE c.txn = m.txn) AS n
       FROM mandates m ${w.sql()} ORDER BY m.id DESC LIMIT ${limit}`, w.args, 'querying tasks')
    return rows.map((r) => ({ cursor: num(r.cursor), root: mandateFromRow(r), revoked: r.revoked === true, mandates: num(r.n) - num(r.calls), calls: num(r.calls) }))
  }
  async taskMandates(txn: string, limit: number) {
    return (await this.#q('SELECT * FROM mandates WHERE txn = $1 ORDER BY id LIMIT $2', [txn, limit], 'reading a task')).map(mandateFromRow)
  }
  async queryApprovals(q: ApprovalPageQuery) {
    const w = new Where()
    w.add((p) => `cursor < ${p}`, q.before)
    w.add((p) => `status = ${p}`, q.status)
    w.add((p) => `txn = ${p}`, q.txn)
    if (q.agent !== undefined) {
      const a = w.param(q.agent)
      const quoted = w.param(JSON.stringify(q.agent))
      w.raw(`(requested_by = ${a} OR strpos(actor_chain, ${quoted}) > 0)`)
    }
    w.add((p) => `tool = ${p}`, q.tool)
    w.add((p) => `created_at >= ${p}`, q.since)
    w.add((p) => `created_at < ${p}`, q.until)
    if (q.q !== undefined) w.search(['id', 'tool', 'audience', 'subject', 'txn', 'requested_by', 'reason'], q.q, 'requested_by', q.qAgents)
    const limit = w.param(Math.max(1, Math.min(q.limit, 1000)))
    const rows = await this.#q(`SELECT * FROM approvals ${w.sql()} ORDER BY cursor DESC LIMIT ${limit}`, w.args, 'querying approvals')
    return rows.map((r) => ({ cursor: num(r.cursor), approval: approvalFromRow(r) }))
  }

  // ---------------------------------------------------------------- notification outbox

  planOutboxWith(planner: OutboxPlanner | undefined): void {
    this.#planner = planner
  }
  /**
   * Due rows, claimed for this instance: each returned row is leased (OUTBOX_LEASE_MS) so that the
   * dispatchers of other instances skip it while this one delivers it (one delivery at a time per
   * row across the fleet; a crashed deliverer's lease runs out and another retries the same bytes).
   */
  async outboxDue(q: { now: number; exclude: readonly number[]; limit: number }) {
    const limit = Math.max(1, Math.min(q.limit, 1000))
    const rows = await this.#q(
      `WITH due AS (
         SELECT o.id FROM outbox o
         WHERE o.status = 'pending' AND o.next_at <= $1 AND (o.lease_until IS NULL OR o.lease_until <= $1) AND NOT (o.id = ANY($2::bigint[]))
           AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.endpoint = o.endpoint AND e.order_key = o.order_key AND e.status = 'pending' AND e.id < o.id)
         ORDER BY o.id LIMIT $3 FOR UPDATE SKIP LOCKED)
       UPDATE outbox SET lease_until = $4 FROM due WHERE outbox.id = due.id RETURNING outbox.id`,
      [q.now, [...q.exclude], limit, q.now + OUTBOX_LEASE_MS], 'claiming outbox rows')
    if (!rows.length) return []
    const full = await this.#q(`${OUTBOX_SELECT} WHERE o.id = ANY($1::bigint[]) ORDER BY o.id`, [rows.map((r) => num(r.id))], 'reading outbox rows')
    return full.map(outboxFromRow)
  }
  async outboxNextDue() {
    const r = (await this.#q(`SELECT MIN(GREATEST(next_at, COALESCE(lease_until, 0))) AS t FROM outbox WHERE status = 'pending'`, [], 'reading the outbox'))[0]
    return r && nn(r.t) ? num(r.t) : undefined
  }
  async outboxUpdate(id: number, c: OutboxChange) {
    await this.#tx(async (tx) => {
      await tx.client.query(
        `UPDATE outbox SET status = $1, attempts = $2, next_at = $3, body = COALESCE($4, body), last_error = COALESCE($5, last_error),
           last_status = COALESCE($6, last_status), last_failure_at = COALESCE($7, last_failure_at), delivered_at = COALESCE($8, delivered_at), lease_until = NULL WHERE id = $9`,
        [c.status, c.attempts, c.nextAttemptAt, c.body ?? null, c.lastError ?? null, c.lastStatus ?? null, c.lastFailureAt ?? null, c.deliveredAt ?? null, id],
      )
    })
  }
  async outboxStats(): Promise<OutboxEndpointStats[]> {
    const rows = await this.#q(
      `SELECT endpoint, COUNT(*) FILTER (WHERE status = 'pending') AS pending, COUNT(*) FILTER (WHERE status = 'failed') AS failed,
         COUNT(*) FILTER (WHERE status = 'delivered') AS delivered, MAX(delivered_at) AS last_success, MAX(last_failure_at) AS last_failure,
         (SELECT l.last_error FROM outbox l WHERE l.endpoint = o.endpoint AND l.last_failure_at IS NOT NULL ORDER BY l.last_failure_at DESC, l.id DESC LIMIT 1) AS last_error
       FROM outbox o GROUP BY endpoint ORDER BY endpoint`, [], 'reading outbox stats')
    return rows.map((r) => {
      const s: OutboxEndpointStats = { endpoint: str(r.endpoint), pending: num(r.pending), failed: num(r.failed), delivered: num(r.delivered) }
      if (nn(r.last_success)) s.lastSuccessAt = num(r.last_success)
      if (nn(r.last_failure)) {
        s.lastFailureAt = num(r.last_failure)
        if (nn(r.last_error) && r.last_error !== '') s.lastError = str(r.last_error)
      }
      return s
    })
  }
  async outboxFailed(limit: number) {
    return (await this.#q(`${OUTBOX_SELECT} WHERE o.status = 'failed' ORDER BY o.last_failure_at DESC, o.id DESC LIMIT $1`, [Math.max(1, Math.min(limit, 1000))], 'reading the outbox')).map(outboxFromRow)
  }
  async outboxPrune(before: number) {
    return this.#tx(async (tx) => (await tx.client.query(`DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < $1`, [before])).rowCount ?? 0)
  }

  // ---------------------------------------------------------------- signing keys

  async loadSigningKeys() {
    return (await this.#q('SELECT * FROM signing_keys ORDER BY created_at, kid', [], 'reading the signing keys')).map((r) => {
      let privateJwk: StoredSigningKey['privateJwk']
      try {
        privateJwk = JSON.parse(str(r.private_jwk)) as StoredSigningKey['privateJwk']
      } catch {
        // never the parser's message: it quotes the text around the error (the private key)
        throw new MandateError('STORE_ERROR', `the stored signing key ${String(r.kid).slice(0, 64)} is not valid JSON; restore the database from a backup`)
      }
      const k: StoredSigningKey = { kid: str(r.kid), privateJwk, createdAt: num(r.created_at) }
      if (nn(r.retired_at)) k.retiredAt = num(r.retired_at)
      return k
    })
  }
  async saveSigningKeys(keys: readonly StoredSigningKey[]) {
    await this.#tx(async (tx) => {
      for (const k of keys) {
        await tx.client.query(
          'INSERT INTO signing_keys(kid, private_jwk, created_at, retired_at) VALUES ($1,$2,$3,$4) ON CONFLICT (kid) DO UPDATE SET retired_at = excluded.retired_at',
          [k.kid, JSON.stringify(k.privateJwk), k.createdAt, k.retiredAt ?? null],
        )
      }
      // every instance reloads and serves the same JWKS
      tx.events.push({ kind: 'keys' })
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    // writes already queued are committed (and answered) first
    while (this.#flushing) await this.#flushing
    this.#closed = true
    if (this.#writer) {
      const w = this.#writer
      this.#writer = undefined
      if (!w.released) {
        w.released = true
        w.client.release()
      }
    }
    await this.#channel.stop()
    if (this.#ownPool) await this.pool.end().catch(() => undefined)
  }
}
