import { MandateError, type RevocationQuery } from '@mandate/core'
import { auditIndex, chainRecord } from '../audit/hash.js'
import { SealState, type AuditSealer, type ChainHead } from '../audit/seal.js'
import type {
  AgentRecord, ApprovalRecord, ApprovalStatus, AuditDraft, AuditQuery, AuditRecord, MandateRecord,
  RevocationEntry, RevocationKind, StoredCheckpoint, StoredSigningKey,
} from '../types.js'
import type { StoredFederationRule } from '../federation/types.js'
import { assertAdminRemains, grantedTaskDraft, type AdminGuard, type ApprovalDecision, type ApprovalPageQuery, type AuditPageQuery, type AuthorityStore, type IssueMandateInput, type IssueMandateResult, type TaskPageQuery, type TaskRow } from './store.js'
import { AuditIndexes } from './memory_indexes.js'
import type { OutboxChange, OutboxEndpointStats, OutboxPlanner, OutboxRow } from './store.js'

/**
 * Copy a stored record so no caller can reach the store's own objects. Records are JSON data
 * (plain objects, arrays, strings, numbers, booleans, null, undefined members), which a plain
 * recursive copy handles several times faster than structuredClone; anything else falls back to it.
 */
function clone<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length)
    for (let i = 0; i < v.length; i++) out[i] = clone(v[i] as unknown)
    return out as T
  }
  const proto = Object.getPrototypeOf(v) as unknown
  if (proto !== Object.prototype && proto !== null) return structuredClone(v)
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) {
    const x = clone((v as Record<string, unknown>)[k])
    // stored data can hold a "__proto__" member (call arguments): copy it as a member, not a prototype
    if (k === '__proto__') Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true })
    else out[k] = x
  }
  return out as T
}

/** In-memory store for tests and ephemeral use. Single process; every method is atomic. */
export class MemoryStore implements AuthorityStore {
  readonly kind = 'memory'
  readonly #agents = new Map<string, AgentRecord>()
  readonly #mandates = new Map<string, MandateRecord>()
  readonly #byHash = new Map<string, string>()
  readonly #children = new Map<string, string[]>()
  readonly #tasks = new Set<string>()
  readonly #revocations: RevocationEntry[] = []
  readonly #revoked = new Set<string>()
  readonly #approvals = new Map<string, ApprovalRecord>()
  /** Federation rules by id; a Map keeps insertion (creation) order. */
  readonly #rules = new Map<string, StoredFederationRule>()
  readonly #audit: AuditRecord[] = []
  /** Secondary indexes of the audit log, tasks and approvals (dashboard queries). */
  readonly #idx = new AuditIndexes()
  #head: StoredCheckpoint | undefined
  readonly #seal = new SealState()
  #keys: StoredSigningKey[] = []
  #planner: OutboxPlanner | undefined
  readonly #outbox: OutboxRow[] = []
  #outboxIds = 0

  /**
   * Group sealing. The appends of one event-loop turn form one group under one signed head: the
   * chain check runs at the group's first append, and the head is signed once, over the group's last
   * record, at the end of the turn (setImmediate) — or earlier, the moment anything reads the signed
   * head (`latestCheckpoint`, hence `verify` and the audit-head endpoints) or the store closes. So no
   * reader ever sees a record that no signed head covers, while a burst of exchanges pays one
   * signature instead of one each. (This store holds nothing across a crash, so there is no unsigned
   * tail a crash could leave behind; the durable stores sign inside their commit instead.)
   */
  #groupOpen = false
  #flushScheduled = false

