/**
 * SQLite store (better-sqlite3): one file, WAL journal, every state change plus its audit record in
 * one IMMEDIATE transaction, together with a head of the audit chain signed over that record. The
 * writes of one event-loop turn share that transaction (group commit, each in its own savepoint):
 * one signature and one commit for the group, and no operation resolves before the group commits.
 *
 * Durability: `synchronous=FULL` (the default here) makes SQLite fsync the WAL on every commit, so a
 * request answered 200 survives a process kill AND a power loss. `NORMAL` in WAL mode survives a
 * process crash (SIGKILL) but may lose the last commits on power loss; it is offered for
 * throughput-sensitive deployments that accept that.
 */
import { closeSync, openSync } from 'node:fs'
import Database from 'better-sqlite3'
import type { RevocationQuery } from '@mandate/core'
import { auditIndex, chainRecord } from '../audit/hash.js'
import { SealState, type AuditSealer, type ChainHead } from '../audit/seal.js'
import type {
  AgentRecord, ApprovalRecord, ApprovalStatus, AuditDraft, AuditQuery, AuditRecord, MandateRecord,
  RevocationEntry, RevocationKind, Role, StoredCheckpoint, StoredSigningKey,
} from '../types.js'
import type { ApprovalDecision, AuthorityStore, IssueMandateInput, IssueMandateResult } from './store.js'

export interface SqliteStoreOptions {
  /** `FULL` (default): durable across power loss. `NORMAL`: durable across process crashes only. */
  synchronous?: 'FULL' | 'NORMAL'
  /** ms to wait for a lock held by another connection. Default 5000. */
  busyTimeoutMs?: number
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
  return a
}

/**
 * Agent columns added after schema 1 (databases created before them get them on open), and the
 * registry marks of agents revoked before revocation marked the registry.
 */
