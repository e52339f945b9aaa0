/**
 * The dashboard's paged JSON API (docs/authority-api.md, "Dashboard API"; types in api_types.ts).
 * Reads go to the store's indexed dashboard queries, newest first, with keyset cursors; nothing
 * reads the whole log. Session, re-admission, CSRF and same-origin checks are the caller's
 * (routes.ts); this module answers for an admitted principal.
 */
import { MandateError } from '@mandate/core'
import type { AuthorityStore, TaskRow } from '../store/store.js'
import type { AgentRecord, ApprovalRecord, AuditRecord } from '../types.js'
import type {
  AgentView, ApprovalView, AuditView, CallView, Overview, Page, SubjectIdentity, TaskDetail, TaskSummary,
} from './api_types.js'
import { AUDIT_TYPES, DECISIONS, cursor, encodeCursor, limit, oneOf, pathId, search, strictQuery, text, time } from './params.js'
import type { AuditVerification, DashboardAuthority } from './source.js'
import { Actors, agentView, approvalView, auditView, callCounts, callRows, taskTree } from './views.js'
import { approvalRevoked } from '../approvals/service.js'

type Present<S> = { [K in keyof S]-?: NonNullable<S[K]> }
type DashboardStore = Present<Pick<AuthorityStore, 'queryAuditPage' | 'countAuditSince' | 'queryTasks' | 'countTasks' | 'taskMandates' | 'queryApprovals'>> & AuthorityStore

const PAGE = ['limit', 'cursor'] as const
/** Records of a task read for its counts and tree (a larger task shows its first this many). */
const TASK_RECORDS = 10_000
const TASK_MANDATES = 5_000
/** Call-start records one calls page may scan when an outcome filter drops rows. */
const CALL_SCAN = 5_000
const CALL_RECORD_TYPES = ['exchange', 'refusal', 'approval.requested', 'call.report'] as const

/**
 * The external identity of a federated subject (`<issuer>#<sub>`: only federated grants issue a
 * subject with `#`, the task grant refuses one). Name and e-mail stay in the grant's audit record.
 */
function subjectIdentity(subject: string): { subjectIdentity?: SubjectIdentity } {
  const i = subject.indexOf('#')
  if (i <= 0) return {}
  return { subjectIdentity: { issuer: subject.slice(0, i), sub: subject.slice(i + 1) } }
}

/** The store, if it implements the dashboard queries (both built-in stores do). */
function dashboardStore(store: AuthorityStore): DashboardStore {
  const s = store as Partial<DashboardStore>
  if (!s.queryAuditPage || !s.countAuditSince || !s.queryTasks || !s.countTasks || !s.taskMandates || !s.queryApprovals) {
    throw new MandateError('STORE_UNAVAILABLE', `the ${store.kind} store does not implement the dashboard queries`)
  }
  return store as DashboardStore
}

export class DashboardApi {
  readonly #authority: DashboardAuthority
  readonly #base: string
  readonly #now: () => number
  #verified: { head: number; at: number; result: AuditVerification } | undefined
  /** The verification in flight, shared by every caller (one chain walk at a time). */
  #verifying: Promise<void> | undefined

  constructor(authority: DashboardAuthority, base: string, now: () => number) {
    this.#authority = authority
    this.#base = base
    this.#now = now
  }

  get #store(): DashboardStore {
    return dashboardStore(this.#authority.store)
  }

  async #actors(): Promise<Actors> {
    return new Actors(await this.#authority.store.listAgents())
  }

