/**
 * SQLite store (Node's built-in `node:sqlite`, loaded by sqlite_driver.ts): one file, WAL journal,
 * every state change plus its audit record in one IMMEDIATE transaction, together with a head of
 * the audit chain signed over that record. The writes of one event-loop turn share that transaction
 * (group commit, each in its own savepoint):
 * one signature and one commit for the group, and no operation resolves before the group commits.
 *
 * Durability: `synchronous=FULL` (the default here) fsyncs the WAL after every group commit before
 * any operation of the group is answered, so a request answered 200 survives a process kill AND a
 * power loss. That fsync runs on the libuv thread pool, off the event loop (see #commit): SQLite
 * itself commits at `synchronous=NORMAL` (which in WAL mode writes the frames but syncs only before
 * a checkpoint), and the store then fsyncs the WAL file; other requests are served meanwhile and
 * the next group can commit behind it. `NORMAL` in WAL mode survives a process crash (SIGKILL) but
 * may lose the last commits on power loss; it is offered for throughput-sensitive deployments that
 * accept that.
 */
import { closeSync, fsync, fsyncSync, openSync, realpathSync, statSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'
import { DatabaseSync, sqliteError, type SqliteDatabase, type SqliteStatement } from './sqlite_driver.js'
import { MandateError, type RevocationQuery } from '@mandate/core'
import { auditIndex, chainRecord } from '../audit/hash.js'
import { auditFacets } from './audit_facets.js'
import { BACKSTOP_CHECKPOINT_PAGES, WalCheckpointer } from './sqlite_checkpointer.js'
import { auditRecordFromRow } from './audit_row.js'
import { SealState, type AuditSealer, type ChainHead } from '../audit/seal.js'
import type {
  AgentBinding, AgentRecord, ApprovalRecord, ApprovalStatus, AuditDraft, AuditQuery, AuditRecord, MandateRecord,
  RevocationEntry, RevocationKind, Role, StoredCheckpoint, StoredSigningKey,
} from '../types.js'
import type { FederationRule, StoredFederationRule } from '../federation/types.js'
import { assertAdminRemains, grantedTaskDraft, type AdminGuard, type ApprovalDecision, type ApprovalPageQuery, type AuditPageQuery, type AuthorityStore, type IssueMandateInput, type IssueMandateResult, type TaskPageQuery, type TaskRow } from './store.js'
import type { OutboxChange, OutboxEndpointStats, OutboxPlanner, OutboxRow, OutboxStatus } from './store.js'

export interface SqliteStoreOptions {
  /** `FULL` (default): durable across power loss. `NORMAL`: durable across process crashes only. */
  synchronous?: 'FULL' | 'NORMAL'
  /** ms to wait for a lock held by another connection. Default 5000. */
  busyTimeoutMs?: number
  /**
   * Page size of a **new** database file, in bytes: a power of two from 512 to 65536. Default 2048.
   * An existing file keeps the page size it was created with (SQLite changes it only by VACUUM).
   * Why 2048 and not SQLite's 4096: an exchange dirties one page in each of ~20 B-trees (the
   * mandate and audit rows and their indexes), and every dirty page is written whole to the WAL and
   * again at the checkpoint, so smaller pages cut the bytes written per exchange; measured in
   * process (docs/deploy.md), 2048 takes ~30% less CPU per exchange than 4096 for ~9% more file.
   */
  pageSize?: number
  /**
   * Where WAL checkpoints run. `worker` (default, for a database file): on a worker thread with its
   * own connection, so no commit waits for one on the event loop (see sqlite_checkpointer.ts).
   * `inline`: SQLite's automatic checkpoint, inside the commit that crosses 1000 WAL pages.
   */
  checkpoint?: 'worker' | 'inline'
}

/** CONFIG_INVALID unless `mode` is a checkpoint mode (see SqliteStoreOptions.checkpoint). */
export function checkSqliteCheckpoint(mode: unknown): void {
  if (mode !== 'worker' && mode !== 'inline') throw new MandateError('CONFIG_INVALID', 'sqlite checkpoint must be "worker" or "inline"')
}

/** The page size new SQLite databases get (see SqliteStoreOptions.pageSize). */
export const DEFAULT_SQLITE_PAGE_SIZE = 2048

/** CONFIG_INVALID unless `n` is a page size SQLite accepts. */
export function checkSqlitePageSize(n: unknown): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 512 || n > 65536 || (n & (n - 1)) !== 0) {
    throw new MandateError('CONFIG_INVALID', 'sqlite pageSize must be a power of two from 512 to 65536')
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
  did TEXT PRIMARY KEY, jkt TEXT NOT NULL, name TEXT NOT NULL, owner TEXT, role TEXT NOT NULL,
  metadata TEXT, disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, disabled_at INTEGER,
  disabled_reason TEXT, revoked_at INTEGER, revoked_reason TEXT);
CREATE TABLE IF NOT EXISTS mandates (
  jti TEXT PRIMARY KEY, parent TEXT, txn TEXT NOT NULL, subject TEXT NOT NULL, holder TEXT NOT NULL,
  kind TEXT NOT NULL, depth INTEGER NOT NULL, iat INTEGER NOT NULL, exp INTEGER NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, max_uses INTEGER, uses INTEGER NOT NULL DEFAULT 0, claims TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mandates_parent ON mandates(parent);
CREATE INDEX IF NOT EXISTS mandates_txn ON mandates(txn);
CREATE TABLE IF NOT EXISTS revocations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL,
  reason TEXT, by_did TEXT, UNIQUE(kind, id));
CREATE TABLE IF NOT EXISTS approvals (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, requested_by TEXT NOT NULL, parent TEXT NOT NULL,
  subject TEXT NOT NULL, txn TEXT NOT NULL, actor_chain TEXT NOT NULL, audience TEXT NOT NULL,
  tool TEXT NOT NULL, args_digest TEXT NOT NULL, arguments TEXT, reason TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, decided_by TEXT, decided_at INTEGER,
  decision_reason TEXT, used INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals(status, expires_at);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, fields TEXT NOT NULL,
  prev TEXT NOT NULL, hash TEXT NOT NULL, txn TEXT, agent TEXT, subject TEXT);