function migrateAgents(db: Database.Database): void {
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
function mandateFromRow(r: Row): MandateRecord {
  const m: MandateRecord = {
    jti: str(r.jti), txn: str(r.txn), subject: str(r.subject), holder: str(r.holder), kind: str(r.kind) as MandateRecord['kind'],
    depth: num(r.depth), iat: num(r.iat), exp: num(r.exp), tokenHash: str(r.token_hash), uses: num(r.uses), claims: JSON.parse(str(r.claims)) as MandateRecord['claims'],
  }
  if (r.parent !== null) m.parent = str(r.parent)
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
function auditFromRow(r: Row): AuditRecord {
  let fields: AuditRecord['fields']
  try {
    fields = JSON.parse(str(r.fields)) as AuditRecord['fields']
  } catch {
    // an unreadable record is reported by verification (its hash cannot match), not thrown
    fields = { unreadable: String(r.fields).slice(0, 64) }
  }
  return { seq: num(r.seq), time: num(r.time), type: str(r.type) as AuditRecord['type'], fields, prev: str(r.prev), hash: str(r.hash) }
}
function revocationFromRow(r: Row): RevocationEntry {
  const e: RevocationEntry = { seq: num(r.seq), kind: str(r.kind) as RevocationKind, id: str(r.id), at: num(r.at) }
  if (r.reason !== null) e.reason = str(r.reason)
  if (r.by_did !== null) e.by = str(r.by_did)
  return e
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

/**
 * The database holds the Authority's signing keys: create it readable by its owner only (SQLite
 * gives its -wal and -shm files the same mode). An existing file keeps the mode its owner chose.
 */
function createPrivateFile(path: string): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return
  try {
    closeSync(openSync(path, 'wx', 0o600))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
}

export class SqliteStore implements AuthorityStore {
  readonly kind = 'sqlite'
  readonly db: Database.Database
  readonly #s: Record<string, Database.Statement>

  constructor(path: string, options: SqliteStoreOptions = {}) {
    createPrivateFile(path)
    this.db = new Database(path)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma(`synchronous = ${options.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`)
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`)
    this.db.exec(SCHEMA)
    this.db.prepare(`INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1')`).run()
    migrateAgents(this.db)
    const p = (sql: string) => this.db.prepare(sql)
    this.#s = {
      auditHead: p('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1'),
      auditInsert: p('INSERT INTO audit(seq, time, type, fields, prev, hash, txn, agent, subject) VALUES (?,?,?,?,?,?,?,?,?)'),
      agentInsert: p('INSERT OR IGNORE INTO agents(did, jkt, name, owner, role, metadata, disabled, created_at) VALUES (?,?,?,?,?,?,0,?)'),
      agentGet: p('SELECT * FROM agents WHERE did = ?'),
      agentList: p('SELECT * FROM agents ORDER BY created_at, did'),
      agentDisable: p('UPDATE agents SET disabled = 1, disabled_at = ?, disabled_reason = ? WHERE did = ? AND disabled = 0'),
      agentEnable: p('UPDATE agents SET disabled = 0, disabled_at = NULL, disabled_reason = NULL WHERE did = ? AND disabled = 1 AND revoked_at IS NULL'),
      agentRevoke: p('UPDATE agents SET revoked_at = ?, revoked_reason = ?, disabled_at = CASE WHEN disabled = 1 THEN disabled_at ELSE ? END, disabled = 1 WHERE did = ? AND revoked_at IS NULL'),
      taskExists: p('SELECT 1 AS x FROM mandates WHERE txn = ? LIMIT 1'),
      mandateInsert: p('INSERT OR IGNORE INTO mandates(jti, parent, txn, subject, holder, kind, depth, iat, exp, token_hash, max_uses, uses, claims) VALUES (?,?,?,?,?,?,?,?,?,?,?,0,?)'),
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
      auditRead: p('SELECT * FROM audit WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?'),
      auditHeadVisible: p('SELECT seq, hash FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT 1'),
      begin: p('BEGIN IMMEDIATE'),
      commit: p('COMMIT'),
      rollback: p('ROLLBACK'),
      savepoint: p('SAVEPOINT op'),
      release: p('RELEASE op'),
      rollbackTo: p('ROLLBACK TO op'),
      auditIndexRead: p('SELECT seq, txn, agent, subject FROM audit WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?'),
      headPut: p('INSERT INTO audit_head(id, seq, hash, time, jws) VALUES (1,?,?,?,?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, time = excluded.time, jws = excluded.jws'),
      headGet: p('SELECT seq, hash, time, jws FROM audit_head WHERE id = 1'),
      legacyCheckpoint: p('SELECT seq, hash, time, jws FROM checkpoints ORDER BY seq DESC, rowid DESC LIMIT 1'),
      keysAll: p('SELECT * FROM signing_keys ORDER BY created_at'),
      keyUpsert: p('INSERT INTO signing_keys(kid, private_jwk, created_at, retired_at) VALUES (?,?,?,?) ON CONFLICT(kid) DO UPDATE SET retired_at = excluded.retired_at'),
    }
  }

  readonly #seal = new SealState()
  /** The last record appended inside the open transaction (sealed when the transaction ends). */
  #last: ChainHead | undefined

  #insertAudit(rec: AuditRecord): void {
    const idx = auditIndex(rec.fields)
    this.#s.auditInsert!.run(rec.seq, rec.time, rec.type, JSON.stringify(rec.fields), rec.prev, rec.hash, idx.txn, idx.agent, idx.subject)
  }

  #append(draft: AuditDraft): AuditRecord {
    let head = this.#s.auditHead!.get() as ChainHead | undefined
    const unsealed = this.#seal.check(head, () => this.#storedHead())
    if (unsealed) {
      const marker = chainRecord(head, unsealed)
      this.#pendingFrom ??= marker.seq
      this.#insertAudit(marker)
      head = marker
    }
    const rec = chainRecord(head, draft)
    this.#insertAudit(rec)
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
    if (!batch || !this.db.open) return
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
    } catch (err) {
      if (this.db.inTransaction) this.#s.rollback!.run()
      this.#seal.rollback()
      for (const w of batch.waiters) w.reject(err)
      return
    }
    this.#seal.commit()
    for (const w of batch.waiters) w.resolve()
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
      const r = this.#s.agentInsert!.run(a.did, a.jkt, a.name, a.owner ?? null, a.role, a.metadata ? JSON.stringify(a.metadata) : null, a.createdAt)
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
  async disableAgent(did: string, at: number, audit: AuditDraft, reason?: string) {
    return this.#tx(() => {
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
        const r = this.#s.mandateInsert!.run(m.jti, m.parent ?? null, m.txn, m.subject, m.holder, m.kind, m.depth, m.iat, m.exp, m.tokenHash, m.maxUses ?? null, JSON.stringify(m.claims))
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

  async revoke(entries: ReadonlyArray<{ kind: RevocationKind; id: string }>, meta: { at: number; reason?: string; by?: string }, audit: AuditDraft) {
    return this.#tx(() => {
      const added: RevocationEntry[] = []
      for (const e of entries) {
        const r = this.#s.revInsert!.run(e.kind, e.id, meta.at, meta.reason ?? null, meta.by ?? null)
        if (r.changes) added.push(revocationFromRow(this.#s.revGet!.get(e.kind, e.id) as Row))
        // the registry reads truthfully: a revoked principal is also disabled, for good
        if (e.kind === 'agent') this.#s.agentRevoke!.run(meta.at, meta.reason ?? null, meta.at, e.id)
      }
      return { added, audit: this.#append(audit) }
    })
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
    return this.#s.auditIndexRead!.all(afterSeq, this.#visible(), limit) as Array<{ seq: number; txn: string | null; agent: string | null; subject: string | null }>
  }
  async auditHead() {
    return this.#s.auditHeadVisible!.get(this.#visible()) as { seq: number; hash: string } | undefined
  }
  async readAudit(afterSeq: number, limit: number) {
    return (this.#s.auditRead!.all(afterSeq, this.#visible(), limit) as Row[]).map(auditFromRow)
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
    return (this.db.prepare(sql).all(...args) as Row[]).map(auditFromRow)
  }
  async latestCheckpoint() {
    return this.#storedHead()
  }

  async loadSigningKeys() {
    return (this.#s.keysAll!.all() as Row[]).map((r) => {
      const k: StoredSigningKey = { kid: str(r.kid), privateJwk: JSON.parse(str(r.private_jwk)) as StoredSigningKey['privateJwk'], createdAt: num(r.created_at) }
      if (r.retired_at !== null) k.retiredAt = num(r.retired_at)
      return k
    })
  }
  async saveSigningKeys(keys: readonly StoredSigningKey[]) {
    await this.#tx(() => {
      for (const k of keys) this.#s.keyUpsert!.run(k.kid, JSON.stringify(k.privateJwk), k.createdAt, k.retiredAt ?? null)
    })
  }
  async close() {
    // an open group is committed (and answered) first
    this.#commit()
    if (this.db.open) this.db.close()
  }
}