  async overview(url: string, me: AgentRecord, verify: () => Promise<AuditVerification>): Promise<Overview> {
    strictQuery(url, [])
    const store = this.#store
    await this.#authority.approvals.sweep?.()
    const since = this.#now() - 86_400_000
    const [tasks, agents, pending, last24h, head] = await Promise.all([
      store.countTasks(), store.listAgents(), store.queryApprovals({ status: 'pending', limit: 1000 }), store.countAuditSince(since), store.auditHead(),
    ])
    // verifying re-hashes the whole chain (seconds at 100 000 records): one walk at a time, shared;
    // only the first overview waits for it, later ones answer with the last result while a
    // refresh runs in the background (at most every 30 s while the log grows)
    const seq = head?.seq ?? 0
    const now = this.#now()
    const refresh = (): Promise<void> =>
      (this.#verifying ??= verify()
        .then((result) => { this.#verified = { head: seq, at: this.#now(), result } })
        .finally(() => { this.#verifying = undefined }))
    if (!this.#verified) await refresh()
    else if (this.#verified.head !== seq && now - this.#verified.at > 30_000) void refresh().catch(() => undefined)
    const verified = this.#verified
    if (!verified) throw new MandateError('INTERNAL', 'audit verification did not complete')
    return {
      issuer: this.#authority.issuer,
      me: { did: me.did, name: me.name, role: me.role },
      roles: [me.role],
      counts: { tasks, agents: agents.length, pendingApprovals: pending.length, calls24h: last24h.calls, refused24h: last24h.refused },
      audit: { ok: verified.result.ok, ...(head ? { head: head.seq } : {}) },
    }
  }

  async tasks(url: string): Promise<Page<TaskSummary>> {
    const q = strictQuery(url, ['subject', 'agent', 'status', 'since', 'until', 'q', ...PAGE])
    const store = this.#store
    const actors = await this.#actors()
    const n = limit(q)
    const term = search(q)
    const before = cursor(q, 'task')
    const subject = text(q, 'subject')
    const agent = text(q, 'agent')
    const status = oneOf(q, 'status', ['active', 'revoked', 'expired'] as const)
    const since = time(q, 'since')
    const until = time(q, 'until')
    const rows = await store.queryTasks({
      now: this.#now(), limit: n + 1,
      ...(before !== undefined ? { before } : {}), ...(subject !== undefined ? { subject } : {}), ...(agent !== undefined ? { agent } : {}),
      ...(status !== undefined ? { status } : {}), ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}),
      ...(term !== undefined ? { q: term, qAgents: actors.matching(term) } : {}),
    })
    const page = rows.slice(0, n)
    const items = await Promise.all(page.map((r) => this.#summary(store, r, actors)))
    return { items, ...(rows.length > n ? { next: encodeCursor('task', (page[page.length - 1] as TaskRow).cursor) } : {}) }
  }

  async #taskRecords(store: DashboardStore, txn: string): Promise<AuditRecord[]> {
    return (await store.queryAuditPage({ txn, types: CALL_RECORD_TYPES, limit: TASK_RECORDS })).reverse()
  }

  async #summary(store: DashboardStore, row: TaskRow, actors: Actors, records?: AuditRecord[]): Promise<TaskSummary> {
    const root = row.root
    const [recs, last, pending] = await Promise.all([
      records ?? this.#taskRecords(store, root.txn),
      store.queryAuditPage({ txn: root.txn, limit: 1 }),
      store.queryApprovals({ txn: root.txn, status: 'pending', limit: 1000 }),
    ])
    const calls = callCounts(recs, actors)
    const created = root.iat * 1000
    const purpose = root.claims.purpose
    return {
      txn: root.txn, ...(typeof purpose === 'string' ? { purpose } : {}), subject: root.subject, ...subjectIdentity(root.subject), rootAgent: actors.actor(root.holder),
      createdAt: new Date(created).toISOString(), lastActivityAt: new Date(Math.max(created, last[0]?.time ?? created)).toISOString(),
      status: row.revoked ? 'revoked' : root.exp * 1000 <= this.#now() ? 'expired' : 'active',
      counts: { mandates: row.mandates, calls: calls.calls, verified: calls.verified, refused: calls.refused, notPresented: calls.notPresented, pendingApprovals: pending.length },
    }
  }

  async task(url: string, txnParam: string | undefined): Promise<TaskDetail> {
    strictQuery(url, [])
    const txn = pathId(txnParam, 'task id')
    const store = this.#store
    const actors = await this.#actors()
    const mandates = await store.taskMandates(txn, TASK_MANDATES)
    const root = mandates.find((m) => m.kind === 'root')
    if (!root) throw new MandateError('NOT_FOUND', 'no such task')
    const [records, approvals, audit] = await Promise.all([
      this.#taskRecords(store, txn),
      store.queryApprovals({ txn, limit: 1000 }),
      store.queryAuditPage({ txn, limit: 51 }),
    ])
    const revoked = new Set<string>()
    for (const m of mandates) if (await store.isRevoked({ ids: [m.jti], txn, actors: [m.holder] })) revoked.add(m.jti)
    const rootRevoked = await store.isRevoked({ ids: [root.jti], txn, actors: [] })
    let calls = 0
    for (const m of mandates) if (m.kind === 'call') calls++
    const task = await this.#summary(store, { cursor: 0, root, revoked: rootRevoked, mandates: mandates.length - calls, calls }, actors, records)
    if (task.subjectIdentity) {
      // the name and e-mail the IdP gave stay in the grant's audit record, not in any token
      const [grant] = await store.queryAuditPage({ txn, types: ['grant'], limit: 1 })
      const f = grant?.fields.federation
      if (typeof f === 'object' && f !== null && !Array.isArray(f)) {
        if (typeof f.name === 'string') task.subjectIdentity.name = f.name
        if (typeof f.email === 'string') task.subjectIdentity.email = f.email
      }
    }
    const tree = taskTree({ mandates, records, approvals: approvals.map((a) => a.approval).reverse(), revoked, now: this.#now() }, actors)
    const page = audit.slice(0, 50)
    return { task, tree, audit: { items: page.map((r) => auditView(r, actors)), ...(audit.length > 50 ? { next: encodeCursor('audit', (page[page.length - 1] as AuditRecord).seq) } : {}) } }
  }

  async agents(url: string): Promise<Page<AgentView>> {
    const q = strictQuery(url, ['role', 'status', 'q', ...PAGE])
    const n = limit(q)
    const role = text(q, 'role')
    const status = oneOf(q, 'status', ['enabled', 'disabled', 'revoked'] as const)
    const term = search(q)?.toLowerCase()
    // the registry is small and read whole; registration order, so a new agent never shifts a page
    const after = cursor(q, 'agent') ?? 0
    const all = (await this.#authority.store.listAgents()).filter(
      (a) => (role === undefined || a.role === role) && (status === undefined || a.status === status) && (term === undefined || [a.did, a.name, a.owner ?? ''].some((v) => v.toLowerCase().includes(term))),
    )
    const page = all.slice(after, after + n)
    return { items: page.map(agentView), total: all.length, ...(after + n < all.length ? { next: encodeCursor('agent', after + n) } : {}) }
  }

  async approvals(url: string): Promise<Page<ApprovalView>> {
    const q = strictQuery(url, ['status', 'task', 'agent', 'tool', 'since', 'until', 'q', ...PAGE])
    const store = this.#store
    await this.#authority.approvals.sweep?.()
    const actors = await this.#actors()
    const n = limit(q)
    const before = cursor(q, 'approval')
    const status = oneOf(q, 'status', ['pending', 'approved', 'denied', 'expired'] as const)
    const txn = text(q, 'task')
    const agent = text(q, 'agent')
    const tool = text(q, 'tool')
    const since = time(q, 'since')
    const until = time(q, 'until')
    const term = search(q)
    const rows = await store.queryApprovals({
      limit: n + 1,
      ...(before !== undefined ? { before } : {}), ...(status !== undefined ? { status } : {}), ...(txn !== undefined ? { txn } : {}),
      ...(agent !== undefined ? { agent } : {}), ...(tool !== undefined ? { tool } : {}), ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}), ...(term !== undefined ? { q: term, qAgents: actors.matching(term) } : {}),
    })
    const page = rows.slice(0, n)
    return {
      items: await Promise.all(page.map(async (r) => approvalView(r.approval, actors, this.#base, r.approval.status === 'pending' && (await approvalRevoked(store, r.approval))))),
      ...(rows.length > n ? { next: encodeCursor('approval', (page[page.length - 1] as { cursor: number }).cursor) } : {}),
    }
  }

  async approval(url: string, idParam: string | undefined): Promise<ApprovalView> {
    strictQuery(url, [])
    const id = pathId(idParam, 'approval id')
    await this.#authority.approvals.sweep?.()
    const a = await this.#authority.store.getApproval(id)
    if (!a) throw new MandateError('NOT_FOUND', 'no such approval')
    return approvalView(a, await this.#actors(), this.#base, a.status === 'pending' && (await approvalRevoked(this.#authority.store, a)))
  }

  async calls(url: string): Promise<Page<CallView>> {
    const q = strictQuery(url, ['task', 'agent', 'subject', 'tool', 'outcome', 'since', 'until', 'q', ...PAGE])
    const store = this.#store
    const actors = await this.#actors()
    const n = limit(q)
    let before = cursor(q, 'call')
    const outcome = oneOf(q, 'outcome', ['verified', 'refused', 'not_presented', 'pending_approval'] as const)
    const txn = text(q, 'task')
    const agent = text(q, 'agent')
    const subject = text(q, 'subject')
    const tool = text(q, 'tool')
    const since = time(q, 'since')
    const until = time(q, 'until')
    const term = search(q)
    const filters = {
      callsOnly: true as const,
      ...(txn !== undefined ? { txn } : {}), ...(agent !== undefined ? { agent } : {}), ...(subject !== undefined ? { subject } : {}),
      ...(tool !== undefined ? { tool } : {}), ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}),
      ...(term !== undefined ? { q: term, qAgents: actors.matching(term) } : {}),
    }
    // an outcome is known only after joining reports: read call starts in batches until the page
    // is full or CALL_SCAN starts were read; `next` resumes after the last start read
    const items: CallView[] = []
    let scanned = 0
    let next: number | undefined
    for (;;) {
      const batch = outcome === undefined ? n + 1 : Math.min(500, Math.max(4 * n, 50))
      const starts = await store.queryAuditPage({ ...filters, ...(before !== undefined ? { beforeSeq: before } : {}), limit: batch })
      const more = starts.length === batch
      scanned += starts.length
      const jtis = [...new Set(starts.flatMap((r) => (r.type === 'exchange' && typeof r.fields.jti === 'string' ? [r.fields.jti] : [])))]
      const reports = jtis.length ? await store.queryAuditPage({ types: ['call.report'], jtis, limit: 10_000 }) : []
      const approvals = new Map<string, ApprovalRecord>()
      for (const r of starts) {
        if (r.type !== 'approval.requested' || typeof r.fields.approval !== 'string') continue
        const a = await store.getApproval(r.fields.approval)
        if (a) approvals.set(a.id, a)
      }
      const rows = callRows([...starts].reverse(), reports, actors, approvals).reverse()
      let full = false
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i] as { seq: number; view: CallView }
        if (outcome !== undefined && row.view.outcome !== outcome) continue
        items.push(row.view)
        if (items.length === n) {
          full = true
          // a next page exists only if a start remains after this one
          if (more || starts.some((r) => r.seq < row.seq)) next = row.seq
          break
        }
      }
      if (full || !more) break
      before = (starts[starts.length - 1] as AuditRecord).seq
      if (scanned >= CALL_SCAN) {
        next = before
        break
      }
    }
    return { items, ...(next !== undefined ? { next: encodeCursor('call', next) } : {}) }
  }

  async audit(url: string): Promise<Page<AuditView>> {
    const q = strictQuery(url, ['task', 'agent', 'subject', 'tool', 'type', 'decision', 'since', 'until', 'q', ...PAGE])
    const store = this.#store
    const actors = await this.#actors()
    const n = limit(q)
    const before = cursor(q, 'audit')
    const type = oneOf(q, 'type', AUDIT_TYPES)
    const decision = oneOf(q, 'decision', DECISIONS)
    const txn = text(q, 'task')
    const agent = text(q, 'agent')
    const subject = text(q, 'subject')
    const tool = text(q, 'tool')
    const since = time(q, 'since')
    const until = time(q, 'until')
    const term = search(q)
    const rows = await store.queryAuditPage({
      limit: n + 1,
      ...(before !== undefined ? { beforeSeq: before } : {}), ...(type !== undefined ? { types: [type] } : {}), ...(decision !== undefined ? { decision } : {}),
      ...(txn !== undefined ? { txn } : {}), ...(agent !== undefined ? { agent } : {}), ...(subject !== undefined ? { subject } : {}),
      ...(tool !== undefined ? { tool } : {}), ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}),
      ...(term !== undefined ? { q: term, qAgents: actors.matching(term) } : {}),
    })
    const page = rows.slice(0, n)
    return { items: page.map((r) => auditView(r, actors)), ...(rows.length > n ? { next: encodeCursor('audit', (page[page.length - 1] as AuditRecord).seq) } : {}) }
  }
}
