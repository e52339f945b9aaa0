/**
 * Secondary indexes of the memory store for the dashboard's queries: posting lists (ascending
 * positions in the log) per task, agent, subject, type, tool, credential id and for call starts; the
 * task roots in creation order; approvals in creation order. A page walks the shortest posting list
 * that applies, newest first, from the cursor, and stops at `limit`: no scan of the whole log for a
 * selective filter, and a bounded walk otherwise.
 */
import type { ApprovalRecord, AuditRecord, MandateRecord, RevocationKind } from '../types.js'
import { auditFacets, type AuditFacets } from './audit_facets.js'
import type { ApprovalPageQuery, AuditPageQuery, TaskPageQuery, TaskRow } from './store.js'

type Postings = Map<string, number[]>

function post(map: Postings, key: string | null, i: number): void {
  if (key === null) return
  const list = map.get(key)
  if (list) list.push(i)
  else map.set(key, [i])
}

/** Index of the last element of ascending `list` that is below `bound` (-1 when none). */
function lastBelow(list: readonly number[], bound: number): number {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((list[mid] as number) < bound) lo = mid + 1
    else hi = mid
  }
  return lo - 1
}

const has = (v: string | null, q: string): boolean => v !== null && v.toLowerCase().includes(q)

export class AuditIndexes {
  readonly #facets: AuditFacets[] = []
  readonly #txn: Postings = new Map()
  readonly #agent: Postings = new Map()
  readonly #subject: Postings = new Map()
  readonly #type: Postings = new Map()
  readonly #tool: Postings = new Map()
  readonly #jti: Postings = new Map()
  readonly #calls: number[] = []
  /** jti of every root mandate, in creation order (cursor = position + 1). */
  readonly roots: string[] = []
  readonly #taskJtis = new Map<string, string[]>()
  readonly #holderTxns = new Map<string, Set<string>>()
  readonly #approvalOrder: string[] = []