CREATE INDEX IF NOT EXISTS audit_txn ON audit(txn);
CREATE INDEX IF NOT EXISTS audit_agent ON audit(agent);
CREATE INDEX IF NOT EXISTS audit_subject ON audit(subject);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time);
CREATE TABLE IF NOT EXISTS checkpoints (seq INTEGER NOT NULL, hash TEXT NOT NULL, time INTEGER NOT NULL, jws TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL, time INTEGER NOT NULL, jws TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signing_keys (kid TEXT PRIMARY KEY, private_jwk TEXT NOT NULL, created_at INTEGER NOT NULL, retired_at INTEGER);
`

type Row = Record<string, unknown>
const str = (v: unknown) => v as string
const num = (v: unknown) => v as number
const opt = <T>(v: unknown, f: (x: unknown) => T): T | undefined => (v === null || v === undefined ? undefined : f(v))

function agentFromRow(r: Row): AgentRecord {
  const revoked = r.revoked_at !== null && r.revoked_at !== undefined
  // a revoked principal is disabled whatever the disabled column says (fail closed)
  const disabled = r.disabled === 1 || revoked
  const a: AgentRecord = {
    did: str(r.did), jkt: str(r.jkt), name: str(r.name), role: str(r.role) as Role,
    status: revoked ? 'revoked' : disabled ? 'disabled' : 'enabled', disabled, createdAt: num(r.created_at),
  }
  if (r.owner !== null) a.owner = str(r.owner)
  if (r.metadata !== null) a.metadata = JSON.parse(str(r.metadata)) as AgentRecord['metadata'] & object
  if (r.disabled_at !== null) a.disabledAt = num(r.disabled_at)
  if (r.disabled_reason !== null && r.disabled_reason !== undefined) a.disabledReason = str(r.disabled_reason)
  if (revoked) a.revokedAt = num(r.revoked_at)
  if (r.revoked_reason !== null && r.revoked_reason !== undefined) a.revokedReason = str(r.revoked_reason)
  if (r.binding !== null && r.binding !== undefined) a.binding = parseStored<AgentBinding>(r.binding, `binding of agent ${String(r.did).slice(0, 80)}`)
  if (r.expires_at !== null && r.expires_at !== undefined) a.expiresAt = num(r.expires_at)
  return a
}

/**
 * JSON text read back from a column; corrupt text fails as STORE_ERROR (never a raw SyntaxError,
 * whose message would quote the stored text).
 */
function parseStored<T>(v: unknown, what: string): T {
  try {
    return JSON.parse(str(v)) as T
  } catch {
    throw new MandateError('STORE_ERROR', `the stored ${what} is not valid JSON; restore the database from a backup`)
  }
}

function federationRuleFromRow(r: Row): StoredFederationRule {
  const out: StoredFederationRule = { rule: parseStored<FederationRule>(r.rule, `federation rule ${String(r.id).slice(0, 64)}`), createdAt: num(r.created_at) }
  if (r.created_by !== null && r.created_by !== undefined) out.createdBy = str(r.created_by)
  return out
}

/**
 * Federation (added after schema 1; older databases get it on open, idempotently, keeping all
 * they hold): the store's federation rules (the validated rule as JSON, in creation order by
 * rowid), and the workload binding and expiry of agents registered under an agent rule.
 */
function migrateFederation(db: SqliteDatabase): void {
  db.exec('CREATE TABLE IF NOT EXISTS federation_rules (id TEXT PRIMARY KEY, rule TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT)')
  const have = new Set((db.prepare('PRAGMA table_info(agents)').all() as Array<{ name: string }>).map((c) => c.name))
  for (const [col, type] of [['binding', 'TEXT'], ['expires_at', 'INTEGER']] as const) {
    if (!have.has(col)) db.exec(`ALTER TABLE agents ADD COLUMN ${col} ${type}`)
  }
}

/**
 * Agent columns added after schema 1 (databases created before them get them on open), and the
 * registry marks of agents revoked before revocation marked the registry.
 */
function migrateAgents(db: SqliteDatabase): void {
  const have = new Set((db.prepare('PRAGMA table_info(agents)').all() as Array<{ name: string }>).map((c) => c.name))
  for (const [col, type] of [['disabled_reason', 'TEXT'], ['revoked_at', 'INTEGER'], ['revoked_reason', 'TEXT']] as const) {
    if (!have.has(col)) db.exec(`ALTER TABLE agents ADD COLUMN ${col} ${type}`)
  }
  db.exec(`UPDATE agents SET
      revoked_at = (SELECT r.at FROM revocations r WHERE r.kind = 'agent' AND r.id = agents.did),
      revoked_reason = (SELECT r.reason FROM revocations r WHERE r.kind = 'agent' AND r.id = agents.did),
      disabled_at = COALESCE(disabled_at, (SELECT r.at FROM revocations r WHERE r.kind = 'agent' AND r.id = agents.did)),
      disabled = 1
    WHERE revoked_at IS NULL AND EXISTS (SELECT 1 FROM revocations r WHERE r.kind = 'agent' AND r.id = agents.did)`)
}
/**
 * Dashboard query columns and indexes (schema 1 databases get them on open, idempotently): the
 * audit facets tool / jti / decision / call (audit_facets.ts), filled in for existing records once,
 * and indexes for the dashboard's filters. Each index keeps seq order within equal keys, so a
 * filtered page walks an index newest-first from its cursor and stops at the limit (no OFFSET).
 */
function migrateDashboardIndexes(db: SqliteDatabase): void {
  const have = new Set((db.prepare('PRAGMA table_info(audit)').all() as Array<{ name: string }>).map((c) => c.name))
  for (const [col, type] of [['tool', 'TEXT'], ['jti', 'TEXT'], ['decision', 'TEXT'], ['call', 'INTEGER NOT NULL DEFAULT 0']] as const) {
    if (!have.has(col)) db.exec(`ALTER TABLE audit ADD COLUMN ${col} ${type}`)
  }
  db.exec(`
    CREATE INDEX IF NOT EXISTS audit_type ON audit(type);
    CREATE INDEX IF NOT EXISTS audit_agent_type ON audit(agent, type);
    CREATE INDEX IF NOT EXISTS audit_tool ON audit(tool) WHERE tool IS NOT NULL;
    CREATE INDEX IF NOT EXISTS audit_jti ON audit(jti) WHERE jti IS NOT NULL;
    CREATE INDEX IF NOT EXISTS audit_decision ON audit(decision) WHERE decision IS NOT NULL;
    CREATE INDEX IF NOT EXISTS audit_calls ON audit(call) WHERE call = 1;
    CREATE INDEX IF NOT EXISTS mandates_kind ON mandates(kind);
    CREATE INDEX IF NOT EXISTS mandates_subject ON mandates(subject);
    CREATE INDEX IF NOT EXISTS mandates_holder ON mandates(holder);
    CREATE INDEX IF NOT EXISTS approvals_txn ON approvals(txn);
    CREATE INDEX IF NOT EXISTS approvals_requested_by ON approvals(requested_by);
  `)
  if (db.prepare(`SELECT 1 AS x FROM meta WHERE key = 'audit_facets'`).get()) return
  // records written before the facet columns existed: fill them in once, in one transaction
  const update = db.prepare('UPDATE audit SET tool = ?, jti = ?, decision = ?, call = ? WHERE seq = ?')
  const read = db.prepare('SELECT seq, type, fields FROM audit WHERE seq > ? ORDER BY seq LIMIT 5000')
  db.exec('BEGIN IMMEDIATE')
  try {
    for (let after = 0; ;) {
      const rows = read.all(after) as Array<{ seq: number; type: string; fields: string }>
      if (rows.length === 0) break
      for (const r of rows) {
        after = r.seq
        let fields: AuditRecord['fields']
        try {
          fields = JSON.parse(r.fields) as AuditRecord['fields']
        } catch {
          continue // unreadable: verification reports it
        }
        const f = auditFacets(r.type, fields)
        update.run(f.tool, f.jti, f.decision, f.call ? 1 : 0, r.seq)
      }
    }
    db.prepare(`INSERT OR REPLACE INTO meta(key, value) VALUES ('audit_facets', '1')`).run()
    db.exec('COMMIT')
  } catch (err) {
    db.exec('ROLLBACK')
    throw err
  }
}

/**
 * The grantor of each task (root mandates), added after schema 1. Tasks granted before it existed
 * have no grantor recorded (NULL): revoking their grantor does not revoke them (revoke those by txn).
 */
function migrateGrantors(db: SqliteDatabase): void {
  const have = new Set((db.prepare('PRAGMA table_info(mandates)').all() as Array<{ name: string }>).map((c) => c.name))
  if (!have.has('grantor')) db.exec('ALTER TABLE mandates ADD COLUMN grantor TEXT')
  db.exec('CREATE INDEX IF NOT EXISTS mandates_grantor ON mandates(grantor) WHERE grantor IS NOT NULL')
}
function mandateFromRow(r: Row): MandateRecord {
  const m: MandateRecord = {
    jti: str(r.jti), txn: str(r.txn), subject: str(r.subject), holder: str(r.holder), kind: str(r.kind) as MandateRecord['kind'],
    depth: num(r.depth), iat: num(r.iat), exp: num(r.exp), tokenHash: str(r.token_hash), uses: num(r.uses), claims: JSON.parse(str(r.claims)) as MandateRecord['claims'],
  }
  if (r.parent !== null) m.parent = str(r.parent)
  if (r.grantor !== null && r.grantor !== undefined) m.grantor = str(r.grantor)
  if (r.max_uses !== null) m.maxUses = num(r.max_uses)
  return m
}
function approvalFromRow(r: Row): ApprovalRecord {
  const a: ApprovalRecord = {
    id: str(r.id), status: str(r.status) as ApprovalStatus, requestedBy: str(r.requested_by), parent: str(r.parent), subject: str(r.subject),
    txn: str(r.txn), actorChain: JSON.parse(str(r.actor_chain)) as string[], audience: str(r.audience), tool: str(r.tool),
    argumentsDigest: str(r.args_digest), reason: str(r.reason), createdAt: num(r.created_at), expiresAt: num(r.expires_at), used: r.used === 1,
  }
  const args = opt(r.arguments, (v) => JSON.parse(str(v)) as ApprovalRecord['arguments'])
  if (args !== undefined) a.arguments = args
  const by = opt(r.decided_by, str)
  if (by !== undefined) a.decidedBy = by
  const at = opt(r.decided_at, num)
  if (at !== undefined) a.decidedAt = at
  const why = opt(r.decision_reason, str)
  if (why !== undefined) a.decisionReason = why
  return a
}
function revocationFromRow(r: Row): RevocationEntry {
  const e: RevocationEntry = { seq: num(r.seq), kind: str(r.kind) as RevocationKind, id: str(r.id), at: num(r.at) }
  if (r.reason !== null) e.reason = str(r.reason)
  if (r.by_did !== null) e.by = str(r.by_did)
  return e
}

/** Whether the record itself (not its query columns) matches the exact filters of `q`. */
function facetsMatch(r: AuditRecord, q: AuditPageQuery): boolean {
  const f = auditFacets(r.type, r.fields)
  return (q.txn === undefined || f.txn === q.txn) && (q.agent === undefined || f.agent === q.agent) && (q.subject === undefined || f.subject === q.subject)
    && (q.tool === undefined || f.tool === q.tool) && (q.decision === undefined || f.decision === q.decision) && (!q.callsOnly || f.call)
    && (q.types === undefined || q.types.includes(r.type)) && (q.jtis === undefined || (f.jti !== null && q.jtis.includes(f.jti)))
}

/** A WHERE clause built from optional filters (values always bound, never spliced into SQL). */
class Where {
  readonly parts: string[] = []
  readonly args: Array<string | number> = []
  add(sql: string, v: string | number | undefined): this {
    if (v === undefined) return this
    this.parts.push(sql)
    this.args.push(v)
    return this
  }
  raw(sql: string, ...args: Array<string | number>): this {
    this.parts.push(sql)
    this.args.push(...args)
    return this
  }
  in(col: string, values: readonly string[] | undefined): this {
    if (values === undefined) return this
    if (values.length === 0) return this.raw('0')
    return this.raw(`${col} IN (${values.map(() => '?').join(',')})`, ...values)
  }
  /** Case-insensitive (ASCII, as LIKE is) substring over `cols`, or `agentCol` among the dids whose names matched. */
  search(cols: readonly string[], q: string, agentCol: string, agents: readonly string[] = []): this {
    const pattern = `%${q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`
    const terms = cols.map((c) => `${c} LIKE ? ESCAPE '\\'`)
    const args: string[] = cols.map(() => pattern)
    if (agents.length) {
      terms.push(`${agentCol} IN (${agents.map(() => '?').join(',')})`)
      args.push(...agents)
    }
    return this.raw(`(${terms.join(' OR ')})`, ...args)
  }
  sql(): string {
    return this.parts.length ? `WHERE ${this.parts.join(' AND ')}` : ''
  }
}

/** Thrown inside a transaction to roll it back with a refusal result. */
class Abort extends Error {
  constructor(readonly result: IssueMandateResult) {
    super('abort')
  }
}

/** Open (or create) a SQLite store at `path`. */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(path, options)
}

/** A file name, not `:memory:`, a temporary database (`''`) or a `file:` URI. */
function isPlainPath(path: string): boolean {
  return path !== '' && path !== ':memory:' && !path.startsWith('file:')
}

/**
 * The database holds the Authority's signing keys: create it readable by its owner only (SQLite
 * gives its -wal and -shm files the same mode). An existing file keeps the mode its owner chose.
 */
function createPrivateFile(path: string): void {
  if (!isPlainPath(path)) return
  try {
    closeSync(openSync(path, 'wx', 0o600))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
}

export class SqliteStore implements AuthorityStore {
  readonly kind = 'sqlite'
  /** The open connection (tests and operators' tools reach the raw database through it). */
  readonly db: SqliteDatabase
  readonly #s: Record<string, SqliteStatement>
  /** Tracked here: `DatabaseSync#isOpen` only exists from Node 22.15 (the floor is 22.13). */
  #open = true

  constructor(given: string, options: SqliteStoreOptions = {}) {
    // checked before the file is created
    if (options.pageSize !== undefined) checkSqlitePageSize(options.pageSize)
    if (options.checkpoint !== undefined) checkSqliteCheckpoint(options.checkpoint)
    // absolute from here on: the WAL fsync and the checkpoint worker open the file by name later,
    // when the process may have changed directory
    const path = isPlainPath(given) ? resolvePath(given) : given
    createPrivateFile(path)
    try {
      this.db = new DatabaseSync(path)
    } catch (err) {
      throw sqliteError(err)
    }
    try {
      // SQLite keeps the WAL next to the file a symlink points to: the WAL fsync and the checkpoint
      // worker must name that file
      this.#s = this.#init(isPlainPath(path) ? realpathSync(path) : path, options)
    } catch (err) {
      this.db.close()
      this.#open = false
      throw sqliteError(err)
    }
  }

  /** Journal, pragmas, schema and migrations; the prepared statements. */
  #init(path: string, options: SqliteStoreOptions): Record<string, SqliteStatement> {
    // takes effect only while the file is still empty (before journal_mode writes its header); an
    // existing database keeps its page size
    this.db.exec(`PRAGMA page_size = ${options.pageSize ?? DEFAULT_SQLITE_PAGE_SIZE}`)
    const mode = this.db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode?: unknown } | undefined
    const wal = String(mode?.journal_mode).toLowerCase() === 'wal'
    const memory = path === '' || path === ':memory:'
    // FULL on a WAL file: SQLite commits at NORMAL and the store fsyncs the WAL itself, off the
    // event loop (#commit). Anything else (an in-memory database) keeps SQLite's own FULL.
    const full = options.synchronous !== 'NORMAL'
    // a `file:` URI keeps SQLite's own FULL (its WAL has no plain name to fsync)
    this.#walPath = full && wal && isPlainPath(path) ? `${path}-wal` : undefined
    this.db.exec(`PRAGMA synchronous = ${!full || this.#walPath !== undefined ? 'NORMAL' : 'FULL'}`)
    this.db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`)
    this.#walFile = wal && !memory
    if (this.#walFile && options.checkpoint !== 'inline' && isPlainPath(path)) {
      // checkpoints move to a worker thread; should it fail, the connection takes them back
      const file = statSync(path)
      this.db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_CHECKPOINT_PAGES}`)
      this.#checkpointer = new WalCheckpointer({ path, dev: file.dev, ino: file.ino }, () => {
        if (this.#open) this.db.exec('PRAGMA wal_autocheckpoint = 1000')
      })
    }
    this.db.exec(SCHEMA)
    this.db.prepare(`INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1')`).run()
    migrateAgents(this.db)
    migrateDashboardIndexes(this.db)
    migrateGrantors(this.db)
    migrateOutbox(this.db)
    migrateFederation(this.db)
    const p = (sql: string) => this.db.prepare(sql)
    return {
      auditHead: p('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1'),
      auditInsert: p('INSERT INTO audit(seq, time, type, fields, prev, hash, txn, agent, subject, tool, jti, decision, call) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)'),
      agentInsert: p('INSERT OR IGNORE INTO agents(did, jkt, name, owner, role, metadata, disabled, created_at, binding, expires_at) VALUES (?,?,?,?,?,?,0,?,?,?)'),
      agentGet: p('SELECT * FROM agents WHERE did = ?'),
      agentList: p('SELECT * FROM agents ORDER BY created_at, did'),
      agentDisable: p('UPDATE agents SET disabled = 1, disabled_at = ?, disabled_reason = ? WHERE did = ? AND disabled = 0'),
      agentEnable: p('UPDATE agents SET disabled = 0, disabled_at = NULL, disabled_reason = NULL WHERE did = ? AND disabled = 1 AND revoked_at IS NULL'),
      agentRevoke: p('UPDATE agents SET revoked_at = ?, revoked_reason = ?, disabled_at = CASE WHEN disabled = 1 THEN disabled_at ELSE ? END, disabled = 1 WHERE did = ? AND revoked_at IS NULL'),
      ruleInsert: p('INSERT OR IGNORE INTO federation_rules(id, rule, created_at, created_by) VALUES (?,?,?,?)'),
      ruleList: p('SELECT * FROM federation_rules ORDER BY rowid'),
      ruleDelete: p('DELETE FROM federation_rules WHERE id = ?'),
      taskExists: p('SELECT 1 AS x FROM mandates WHERE txn = ? LIMIT 1'),
      mandateInsert: p('INSERT OR IGNORE INTO mandates(jti, parent, txn, subject, holder, grantor, kind, depth, iat, exp, token_hash, max_uses, uses, claims) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0,?)'),
      tasksGrantedBy: p('SELECT txn FROM mandates WHERE grantor = ? GROUP BY txn ORDER BY MIN(rowid)'),
      mandateGet: p('SELECT * FROM mandates WHERE jti = ?'),
      mandateByHash: p('SELECT * FROM mandates WHERE token_hash = ?'),
      mandateCount: p('SELECT COUNT(*) AS n FROM mandates'),
      mandateUse: p('UPDATE mandates SET uses = uses + 1 WHERE jti = ? AND (max_uses IS NULL OR uses < max_uses)'),
      descendants: p('WITH RECURSIVE d(jti) AS (SELECT jti FROM mandates WHERE parent = ? UNION ALL SELECT m.jti FROM mandates m JOIN d ON m.parent = d.jti) SELECT jti FROM d'),
      revInsert: p('INSERT OR IGNORE INTO revocations(kind, id, at, reason, by_did) VALUES (?,?,?,?,?)'),
      revGet: p('SELECT * FROM revocations WHERE kind = ? AND id = ?'),
      revSince: p('SELECT * FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?'),
      revHead: p('SELECT COALESCE(MAX(seq), 0) AS n FROM revocations'),
      approvalInsert: p('INSERT INTO approvals(id, status, requested_by, parent, subject, txn, actor_chain, audience, tool, args_digest, arguments, reason, created_at, expires_at, used) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)'),
      approvalGet: p('SELECT * FROM approvals WHERE id = ?'),
      approvalDecide: p(`UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ? WHERE id = ? AND status = 'pending'`),
      approvalUse: p(`UPDATE approvals SET used = 1 WHERE id = ? AND status = 'approved' AND used = 0`),
      approvalExpired: p(`SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ? LIMIT ?`),
      approvalsPendingBy: p(`SELECT * FROM approvals WHERE requested_by = ? AND status = 'pending' AND expires_at > ? ORDER BY created_at LIMIT ?`),
      auditRead: p('SELECT * FROM audit WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?'),
      auditHeadVisible: p('SELECT seq, hash FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT 1'),
      begin: p('BEGIN IMMEDIATE'),
      commit: p('COMMIT'),
      rollback: p('ROLLBACK'),
      savepoint: p('SAVEPOINT op'),
      release: p('RELEASE op'),
      rollbackTo: p('ROLLBACK TO op'),
      auditIndexRead: p('SELECT seq, txn, agent, subject, tool, jti, decision, call, typeof(time) AS timeType FROM audit WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?'),
      headPut: p('INSERT INTO audit_head(id, seq, hash, time, jws) VALUES (1,?,?,?,?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, time = excluded.time, jws = excluded.jws'),
      headGet: p('SELECT seq, hash, time, jws FROM audit_head WHERE id = 1'),
      legacyCheckpoint: p('SELECT seq, hash, time, jws FROM checkpoints ORDER BY seq DESC, rowid DESC LIMIT 1'),
      outboxInsert: p(`INSERT INTO outbox(endpoint, seq, event, message_id, order_key, status, next_at, created_at) VALUES (?,?,?,?,?,'pending',?,?)`),
      keysAll: p('SELECT * FROM signing_keys ORDER BY created_at'),
      keyUpsert: p('INSERT INTO signing_keys(kid, private_jwk, created_at, retired_at) VALUES (?,?,?,?) ON CONFLICT(kid) DO UPDATE SET retired_at = excluded.retired_at'),
    }
  }

  readonly #seal = new SealState()
  /** Runs the WAL checkpoints off the event loop (a WAL file without `checkpoint: 'inline'`). */
  #checkpointer: WalCheckpointer | undefined
  #walFile = false

  /** Whether a WAL checkpoint is running on the worker right now (tests and metrics). */
  get checkpointRunning(): boolean {
    return this.#checkpointer?.running ?? false
  }
  /**
   * Where this store's WAL checkpoints run: `worker` (a worker thread), `inline` (SQLite's automatic
   * checkpoint on this connection: chosen, or the worker failed), `none` (no WAL file: in memory).
   */
  get checkpointMode(): 'worker' | 'inline' | 'none' {
    if (this.#checkpointer) return this.#checkpointer.mode
    return this.#walFile ? 'inline' : 'none'
  }
  /** The WAL file this store fsyncs after each commit (synchronous=FULL), and its descriptor once open. */
  #walPath: string | undefined
  #walFd: number | undefined
  /** Committed groups waiting for the next WAL fsync, and whether one is running. */
  #unsynced: Array<{ waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>; head: StoredCheckpoint | undefined }> = []
  #syncing = false
  #planner: OutboxPlanner | undefined
  /** The last record appended inside the open transaction (sealed when the transaction ends). */
  #last: ChainHead | undefined

  #insertAudit(rec: AuditRecord): void {
    const idx = auditIndex(rec.fields)
    const f = auditFacets(rec.type, rec.fields)
    this.#s.auditInsert!.run(rec.seq, rec.time, rec.type, JSON.stringify(rec.fields), rec.prev, rec.hash, idx.txn, idx.agent, idx.subject, f.tool, f.jti, f.decision, f.call ? 1 : 0)
  }

  #append(draft: AuditDraft): AuditRecord {
    // inside the open group (its IMMEDIATE transaction holds the write lock) the head is the record
    // this store appended last; only the group's first append reads it from the database
    let head = this.#last ?? (this.#s.auditHead!.get() as ChainHead | undefined)
    const unsealed = this.#seal.check(head, () => this.#storedHead())
    if (unsealed) {
      const marker = chainRecord(head, unsealed)
      this.#pendingFrom ??= marker.seq
      this.#insertAudit(marker)
      head = marker
    }
    const rec = chainRecord(head, draft)
    this.#insertAudit(rec)
    // notifications of this record are written in its transaction: committed together or not at all
    if (this.#planner) {
      for (const e of this.#planner(rec)) this.#s.outboxInsert!.run(e.endpoint, rec.seq, e.event, e.messageId, e.orderKey ?? null, rec.time, rec.time)
    }
    this.#pendingFrom ??= rec.seq
    this.#last = rec
    return rec
  }

  #storedHead(): StoredCheckpoint | undefined {
    // a database written before every commit was sealed has only its periodic checkpoints (the last
    // one signed when it was closed): the newest stands for the head until the first sealed write
    const r = (this.#s.headGet!.get() ?? this.#s.legacyCheckpoint!.get()) as Row | undefined
    return r && { seq: num(r.seq), hash: str(r.hash), time: num(r.time), jws: str(r.jws) }
  }

  /**
   * Group commit. Write operations arriving in the same event-loop turn share one IMMEDIATE
   * transaction, each inside its own savepoint (a refusal rolls back only its own changes). At the
   * end of the turn the transaction stores one head signed over its last audit record and commits
   * (with synchronous=FULL: one fsync for the whole group); only then do the operations resolve, so
   * nothing is answered before it is durable and signed. A crash before the commit loses the whole
   * group, none of which was answered. Audit reads never see the open group's records.
   */
  #batch: { waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> } | undefined
  /** seq of the first audit record of the open group: audit reads stop before it. */
  #pendingFrom: number | undefined

  #tx<T>(fn: () => T): Promise<T> {
    if (!this.#batch) {
      this.#s.begin!.run()
      this.#batch = { waiters: [] }
      this.#seal.begin()
      this.#last = undefined
      setImmediate(() => this.#commit())
    }
    const batch = this.#batch
    const last = this.#last
    const pendingFrom = this.#pendingFrom
    const checked = this.#seal.snapshot()
    this.#s.savepoint!.run()
    let out: T
    try {
      out = fn()
      this.#s.release!.run()
    } catch (err) {
      this.#s.rollbackTo!.run()
      this.#s.release!.run()
      this.#last = last
      this.#pendingFrom = pendingFrom
      this.#seal.restore(checked)
      throw err
    }
    return new Promise<T>((resolve, reject) => batch.waiters.push({ resolve: () => resolve(out), reject }))
  }

  /** End the open group: sign its head, commit, then answer its operations. */
  #commit(): void {
    const batch = this.#batch
    if (!batch || !this.#open) return
    this.#batch = undefined
    const last = this.#last
    this.#last = undefined
    this.#pendingFrom = undefined
    try {
      if (last) {
        const cp = this.#seal.seal(last)
        if (cp) this.#s.headPut!.run(cp.seq, cp.hash, cp.time, cp.jws)
      }
      this.#s.commit!.run()
      this.#checkpointer?.committed()
    } catch (err) {
      // a failed COMMIT may already have rolled back (`isTransaction` only exists from Node 22.16)
      try {
        this.#s.rollback!.run()
      } catch {
        // no transaction was active
      }
      this.#seal.rollback()
      for (const w of batch.waiters) w.reject(err)
      return
    }
    if (this.#walPath === undefined) {
      this.#seal.commit()
      for (const w of batch.waiters) w.resolve()
      return
    }
    // committed, not yet durable: answered (and its head published) after the next WAL fsync
    this.#unsynced.push({ waiters: batch.waiters, head: this.#seal.commit({ publish: false }) })
    this.#syncWal()
  }

  /**
   * fsync the WAL on the thread pool, then answer every group committed before it started. Groups
   * committed while it runs wait for the next one, so one fsync covers all of them.
   */
  #syncWal(): void {
    if (this.#syncing || this.#unsynced.length === 0) return
    let fd: number
    try {
      fd = this.#walFd ??= openSync(this.#walPath as string, 'r')
    } catch (err) {
      this.#failUnsynced(err)
      return
    }
    const groups = this.#unsynced
    this.#unsynced = []
    this.#syncing = true
    fsync(fd, (err) => {
      this.#syncing = false
      // closed meanwhile: close() left this descriptor to the fsync that was still using it
      if (this.#walFd === undefined) closeSync(fd)
      if (err) {
        for (const g of groups) for (const w of g.waiters) w.reject(new MandateError('STORE_UNAVAILABLE', 'the audit log could not be made durable (fsync failed)', { cause: err }))
      } else {
        for (const g of groups) {
          if (g.head) this.#seal.published(g.head)
          for (const w of g.waiters) w.resolve()
        }
      }
      this.#syncWal()
    })
  }

  #failUnsynced(err: unknown): void {
    const groups = this.#unsynced
    this.#unsynced = []
    for (const g of groups) for (const w of g.waiters) w.reject(new MandateError('STORE_UNAVAILABLE', 'the audit log could not be made durable', { cause: err }))
  }

  /** Synchronous WAL fsync for close(): every committed group is durable and answered before the file closes. */
  #syncWalNow(): void {
    if (this.#unsynced.length === 0) return
    const groups = this.#unsynced
    this.#unsynced = []
    try {
      fsyncSync(this.#walFd ??= openSync(this.#walPath as string, 'r'))
    } catch (err) {
      this.#unsynced = groups
      this.#failUnsynced(err)
      return
    }
    for (const g of groups) {
      if (g.head) this.#seal.published(g.head)
      for (const w of g.waiters) w.resolve()
    }
  }

  /** Audit reads stop before the open group's records (they are neither committed nor signed yet). */
  #visible(): number {
    return this.#pendingFrom ?? Number.MAX_SAFE_INTEGER
  }

  #revoked(q: RevocationQuery): boolean {
    const get = this.#s.revGet!
    if (get.get('task', q.txn)) return true
    for (const id of q.ids) if (get.get('mandate', id)) return true
    for (const a of q.actors) if (get.get('agent', a)) return true
    return false
  }

  async insertAgent(a: AgentRecord, audit: AuditDraft) {
    return this.#tx(() => {
      const r = this.#s.agentInsert!.run(a.did, a.jkt, a.name, a.owner ?? null, a.role, a.metadata ? JSON.stringify(a.metadata) : null, a.createdAt, a.binding ? JSON.stringify(a.binding) : null, a.expiresAt ?? null)
      if (r.changes === 0) return undefined
      return this.#append(audit)
    })
  }
  async getAgent(did: string) {
    const r = this.#s.agentGet!.get(did) as Row | undefined
    return r && agentFromRow(r)
  }
  async listAgents() {
    return (this.#s.agentList!.all() as Row[]).map(agentFromRow)
  }
  async putFederationRule(rec: StoredFederationRule, audit: AuditDraft) {
    return this.#tx(() => {
      const id = rec.rule.id
      if (this.#s.ruleInsert!.run(id, JSON.stringify(rec.rule), rec.createdAt, rec.createdBy ?? null).changes === 0) {
        throw new MandateError('INVALID_REQUEST', `a federation rule with the id ${String(id).slice(0, 64)} already exists; remove it first`)
      }
      return this.#append(audit)
    })
  }
  async listFederationRules() {
    return (this.#s.ruleList!.all() as Row[]).map(federationRuleFromRow)
  }
  async deleteFederationRule(id: string, audit: AuditDraft) {
    return this.#tx(() => {
      if (this.#s.ruleDelete!.run(id).changes === 0) return undefined
      return this.#append(audit)
    })
  }
  async disableAgent(did: string, at: number, audit: AuditDraft, reason?: string, keepAdmin?: AdminGuard) {
    return this.#tx(() => {
      // read in this write transaction: another process on the same file cannot interleave
      if (keepAdmin) assertAdminRemains((this.#s.agentList!.all() as Row[]).map(agentFromRow), new Set([did]), keepAdmin.now)
      if (this.#s.agentDisable!.run(at, reason ?? null, did).changes === 0) return undefined
      return this.#append(audit)
    })
  }
  async enableAgent(did: string, audit: AuditDraft) {
    return this.#tx(() => {
      // an agent revocation entry without the registry mark (a custom writer) still blocks enabling
      if (this.#s.revGet!.get('agent', did)) return undefined
      if (this.#s.agentEnable!.run(did).changes === 0) return undefined
      return this.#append(audit)
    })
  }

  async issueMandate(input: IssueMandateInput): Promise<IssueMandateResult> {
    const m = input.mandate
    try {
      return this.#tx(() => {
        if (input.revocation && this.#revoked(input.revocation)) throw new Abort({ ok: false, reason: 'revoked' })
        for (const jti of input.consumeUses ?? []) {
          if (this.#s.mandateUse!.run(jti).changes === 0) throw new Abort({ ok: false, reason: 'uses_exhausted', jti })
        }
        if (input.consumeApproval !== undefined && this.#s.approvalUse!.run(input.consumeApproval).changes === 0) {
          throw new Abort({ ok: false, reason: 'approval_unusable' })
        }
        const r = this.#s.mandateInsert!.run(m.jti, m.parent ?? null, m.txn, m.subject, m.holder, m.grantor ?? null, m.kind, m.depth, m.iat, m.exp, m.tokenHash, m.maxUses ?? null, JSON.stringify(m.claims))
        if (r.changes === 0) throw new Abort({ ok: false, reason: 'duplicate' })
        return { ok: true as const, audit: this.#append(input.audit) }
      })
    } catch (err) {
      if (err instanceof Abort) return err.result // the transaction was rolled back
      throw err
    }
  }
  async getMandate(jti: string) {
    const r = this.#s.mandateGet!.get(jti) as Row | undefined
    return r && mandateFromRow(r)
  }
  async getMandateByTokenHash(hash: string) {
    const r = this.#s.mandateByHash!.get(hash) as Row | undefined
    return r && mandateFromRow(r)
  }
  async countMandates() {
    return (this.#s.mandateCount!.get() as { n: number }).n
  }
  async descendants(jti: string) {
    return (this.#s.descendants!.all(jti) as Array<{ jti: string }>).map((r) => r.jti)
  }

  async revoke(entries: ReadonlyArray<{ kind: RevocationKind; id: string }>, meta: { at: number; reason?: string; by?: string }, audit: AuditDraft, grantedTask = (txn: string, grantor: string) => grantedTaskDraft(txn, grantor, meta, audit.time), keepAdmin?: AdminGuard) {
    return this.#tx(() => {
      if (keepAdmin) assertAdminRemains((this.#s.agentList!.all() as Row[]).map(agentFromRow), new Set(entries.filter((e) => e.kind === 'agent').map((e) => e.id)), keepAdmin.now)
      const added: RevocationEntry[] = []
      const add = (kind: RevocationKind, id: string): boolean => {
        if (!this.#s.revInsert!.run(kind, id, meta.at, meta.reason ?? null, meta.by ?? null).changes) return false
        added.push(revocationFromRow(this.#s.revGet!.get(kind, id) as Row))
        return true
      }
      const granted: Array<[string, string]> = []
      for (const e of entries) {
        add(e.kind, e.id)
        if (e.kind !== 'agent') continue
        // the registry reads truthfully: a revoked principal is also disabled, for good
        this.#s.agentRevoke!.run(meta.at, meta.reason ?? null, meta.at, e.id)
        // and everything it authorized stops with it: the tasks it granted, read inside this
        // transaction so a grant committed just before is included
        for (const { txn } of this.#s.tasksGrantedBy!.all(e.id) as Array<{ txn: string }>) granted.push([txn, e.id])
      }
      const rec = this.#append(audit)
      const cascade: AuditRecord[] = []
      for (const [txn, grantor] of granted) if (add('task', txn)) cascade.push(this.#append(grantedTask(txn, grantor)))
      return { added, audit: rec, cascade }
    })
  }
  async tasksGrantedBy(did: string) {
    return (this.#s.tasksGrantedBy!.all(did) as Array<{ txn: string }>).map((r) => r.txn)
  }
  async isRevoked(q: RevocationQuery) {
    return this.#revoked(q)
  }
  async hasTask(txn: string) {
    return this.#s.taskExists!.get(txn) !== undefined
  }
  async revocationsSince(afterSeq: number, limit: number) {
    return (this.#s.revSince!.all(afterSeq, limit) as Row[]).map(revocationFromRow)
  }
  async revocationHead() {
    return (this.#s.revHead!.get() as { n: number }).n
  }

  async insertApproval(a: ApprovalRecord, audit: AuditDraft) {
    return this.#tx(() => {
      this.#s.approvalInsert!.run(a.id, a.status, a.requestedBy, a.parent, a.subject, a.txn, JSON.stringify(a.actorChain), a.audience, a.tool, a.argumentsDigest, a.arguments === undefined ? null : JSON.stringify(a.arguments), a.reason, a.createdAt, a.expiresAt)
      return this.#append(audit)
    })
  }
  async getApproval(id: string) {
    const r = this.#s.approvalGet!.get(id) as Row | undefined
    return r && approvalFromRow(r)
  }
  async listApprovals(filter: { status?: ApprovalStatus; limit?: number }) {
    const limit = filter.limit ?? 1000
    const rows = filter.status === undefined
      ? this.db.prepare('SELECT * FROM approvals ORDER BY created_at LIMIT ?').all(limit)
      : this.db.prepare('SELECT * FROM approvals WHERE status = ? ORDER BY created_at LIMIT ?').all(filter.status, limit)
    return (rows as Row[]).map(approvalFromRow)
  }
  async pendingApprovalsBy(requestedBy: string, now: number, limit: number) {
    const rows = this.#s.approvalsPendingBy!.all(requestedBy, now, limit) as Row[]
    return rows.map(approvalFromRow)
  }
  async decideApproval(id: string, d: ApprovalDecision, audit: AuditDraft) {
    return this.#tx(() => {
      if (this.#s.approvalDecide!.run(d.status, d.decidedBy ?? null, d.decidedAt, d.decisionReason ?? null, id).changes === 0) return undefined
      return this.#append(audit)
    })
  }
  async expiredPending(now: number, limit: number) {
    return (this.#s.approvalExpired!.all(now, limit) as Array<{ id: string }>).map((r) => r.id)
  }

  async appendAudit(draft: AuditDraft) {
    return this.#tx(() => this.#append(draft))
  }
  async appendAuditBatch(drafts: readonly AuditDraft[]) {
    return this.#tx(() => drafts.map((d) => this.#append(d)))
  }
  sealAuditWith(sealer: AuditSealer, trusted: ChainHead | undefined): void {
    this.#seal.attach(sealer, trusted)
  }
  async readAuditIndex(afterSeq: number, limit: number) {
    return this.#s.auditIndexRead!.all(afterSeq, this.#visible(), limit) as Array<{ seq: number; txn: string | null; agent: string | null; subject: string | null; tool: string | null; jti: string | null; decision: string | null; call: number | null; timeType: string }>
  }
  async auditHead() {
    return this.#s.auditHeadVisible!.get(this.#visible()) as { seq: number; hash: string } | undefined
  }
  async readAudit(afterSeq: number, limit: number) {
    return (this.#s.auditRead!.all(afterSeq, this.#visible(), limit) as Row[]).map(auditRecordFromRow)
  }
  async queryAudit(q: AuditQuery) {
    const where: string[] = []
    const args: Array<string | number> = []
    const add = (sql: string, v: string | number | undefined) => {
      if (v === undefined) return
      where.push(sql)
      args.push(v)
    }
    add('seq > ?', q.afterSeq)
    add('seq <= ?', q.untilSeq)
    add('seq < ?', this.#pendingFrom)
    add('txn = ?', q.txn)
    add('agent = ?', q.agent)
    add('subject = ?', q.subject)
    add('type = ?', q.type)
    add('time >= ?', q.since)
    add('time < ?', q.until)
    args.push(Math.min(Math.max(1, q.limit ?? 1000), 10_000))
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`
    return (this.db.prepare(sql).all(...args) as Row[]).map(auditRecordFromRow)
  }
  async latestCheckpoint() {
    return this.#storedHead()
  }

  /** Dashboard queries are built from their filters: each shape is prepared once (bounded cache). */
  readonly #statements = new Map<string, SqliteStatement>()
  #prepared(sql: string): SqliteStatement {
    let s = this.#statements.get(sql)
    if (!s) {
      if (this.#statements.size >= 256) this.#statements.clear()
      s = this.db.prepare(sql)
      this.#statements.set(sql, s)
    }
    return s
  }

  async queryAuditPage(q: AuditPageQuery) {
    const w = new Where()
    w.add('seq < ?', q.beforeSeq)
    w.add('seq < ?', this.#pendingFrom)
    w.add('txn = ?', q.txn)
    w.add('agent = ?', q.agent)
    w.add('subject = ?', q.subject)
    w.add('tool = ?', q.tool)
    // the planner has no statistics: steer it to the most selective index. An exact key (jti, task,
    // agent, subject, tool) beats the broad facets; those are then tested row by row (unary +)
    const narrow = q.jtis !== undefined || q.txn !== undefined || q.agent !== undefined || q.subject !== undefined || q.tool !== undefined
    w.in(narrow && q.agent === undefined ? '+type' : 'type', q.types)
    w.add(narrow || q.types !== undefined ? '+decision = ?' : 'decision = ?', q.decision)
    w.in('jti', q.jtis)
    if (q.callsOnly) w.add(narrow || q.types !== undefined || q.decision !== undefined ? '+call = ?' : 'call = ?', 1)
    // unary + keeps the planner off the time index: pages walk seq order and stop at the limit
    w.add('+time >= ?', q.since)
    w.add('+time < ?', q.until)
    if (q.q !== undefined) w.search(['txn', 'agent', 'subject', 'type', 'tool', 'jti'], q.q, 'agent', q.qAgents)
    const sql = `SELECT * FROM audit ${w.sql()} ORDER BY seq DESC LIMIT ?`
    const rows = (this.#prepared(sql).all(...w.args, Math.max(1, Math.min(q.limit, 10_000))) as Row[]).map(auditRecordFromRow)
    // the query columns sit beside the hashed record: a row whose record does not say what its
    // columns say (a tampered column) is not returned as matching
    return rows.filter((r) => facetsMatch(r, q))
  }
  async countAuditSince(since: number) {
    const r = this.#prepared('SELECT COALESCE(SUM(call = 1), 0) AS calls, COALESCE(SUM(decision = \'refused\'), 0) AS refused FROM audit WHERE time >= ? AND seq < ?').get(since, this.#visible()) as { calls: number; refused: number }
    return { calls: r.calls, refused: r.refused }
  }
  async countTasks() {
    return (this.#prepared(`SELECT COUNT(*) AS n FROM mandates WHERE kind = 'root'`).get() as { n: number }).n
  }
  async queryTasks(q: TaskPageQuery): Promise<TaskRow[]> {
    const revoked = `(EXISTS (SELECT 1 FROM revocations r WHERE r.kind = 'task' AND r.id = m.txn) OR EXISTS (SELECT 1 FROM revocations r WHERE r.kind = 'mandate' AND r.id = m.jti))`
    const w = new Where()
    w.add(`m.kind = ?`, 'root')
    w.add('m.rowid < ?', q.before)
    w.add('m.subject = ?', q.subject)
    w.add('m.txn IN (SELECT txn FROM mandates WHERE holder = ?)', q.agent)
    w.add('m.iat * 1000 >= ?', q.since)
    w.add('m.iat * 1000 < ?', q.until)
    if (q.q !== undefined) w.search(['m.txn', 'm.subject', 'm.holder', `json_extract(m.claims, '$.purpose')`], q.q, 'm.holder', q.qAgents)
    const nowSec = Math.floor(q.now / 1000)
    if (q.status === 'revoked') w.raw(revoked)
    else if (q.status === 'expired') w.raw(`NOT ${revoked}`).add('m.exp <= ?', nowSec)
    else if (q.status === 'active') w.raw(`NOT ${revoked}`).add('m.exp > ?', nowSec)
    const rows = this.#prepared(`SELECT m.rowid AS cursor, m.*, ${revoked} AS revoked FROM mandates m ${w.sql()} ORDER BY m.rowid DESC LIMIT ?`).all(...w.args, Math.max(1, Math.min(q.limit, 1000))) as Row[]
    const counts = this.#prepared(`SELECT COALESCE(SUM(kind = 'call'), 0) AS calls, COUNT(*) AS n FROM mandates WHERE txn = ?`)
    return rows.map((r) => {
      const c = counts.get(str(r.txn)) as { calls: number; n: number }
      return { cursor: num(r.cursor), root: mandateFromRow(r), revoked: r.revoked === 1, mandates: c.n - c.calls, calls: c.calls }
    })
  }
  async taskMandates(txn: string, limit: number) {
    return (this.#prepared('SELECT * FROM mandates WHERE txn = ? ORDER BY rowid LIMIT ?').all(txn, limit) as Row[]).map(mandateFromRow)
  }
  async queryApprovals(q: ApprovalPageQuery) {
    const w = new Where()
    w.add('rowid < ?', q.before)
    w.add('status = ?', q.status)
    w.add('txn = ?', q.txn)
    if (q.agent !== undefined) w.raw('(requested_by = ? OR instr(actor_chain, ?) > 0)', q.agent, JSON.stringify(q.agent))
    w.add('tool = ?', q.tool)
    w.add('created_at >= ?', q.since)
    w.add('created_at < ?', q.until)
    if (q.q !== undefined) w.search(['id', 'tool', 'audience', 'subject', 'txn', 'requested_by', 'reason'], q.q, 'requested_by', q.qAgents)
    const rows = this.#prepared(`SELECT rowid AS cursor, * FROM approvals ${w.sql()} ORDER BY rowid DESC LIMIT ?`).all(...w.args, Math.max(1, Math.min(q.limit, 1000))) as Row[]
    return rows.map((r) => ({ cursor: num(r.cursor), approval: approvalFromRow(r) }))
  }

  planOutboxWith(planner: OutboxPlanner | undefined): void {
    this.#planner = planner
  }
  async outboxDue(q: { now: number; exclude: readonly number[]; limit: number }) {
    const w = new Where()
    w.raw(`o.status = 'pending'`)
    w.add('o.next_at <= ?', q.now)
    // rows of the open (uncommitted) group are not delivered: that group may still roll back
    w.add('o.seq < ?', this.#pendingFrom)
    if (q.exclude.length) w.raw(`o.id NOT IN (${q.exclude.map(() => '?').join(',')})`, ...q.exclude)
    w.raw(`NOT EXISTS (SELECT 1 FROM outbox e WHERE e.endpoint = o.endpoint AND e.order_key = o.order_key AND e.status = 'pending' AND e.id < o.id)`)
    const rows = this.db.prepare(`${OUTBOX_SELECT} ${w.sql()} ORDER BY o.id LIMIT ?`).all(...w.args, Math.max(1, Math.min(q.limit, 1000))) as Row[]
    return rows.map(outboxFromRow)
  }
  async outboxNextDue() {
    const r = this.db.prepare(`SELECT MIN(next_at) AS t FROM outbox WHERE status = 'pending' AND seq < ?`).get(this.#visible()) as { t: number | null }
    return r.t ?? undefined
  }
  async outboxUpdate(id: number, c: OutboxChange) {
    await this.#tx(() => {
      this.db.prepare(`UPDATE outbox SET status = ?, attempts = ?, next_at = ?, body = COALESCE(?, body), last_error = COALESCE(?, last_error),
        last_status = COALESCE(?, last_status), last_failure_at = COALESCE(?, last_failure_at), delivered_at = COALESCE(?, delivered_at) WHERE id = ?`)
        .run(c.status, c.attempts, c.nextAttemptAt, c.body ?? null, c.lastError ?? null, c.lastStatus ?? null, c.lastFailureAt ?? null, c.deliveredAt ?? null, id)
    })
  }
  async outboxStats(): Promise<OutboxEndpointStats[]> {
    const rows = this.db.prepare(`SELECT endpoint, COALESCE(SUM(status = 'pending'), 0) AS pending, COALESCE(SUM(status = 'failed'), 0) AS failed,
      COALESCE(SUM(status = 'delivered'), 0) AS delivered, MAX(delivered_at) AS last_success, MAX(last_failure_at) AS last_failure
      FROM outbox WHERE seq < ? GROUP BY endpoint ORDER BY endpoint`).all(this.#visible()) as Row[]
    const lastError = this.db.prepare('SELECT last_error FROM outbox WHERE endpoint = ? AND last_failure_at IS NOT NULL ORDER BY last_failure_at DESC, id DESC LIMIT 1')
    return rows.map((r) => {
      const s: OutboxEndpointStats = { endpoint: str(r.endpoint), pending: num(r.pending), failed: num(r.failed), delivered: num(r.delivered) }
      if (r.last_success !== null) s.lastSuccessAt = num(r.last_success)
      if (r.last_failure !== null) {
        s.lastFailureAt = num(r.last_failure)
        const e = lastError.get(str(r.endpoint)) as { last_error: string | null } | undefined
        if (e?.last_error) s.lastError = e.last_error
      }
      return s
    })
  }
  async outboxFailed(limit: number) {
    const rows = this.db.prepare(`${OUTBOX_SELECT} WHERE o.status = 'failed' ORDER BY o.last_failure_at DESC, o.id DESC LIMIT ?`).all(Math.max(1, Math.min(limit, 1000))) as Row[]
    return rows.map(outboxFromRow)
  }
  async outboxPrune(before: number) {
    return this.#tx(() => Number(this.db.prepare(`DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < ?`).run(before).changes))
  }

  async loadSigningKeys() {
    return (this.#s.keysAll!.all() as Row[]).map((r) => {
      let privateJwk: StoredSigningKey['privateJwk']
      try {
        privateJwk = JSON.parse(str(r.private_jwk)) as StoredSigningKey['privateJwk']
      } catch {
        // never the parser's message: it quotes the text around the error (the private key)
        throw new MandateError('STORE_ERROR', `the stored signing key ${String(r.kid).slice(0, 64)} is not valid JSON; restore the database from a backup`)
      }
      const k: StoredSigningKey = { kid: str(r.kid), privateJwk, createdAt: num(r.created_at) }
      if (r.retired_at !== null) k.retiredAt = num(r.retired_at)
      return k
    })
  }
  async saveSigningKeys(keys: readonly StoredSigningKey[]) {
    await this.#tx(() => {
      for (const k of keys) this.#s.keyUpsert!.run(k.kid, JSON.stringify(k.privateJwk), k.createdAt, k.retiredAt ?? null)
    })
  }
  /** Readiness: the database file is open and answers a query. */
  async ping(): Promise<void> {
    if (!this.#open) throw new MandateError('STORE_UNAVAILABLE', 'the SQLite database is closed')
    this.db.prepare('SELECT 1').get()
  }
  async close() {
    // an open group is committed (and answered) first, once durable
    this.#commit()
    this.#syncWalNow()
    // an fsync still running on the thread pool closes the descriptor when it is done
    if (this.#walFd !== undefined && !this.#syncing) closeSync(this.#walFd)
    this.#walFd = undefined
    if (this.#open) {
      this.#open = false
      this.db.close()
    }
    // the worker's connection closes last, so its close checkpoints the WAL into the file
    await this.#checkpointer?.close()
  }
}

/**
 * The notification outbox (src/notify): a row per (endpoint, audit record), written in the
 * transaction of its audit record. `order_key` keeps the deliveries of one approval in order.
 */
function migrateOutbox(db: SqliteDatabase): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT, endpoint TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
      message_id TEXT NOT NULL, order_key TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
      next_at INTEGER NOT NULL, created_at INTEGER NOT NULL, body TEXT, last_error TEXT, last_status INTEGER,
      last_failure_at INTEGER, delivered_at INTEGER);
    CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(status, next_at);
    CREATE INDEX IF NOT EXISTS outbox_order ON outbox(endpoint, order_key, status);
  `)
}
function outboxFromRow(r: Row): OutboxRow {
  const o: OutboxRow = {
    id: num(r.id), endpoint: str(r.endpoint), event: str(r.event), messageId: str(r.message_id), status: str(r.status) as OutboxStatus,
    attempts: num(r.attempts), nextAttemptAt: num(r.next_at), createdAt: num(r.created_at),
    record: auditRecordFromRow({ seq: r.seq, time: r.a_time, type: r.a_type, fields: r.a_fields, prev: '', hash: '' }),
  }
  if (r.order_key !== null) o.orderKey = str(r.order_key)
  if (r.body !== null) o.body = str(r.body)
  if (r.last_error !== null) o.lastError = str(r.last_error)
  if (r.last_status !== null) o.lastStatus = num(r.last_status)
  if (r.last_failure_at !== null) o.lastFailureAt = num(r.last_failure_at)
  if (r.delivered_at !== null) o.deliveredAt = num(r.delivered_at)
  return o
}
const OUTBOX_SELECT = 'SELECT o.*, a.time AS a_time, a.type AS a_type, a.fields AS a_fields FROM outbox o JOIN audit a ON a.seq = o.seq'