  /** Append drafts as one atomic step (the memory store's "transaction"), sealed with its group. */
  #appendAll(drafts: readonly AuditDraft[]): AuditRecord[] {
    if (!this.#groupOpen) {
      this.#seal.begin()
      this.#groupOpen = true
    }
    const checked = this.#seal.snapshot()
    const start = this.#audit.length
    const out: AuditRecord[] = []
    try {
      for (const draft of drafts) {
        const unsealed = this.#seal.check(this.#audit[this.#audit.length - 1], () => this.#head && clone(this.#head))
        if (unsealed) this.#audit.push(chainRecord(this.#audit[this.#audit.length - 1], unsealed))
        // the log keeps its own copy of the fields; the caller gets its record around the fields it passed
        const rec = chainRecord(this.#audit[this.#audit.length - 1], { time: draft.time, type: draft.type, fields: clone(draft.fields) })
        this.#audit.push(rec)
        out.push({ ...rec, fields: draft.fields })
      }
    } catch (err) {
      this.#audit.length = start
      this.#seal.restore(checked)
      throw err
    }
    if (out.length && !this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(() => {
        this.#flushScheduled = false
        try {
          this.#flush()
        } catch {
          // the group stays open: the next read of the signed head retries (and throws), as does the next turn
        }
      })
    }
    // indexed at once, so a rolled-back append leaves no index entries behind
    for (let i = start; i < this.#audit.length; i++) this.#idx.addAudit(i, this.#audit[i] as AuditRecord)
    // notifications of these records, in the same atomic step (src/notify)
    if (this.#planner) {
      for (let i = start; i < this.#audit.length; i++) {
        const rec = this.#audit[i] as AuditRecord
        for (const e of this.#planner(rec)) {
          this.#outbox.push({ ...e, id: ++this.#outboxIds, record: rec, status: 'pending', attempts: 0, nextAttemptAt: rec.time, createdAt: rec.time })
        }
      }
    }
    return out
  }

  /** Sign the open group's head (over the last record), once; a failure leaves the group open. */
  #flush(): void {
    if (!this.#groupOpen) return
    const last = this.#audit[this.#audit.length - 1]
    if (last && (this.#head === undefined || this.#head.seq !== last.seq || this.#head.hash !== last.hash)) {
      let cp: StoredCheckpoint | undefined
      try {
        cp = this.#seal.seal(last)
      } catch (err) {
        this.#seal.rollback()
        throw err
      }
      if (cp) this.#head = cp
    }
    this.#groupOpen = false
    this.#seal.commit()
  }

  #append(draft: AuditDraft): AuditRecord {
    return this.#appendAll([draft])[0] as AuditRecord
  }

  async insertAgent(agent: AgentRecord, audit: AuditDraft) {
    if (this.#agents.has(agent.did)) return undefined
    this.#agents.set(agent.did, clone(agent))
    return this.#append(audit)
  }
  async getAgent(did: string) {
    const a = this.#agents.get(did)
    return a && clone(a)
  }
  async listAgents() {
    return [...this.#agents.values()].map(clone)
  }
  async disableAgent(did: string, at: number, audit: AuditDraft, reason?: string, keepAdmin?: AdminGuard) {
    const a = this.#agents.get(did)
    if (!a || a.disabled) return undefined
    if (keepAdmin) assertAdminRemains([...this.#agents.values()], new Set([did]), keepAdmin.now)
    a.disabled = true
    a.status = 'disabled'
    a.disabledAt = at
    if (reason !== undefined) a.disabledReason = reason
    return this.#append(audit)
  }
  async enableAgent(did: string, audit: AuditDraft) {
    const a = this.#agents.get(did)
    if (!a || !a.disabled || a.revokedAt !== undefined || this.#revoked.has(`agent:${did}`)) return undefined
    a.disabled = false
    a.status = 'enabled'
    delete a.disabledAt
    delete a.disabledReason
    return this.#append(audit)
  }

  async putFederationRule(rec: StoredFederationRule, audit: AuditDraft) {
    if (this.#rules.has(rec.rule.id)) throw new MandateError('INVALID_REQUEST', `a federation rule with the id ${rec.rule.id.slice(0, 64)} already exists; remove it first`)
    const out = this.#append(audit)
    this.#rules.set(rec.rule.id, clone(rec))
    return out
  }
  async listFederationRules() {
    return [...this.#rules.values()].map(clone)
  }
  async deleteFederationRule(id: string, audit: AuditDraft) {
    if (!this.#rules.has(id)) return undefined
    const out = this.#append(audit)
    this.#rules.delete(id)
    return out
  }

  #isRevoked(q: RevocationQuery): boolean {
    if (this.#revoked.has(`task:${q.txn}`)) return true
    for (const id of q.ids) if (this.#revoked.has(`mandate:${id}`)) return true
    for (const a of q.actors) if (this.#revoked.has(`agent:${a}`)) return true
    return false
  }

  async issueMandate(input: IssueMandateInput): Promise<IssueMandateResult> {
    const m = input.mandate
    if (this.#mandates.has(m.jti)) return { ok: false, reason: 'duplicate' }
    if (input.revocation && this.#isRevoked(input.revocation)) return { ok: false, reason: 'revoked' }
    for (const jti of input.consumeUses ?? []) {
      const r = this.#mandates.get(jti)
      if (!r || (r.maxUses !== undefined && r.uses >= r.maxUses)) return { ok: false, reason: 'uses_exhausted', jti }
    }
    if (input.consumeApproval !== undefined) {
      const a = this.#approvals.get(input.consumeApproval)
      if (!a || a.status !== 'approved' || a.used) return { ok: false, reason: 'approval_unusable' }
      a.used = true
    }
    for (const jti of input.consumeUses ?? []) (this.#mandates.get(jti) as MandateRecord).uses++
    this.#mandates.set(m.jti, clone(m))
    this.#byHash.set(m.tokenHash, m.jti)
    this.#tasks.add(m.txn)
    this.#idx.addMandate(m)
    if (m.parent !== undefined) {
      const list = this.#children.get(m.parent) ?? []
      list.push(m.jti)
      this.#children.set(m.parent, list)
    }
    return { ok: true, audit: this.#append(input.audit) }
  }
  async getMandate(jti: string) {
    const m = this.#mandates.get(jti)
    return m && clone(m)
  }
  async getMandateByTokenHash(hash: string) {
    const jti = this.#byHash.get(hash)
    return jti === undefined ? undefined : this.getMandate(jti)
  }
  async countMandates() {
    return this.#mandates.size
  }
  async descendants(jti: string) {
    const out: string[] = []
    const stack = [jti]
    while (stack.length) {
      for (const c of this.#children.get(stack.pop() as string) ?? []) {
        out.push(c)
        stack.push(c)
      }
    }
    return out
  }

  async revoke(entries: ReadonlyArray<{ kind: RevocationKind; id: string }>, meta: { at: number; reason?: string; by?: string }, audit: AuditDraft, grantedTask = (txn: string, grantor: string) => grantedTaskDraft(txn, grantor, meta, audit.time), keepAdmin?: AdminGuard) {
    if (keepAdmin) assertAdminRemains([...this.#agents.values()], new Set(entries.filter((e) => e.kind === 'agent').map((e) => e.id)), keepAdmin.now)
    const added: RevocationEntry[] = []
    const add = (kind: RevocationKind, id: string): boolean => {
      const key = `${kind}:${id}`
      if (this.#revoked.has(key)) return false
      this.#revoked.add(key)
      const entry: RevocationEntry = { seq: this.#revocations.length + 1, kind, id, at: meta.at }
      if (meta.reason !== undefined) entry.reason = meta.reason
      if (meta.by !== undefined) entry.by = meta.by
      this.#revocations.push(entry)
      added.push(clone(entry))
      return true
    }
    const granted: Array<[string, string]> = []
    for (const e of entries) {
      // the tasks an agent granted stop with it (even when the agent itself was revoked before)
      if (e.kind === 'agent') for (const txn of this.#grantedBy(e.id)) granted.push([txn, e.id])
      if (!add(e.kind, e.id)) continue
      const agent = e.kind === 'agent' ? this.#agents.get(e.id) : undefined
      if (agent && agent.revokedAt === undefined) {
        // the registry reads truthfully: a revoked principal is also disabled, for good
        agent.status = 'revoked'
        agent.revokedAt = meta.at
        if (meta.reason !== undefined) agent.revokedReason = meta.reason
        if (!agent.disabled) {
          agent.disabled = true
          agent.disabledAt = meta.at
        }
      }
    }
    const drafts = granted.flatMap(([txn, grantor]) => (add('task', txn) ? [grantedTask(txn, grantor)] : []))
    const [rec, ...cascade] = this.#appendAll([audit, ...drafts])
    return { added, audit: rec as AuditRecord, cascade }
  }
  #grantedBy(did: string): string[] {
    const out = new Set<string>()
    for (const m of this.#mandates.values()) if (m.grantor === did) out.add(m.txn)
    return [...out]
  }
  async tasksGrantedBy(did: string) {
    return this.#grantedBy(did)
  }
  async isRevoked(q: RevocationQuery) {
    return this.#isRevoked(q)
  }
  async hasTask(txn: string) {
    return this.#tasks.has(txn)
  }
  async revocationsSince(afterSeq: number, limit: number) {
    return this.#revocations.slice(afterSeq, afterSeq + limit).map(clone)
  }
  async revocationHead() {
    return this.#revocations.length
  }

  async insertApproval(approval: ApprovalRecord, audit: AuditDraft) {
    if (!this.#approvals.has(approval.id)) this.#idx.addApproval(approval.id)
    this.#approvals.set(approval.id, clone(approval))
    return this.#append(audit)
  }
  async getApproval(id: string) {
    const a = this.#approvals.get(id)
    return a && clone(a)
  }
  async listApprovals(filter: { status?: ApprovalStatus; limit?: number }) {
    return [...this.#approvals.values()].filter((a) => filter.status === undefined || a.status === filter.status).slice(0, filter.limit ?? 1000).map(clone)
  }
  async pendingApprovalsBy(requestedBy: string, now: number, limit: number) {
    const out: ApprovalRecord[] = []
    for (const a of this.#approvals.values()) {
      if (out.length >= limit) break
      if (a.status === 'pending' && a.requestedBy === requestedBy && a.expiresAt > now) out.push(clone(a))
    }
    return out
  }
  async decideApproval(id: string, d: ApprovalDecision, audit: AuditDraft) {
    const a = this.#approvals.get(id)
    if (!a || a.status !== 'pending') return undefined
    a.status = d.status
    a.decidedAt = d.decidedAt
    if (d.decidedBy !== undefined) a.decidedBy = d.decidedBy
    if (d.decisionReason !== undefined) a.decisionReason = d.decisionReason
    return this.#append(audit)
  }
  async expiredPending(now: number, limit: number) {
    return [...this.#approvals.values()].filter((a) => a.status === 'pending' && a.expiresAt <= now).slice(0, limit).map((a) => a.id)
  }

  async appendAudit(draft: AuditDraft) {
    return this.#append(draft)
  }
  async appendAuditBatch(drafts: readonly AuditDraft[]) {
    return this.#appendAll(drafts)
  }
  sealAuditWith(sealer: AuditSealer, trusted: ChainHead | undefined): void {
    // records appended before the sealer was attached are not signed by it: close their group first
    this.#flush()
    this.#seal.attach(sealer, trusted)
  }
  async auditHead() {
    const last = this.#audit[this.#audit.length - 1]
    return last && { seq: last.seq, hash: last.hash }
  }
  async readAudit(afterSeq: number, limit: number) {
    return this.#audit.filter((r) => r.seq > afterSeq).slice(0, limit).map(clone)
  }
  async queryAudit(q: AuditQuery) {
    const out: AuditRecord[] = []
    for (const r of this.#audit) {
      const idx = auditIndex(r.fields)
      if (q.afterSeq !== undefined && r.seq <= q.afterSeq) continue
      if (q.untilSeq !== undefined && r.seq > q.untilSeq) break
      if (q.txn !== undefined && idx.txn !== q.txn) continue
      if (q.agent !== undefined && idx.agent !== q.agent) continue
      if (q.subject !== undefined && idx.subject !== q.subject) continue
      if (q.type !== undefined && r.type !== q.type) continue
      if (q.since !== undefined && r.time < q.since) continue
      if (q.until !== undefined && r.time >= q.until) continue
      out.push(clone(r))
      if (out.length >= (q.limit ?? 1000)) break
    }
    return out
  }
  async latestCheckpoint() {
    // a reader of the signed head sees one covering every record appended so far
    this.#flush()
    return this.#head && clone(this.#head)
  }

  async queryAuditPage(q: AuditPageQuery) {
    return this.#idx.auditPage(this.#audit, q).map(clone)
  }
  async countAuditSince(since: number) {
    return this.#idx.countSince(this.#audit, since)
  }
  async countTasks() {
    return this.#idx.roots.length
  }
  async queryTasks(q: TaskPageQuery): Promise<TaskRow[]> {
    return this.#idx.tasks(q, {
      mandate: (jti) => this.#mandates.get(jti),
      revoked: (kind, id) => this.#revoked.has(`${kind}:${id}`),
    }).map((r) => ({ ...r, root: clone(r.root) }))
  }
  async taskMandates(txn: string, limit: number) {
    const out: MandateRecord[] = []
    for (const jti of this.#idx.taskJtis(txn)) {
      if (out.length >= limit) break
      const m = this.#mandates.get(jti)
      if (m) out.push(clone(m))
    }
    return out
  }
  async queryApprovals(q: ApprovalPageQuery) {
    return this.#idx.approvals(q, (id) => this.#approvals.get(id)).map((r) => ({ cursor: r.cursor, approval: clone(r.approval) }))
  }

  planOutboxWith(planner: OutboxPlanner | undefined): void {
    this.#planner = planner
  }
  async outboxDue(q: { now: number; exclude: readonly number[]; limit: number }) {
    const out: OutboxRow[] = []
    const blocked = new Set<string>()
    for (const r of this.#outbox) {
      if (out.length >= q.limit) break
      if (r.status !== 'pending') continue
      const key = r.orderKey === undefined ? undefined : `${r.endpoint}\n${r.orderKey}`
      // an earlier pending row of the same endpoint and key goes first
      if (key !== undefined && blocked.has(key)) continue
      if (key !== undefined) blocked.add(key)
      if (r.nextAttemptAt > q.now || q.exclude.includes(r.id)) continue
      out.push(clone(r))
    }
    return out
  }
  async outboxNextDue() {
    let t: number | undefined
    for (const r of this.#outbox) if (r.status === 'pending' && (t === undefined || r.nextAttemptAt < t)) t = r.nextAttemptAt
    return t
  }
  async outboxUpdate(id: number, c: OutboxChange) {
    const r = this.#outbox.find((x) => x.id === id)
    if (!r) return
    for (const [k, v] of Object.entries(c)) if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = v
  }
  async outboxStats() {
    const by = new Map<string, OutboxEndpointStats>()
    for (const r of this.#outbox) {
      let s = by.get(r.endpoint)
      if (!s) by.set(r.endpoint, (s = { endpoint: r.endpoint, pending: 0, failed: 0, delivered: 0 }))
      s[r.status]++
      if (r.deliveredAt !== undefined && (s.lastSuccessAt === undefined || r.deliveredAt > s.lastSuccessAt)) s.lastSuccessAt = r.deliveredAt
      if (r.lastFailureAt !== undefined && (s.lastFailureAt === undefined || r.lastFailureAt >= s.lastFailureAt)) {
        s.lastFailureAt = r.lastFailureAt
        if (r.lastError !== undefined) s.lastError = r.lastError
      }
    }
    return [...by.values()].sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1))
  }
  async outboxFailed(limit: number) {
    return this.#outbox.filter((r) => r.status === 'failed').sort((a, b) => (b.lastFailureAt ?? 0) - (a.lastFailureAt ?? 0) || b.id - a.id).slice(0, limit).map(clone)
  }
  async outboxPrune(before: number) {
    let n = 0
    for (let i = this.#outbox.length - 1; i >= 0; i--) {
      const r = this.#outbox[i] as OutboxRow
      if (r.status === 'delivered' && (r.deliveredAt ?? 0) < before) {
        this.#outbox.splice(i, 1)
        n++
      }
    }
    return n
  }

  async loadSigningKeys() {
    return this.#keys.map(clone)
  }
  async saveSigningKeys(keys: readonly StoredSigningKey[]) {
    this.#keys = keys.map(clone)
  }
  /** Readiness: an in-process store is always reachable. */
  async ping(): Promise<void> {}
  async close() {
    this.#flush()
  }
}