  addAudit(i: number, r: AuditRecord): void {
    const f = auditFacets(r.type, r.fields)
    this.#facets[i] = f
    post(this.#txn, f.txn, i)
    post(this.#agent, f.agent, i)
    post(this.#subject, f.subject, i)
    post(this.#type, r.type, i)
    post(this.#tool, f.tool, i)
    post(this.#jti, f.jti, i)
    if (f.call) this.#calls.push(i)
  }

  addMandate(m: MandateRecord): void {
    if (m.kind === 'root') this.roots.push(m.jti)
    const list = this.#taskJtis.get(m.txn)
    if (list) list.push(m.jti)
    else this.#taskJtis.set(m.txn, [m.jti])
    let txns = this.#holderTxns.get(m.holder)
    if (!txns) this.#holderTxns.set(m.holder, (txns = new Set()))
    txns.add(m.txn)
  }

  addApproval(id: string): void {
    this.#approvalOrder.push(id)
  }

  taskJtis(txn: string): readonly string[] {
    return this.#taskJtis.get(txn) ?? []
  }

  /** One page of records, newest first. */
  auditPage(log: readonly AuditRecord[], q: AuditPageQuery): AuditRecord[] {
    const bound = q.beforeSeq === undefined ? log.length : Math.min(log.length, Math.max(0, q.beforeSeq - 1))
    // candidate lists: every exact filter that has a posting list narrows; walk the shortest
    const lists: number[][] = []
    const pick = (map: Postings, key: string | undefined) => {
      if (key !== undefined) lists.push(map.get(key) ?? [])
    }
    pick(this.#txn, q.txn)
    pick(this.#agent, q.agent)
    pick(this.#subject, q.subject)
    pick(this.#tool, q.tool)
    if (q.types?.length === 1) pick(this.#type, q.types[0])
    if (q.callsOnly) lists.push(this.#calls)
    if (q.jtis) {
      const merged: number[] = []
      for (const j of new Set(q.jtis)) merged.push(...(this.#jti.get(j) ?? []))
      lists.push(merged.sort((a, b) => a - b))
    }
    let shortest: number[] | undefined
    for (const l of lists) if (!shortest || l.length < shortest.length) shortest = l
    const types = q.types ? new Set<string>(q.types) : undefined
    const jtis = q.jtis ? new Set(q.jtis) : undefined
    const needle = q.q?.toLowerCase()
    const qAgents = q.qAgents ? new Set(q.qAgents) : undefined
    const out: AuditRecord[] = []
    const limit = Math.max(1, Math.min(q.limit, 10_000))
    const test = (i: number): boolean => {
      const f = this.#facets[i]
      const r = log[i]
      if (!f || !r) return false
      if (q.txn !== undefined && f.txn !== q.txn) return false
      if (q.agent !== undefined && f.agent !== q.agent) return false
      if (q.subject !== undefined && f.subject !== q.subject) return false
      if (q.tool !== undefined && f.tool !== q.tool) return false
      if (types && !types.has(r.type)) return false
      if (q.decision !== undefined && f.decision !== q.decision) return false
      if (jtis && (f.jti === null || !jtis.has(f.jti))) return false
      if (q.callsOnly && !f.call) return false
      if (q.since !== undefined && r.time < q.since) return false
      if (q.until !== undefined && r.time >= q.until) return false
      if (needle !== undefined) {
        const hit = has(f.txn, needle) || has(f.agent, needle) || has(f.subject, needle) || has(r.type, needle) || has(f.tool, needle) || has(f.jti, needle) || (f.agent !== null && qAgents?.has(f.agent) === true)
        if (!hit) return false
      }
      return true
    }
    if (shortest) {
      for (let k = lastBelow(shortest, bound); k >= 0 && out.length < limit; k--) {
        const i = shortest[k] as number
        if (test(i)) out.push(log[i] as AuditRecord)
      }
    } else {
      for (let i = bound - 1; i >= 0 && out.length < limit; i--) if (test(i)) out.push(log[i] as AuditRecord)
    }
    return out
  }

  countSince(log: readonly AuditRecord[], since: number): { calls: number; refused: number } {
    let calls = 0
    let refused = 0
    for (let i = log.length - 1; i >= 0; i--) {
      const r = log[i] as AuditRecord
      if (r.time < since) continue
      const f = this.#facets[i]
      if (f?.call) calls++
      if (f?.decision === 'refused') refused++
    }
    return { calls, refused }
  }

  tasks(q: TaskPageQuery, read: { mandate(jti: string): MandateRecord | undefined; revoked(kind: RevocationKind, id: string): boolean }): TaskRow[] {
    const out: TaskRow[] = []
    const start = q.before === undefined ? this.roots.length : Math.min(this.roots.length, Math.max(0, q.before - 1))
    const holderTxns = q.agent === undefined ? undefined : (this.#holderTxns.get(q.agent) ?? new Set<string>())
    const needle = q.q?.toLowerCase()
    const qAgents = q.qAgents ? new Set(q.qAgents) : undefined
    const nowSec = Math.floor(q.now / 1000)
    for (let k = start - 1; k >= 0 && out.length < q.limit; k--) {
      const root = read.mandate(this.roots[k] as string)
      if (!root) continue
      if (q.subject !== undefined && root.subject !== q.subject) continue
      if (holderTxns && !holderTxns.has(root.txn)) continue
      if (q.since !== undefined && root.iat * 1000 < q.since) continue
      if (q.until !== undefined && root.iat * 1000 >= q.until) continue
      if (needle !== undefined) {
        const purpose = typeof root.claims.purpose === 'string' ? root.claims.purpose : null
        if (!(has(root.txn, needle) || has(root.subject, needle) || has(purpose, needle) || has(root.holder, needle) || qAgents?.has(root.holder))) continue
      }
      const revoked = read.revoked('task', root.txn) || read.revoked('mandate', root.jti)
      if (q.status !== undefined) {
        const status = revoked ? 'revoked' : root.exp <= nowSec ? 'expired' : 'active'
        if (status !== q.status) continue
      }
      let mandates = 0
      let calls = 0
      for (const jti of this.#taskJtis.get(root.txn) ?? []) {
        if (read.mandate(jti)?.kind === 'call') calls++
        else mandates++
      }
      out.push({ cursor: k + 1, root, revoked, mandates, calls })
    }
    return out
  }

  approvals(q: ApprovalPageQuery, get: (id: string) => ApprovalRecord | undefined): Array<{ cursor: number; approval: ApprovalRecord }> {
    const out: Array<{ cursor: number; approval: ApprovalRecord }> = []
    const start = q.before === undefined ? this.#approvalOrder.length : Math.min(this.#approvalOrder.length, Math.max(0, q.before - 1))
    const needle = q.q?.toLowerCase()
    const qAgents = q.qAgents ? new Set(q.qAgents) : undefined
    for (let k = start - 1; k >= 0 && out.length < q.limit; k--) {
      const a = get(this.#approvalOrder[k] as string)
      if (!a) continue
      if (q.status !== undefined && a.status !== q.status) continue
      if (q.txn !== undefined && a.txn !== q.txn) continue
      if (q.agent !== undefined && a.requestedBy !== q.agent && !a.actorChain.includes(q.agent)) continue
      if (q.tool !== undefined && a.tool !== q.tool) continue
      if (q.since !== undefined && a.createdAt < q.since) continue
      if (q.until !== undefined && a.createdAt >= q.until) continue
      if (needle !== undefined) {
        const hit = [a.id, a.tool, a.audience, a.subject, a.txn, a.requestedBy, a.reason].some((v) => has(v, needle)) || qAgents?.has(a.requestedBy) === true
        if (!hit) continue
      }
      out.push({ cursor: k + 1, approval: a })
    }
    return out
  }
}
