/**
 * The dashboard API's views (api_types.ts) of store records: actors by registered name, one-line
 * audit descriptions, approvals with their full actor chain, call outcomes (from `callViews`, so
 * every view says the same about a credential), and a task's delegation tree with node states.
 * Every string that leaves here has been through `redact`.
 */
import { actorChain as chainOf, audienceList } from '@mandate/core'
import type { AgentRecord, ApprovalRecord, AuditRecord, MandateRecord } from '../types.js'
import type { Actor, AgentView, ApprovalView, AuditView, CallOutcome, CallView, TreeNode, TreeNodeState } from './api_types.js'
import { approvalArgumentsView, callViews, redact, reportedByGuard, type DashboardCall } from './source.js'
import { auditFacets } from '../store/audit_facets.js'
import { escapeUnsafeDisplay } from '../observability/display_text.js'

const iso = (ms: number): string => new Date(ms).toISOString()
const s = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])
// redacted, and the characters a viewer could be fooled by shown as escapes (records written before
// their fields were checked, or by another writer, may hold them)
const clean = (v: string): string => escapeUnsafeDisplay(redact(v) as string, true)

/** Names principals from one registry read (per request). */
export class Actors {
  readonly #byDid: Map<string, AgentRecord>
  constructor(readonly agents: readonly AgentRecord[]) {
    this.#byDid = new Map(agents.map((a) => [a.did, a]))
  }
  get(did: string): AgentRecord | undefined {
    return this.#byDid.get(did)
  }
  actor(did: string): Actor {
    const a = this.#byDid.get(did)
    return a ? { did, name: a.name, role: a.role } : { did }
  }
  name(did: string | undefined): string {
    if (did === undefined) return 'someone'
    return this.#byDid.get(did)?.name ?? did
  }
  /** dids whose registered name contains `q` (case-insensitive), at most 200. */
  matching(q: string): string[] {
    const needle = q.toLowerCase()
    return this.agents.filter((a) => a.name.toLowerCase().includes(needle)).slice(0, 200).map((a) => a.did)
  }
}

export function agentView(a: AgentRecord): AgentView {
  const since = a.revokedAt ?? (a.disabled ? a.disabledAt : undefined)
  const reason = a.status === 'revoked' ? a.revokedReason : a.disabled ? a.disabledReason : undefined
  return {
    did: a.did, name: a.name, role: a.role, ...(a.owner !== undefined ? { owner: a.owner } : {}), status: a.status, createdAt: iso(a.createdAt),
    ...(since !== undefined ? { since: iso(since) } : {}), ...(reason !== undefined ? { reason: clean(reason) } : {}),
    ...(a.binding !== undefined ? { binding: bindingView(a.binding) } : {}),
    ...(a.expiresAt !== undefined ? { expiresAt: iso(a.expiresAt) } : {}),
  }
}

/** The binding as shown: every string cleaned (it comes from a foreign token's claims). */
function bindingView(b: NonNullable<AgentRecord['binding']>): NonNullable<AgentView['binding']> {
  const out: NonNullable<AgentView['binding']> = { iss: clean(b.iss), sub: clean(b.sub), rule: clean(b.rule) }
  if (b.claims !== undefined) out.claims = Object.fromEntries(Object.entries(b.claims).slice(0, 16).map(([k, v]) => [clean(k), clean(v)]))
  return out
}

export function approvalView(a: ApprovalRecord, actors: Actors, base: string, revoked = false): ApprovalView {
  return {
    ...(revoked ? { revoked: true } : {}),
    id: a.id, status: a.status, tool: a.tool, audience: a.audience, argumentsDigest: a.argumentsDigest,
    ...(a.arguments !== undefined ? approvalArgumentsView(a.arguments) : {}),
    reason: clean(a.reason), requestedBy: actors.actor(a.requestedBy),
    actorChain: (a.actorChain.length ? a.actorChain : [a.requestedBy]).map((d) => actors.actor(d)),
    subject: a.subject, txn: a.txn, createdAt: iso(a.createdAt), expiresAt: iso(a.expiresAt),
    ...(a.decidedBy !== undefined ? { decidedBy: actors.actor(a.decidedBy) } : {}),
    ...(a.decisionReason !== undefined ? { decisionReason: clean(a.decisionReason) } : {}),
    link: `${base}/approvals/${encodeURIComponent(a.id)}`,
  }
}

/** One line saying what the record records, with registered names. */
export function describe(r: AuditRecord, actors: Actors): string {
  const x = r.fields
  const who = actors.name(s(x.agent))
  const why = s(x.reason) ? `: ${s(x.reason)}` : ''
  switch (r.type) {
    case 'grant':
      return `task granted to ${who} for ${s(x.subject) ?? '?'} by ${actors.name(s(x.grantor))}${s(x.purpose) ? ` (${s(x.purpose)})` : ''}`
    case 'exchange':
      if (x.operation === 'audience') return `audience credential for ${strings(x.audiences)[0] ?? '?'} issued to ${who}`
      return s(x.tool) !== undefined ? `call credential for ${s(x.tool)} issued to ${actors.name(s(x.recipient) ?? s(x.agent))}` : `mandate delegated by ${who} to ${actors.name(s(x.recipient))}`
    case 'refusal':
      return `refused ${s(x.endpoint) ?? s(x.operation) ?? 'request'}${s(x.tool) ? ` for ${s(x.tool)}` : ''} of ${who}: ${s(x.code) ?? 'refused'}`
    case 'call.report': {
      const hops = Array.isArray(x.offline_hops) ? x.offline_hops.length : 0
      return `${s(x.tool) ?? 'call'} ${x.decision === 'refused' ? 'refused' : 'allowed'}, reported by ${s(x.reporter) ? actors.name(s(x.reporter)) : "a guard in the Authority's process"}${s(x.error) ? ` (${s(x.error)})` : ''}${hops ? ` (offline chain of ${hops} hop${hops > 1 ? 's' : ''})` : ''}`
    }
    case 'approval.requested':
      return `approval asked by ${who} for ${s(x.tool) ?? '?'}${why}`
    case 'approval.approved':
    case 'approval.denied':
      return `approval for ${s(x.tool) ?? '?'} ${r.type === 'approval.approved' ? 'approved' : 'denied'} by ${actors.name(s(x.approver))}${why}`
    case 'approval.expired':
      return `approval ${s(x.approval) ?? ''} expired`
    case 'revocation':
      return `${s(x.target) ?? 'target'} ${s(x.target) === 'agent' ? who : s(x.jti) ?? s(x.txn) ?? ''} revoked${s(x.by) ? ` by ${actors.name(s(x.by))}` : ''}${why}`
    case 'agent.registered':
      return `${who} registered as ${s(x.role) ?? 'agent'}`
    case 'agent.disabled':
    case 'agent.enabled':
      return `${who} ${r.type === 'agent.disabled' ? 'disabled' : 'enabled'}${s(x.by) ? ` by ${actors.name(s(x.by))}` : ''}${why}`
    case 'key.rotated':
      return 'signing key rotated'
    case 'audit.unsealed':
      return 'the stored log differed from the head last signed'
    case 'federation.rule.added':
    case 'federation.rule.removed':
      return `federation rule ${s(x.rule) ?? '?'}${s(x.issuer) ? ` (${s(x.issuer)})` : ''} ${r.type === 'federation.rule.added' ? 'added' : 'removed'}${s(x.by) ? ` by ${actors.name(s(x.by))}` : ''}`
    default:
      return r.type
  }
}

export function auditView(r: AuditRecord, actors: Actors): AuditView {
  const f = auditFacets(r.type, r.fields)
  const code = s(r.fields.code) ?? s(r.fields.error)
  return {
    seq: r.seq, at: iso(r.time), type: r.type,
    ...(f.decision !== null ? { decision: f.decision } : {}),
    ...(f.txn !== null ? { txn: f.txn } : {}),
    ...(f.agent !== null ? { agent: actors.actor(f.agent) } : {}),
    ...(f.subject !== null ? { subject: f.subject } : {}),
    ...(f.tool !== null ? { tool: f.tool } : {}),
    ...(code !== undefined ? { code: clean(code) } : {}),
    description: clean(describe(r, actors)),
  }
}

const OUTCOME: Record<DashboardCall['status'], CallOutcome> = {
  issued: 'not_presented', verified: 'verified', refused: 'refused', reported: 'not_presented', approval_required: 'pending_approval',
}

/**
 * Calls of the given call-start records, joined (by callViews) with the reports naming them.
 * `approvals` gives the current state of asked approvals: an approved one is shown by the
 * credential it became, a denied or expired one as refused.
 */
export function callRows(starts: readonly AuditRecord[], reports: readonly AuditRecord[], actors: Actors, approvals: ReadonlyMap<string, ApprovalRecord>): Array<{ seq: number; view: CallView }> {
  const startBySeq = new Map(starts.map((r) => [r.seq, r]))
  const reportedAt = new Map<string, number>()
  for (const r of reports) {
    const jti = s(r.fields.jti)
    if (jti !== undefined) reportedAt.set(jti, Math.max(reportedAt.get(jti) ?? 0, r.time))
  }
  const all = [...starts, ...reports].sort((a, b) => a.seq - b.seq)
  const out: Array<{ seq: number; view: CallView }> = []
  for (const row of callViews(all, actors.agents)) {
    const start = startBySeq.get(row.seq)
    if (!start) continue
    const x = start.fields
    let outcome = OUTCOME[row.status]
    let outcomeBy: Actor | undefined = row.status === 'verified' || row.status === 'refused' ? (row.by ? actors.actor(row.by.did) : undefined) : undefined
    let code = row.code
    if (start.type === 'approval.requested') {
      const a = approvals.get(s(x.approval) ?? '')
      if (a?.status === 'approved') continue // the credential it authorised is its own row
      if (a?.status === 'denied' || a?.status === 'expired') {
        outcome = 'refused'
        code = a.status === 'denied' ? 'APPROVAL_DENIED' : 'APPROVAL_EXPIRED'
        outcomeBy = a.decidedBy ? actors.actor(a.decidedBy) : undefined
      }
    }
    const agent = s(x.agent) ?? row.actors[row.actors.length - 1]
    const id = start.type === 'approval.requested' ? `approval:${s(x.approval) ?? start.seq}` : start.type === 'refusal' ? `seq:${start.seq}` : (row.jti ?? `seq:${start.seq}`)
    const at = row.jti !== undefined && start.type === 'exchange' ? reportedAt.get(row.jti) : undefined
    out.push({ seq: start.seq, view: {
      id, txn: s(x.txn) ?? '', tool: row.tool ?? '', audience: s(x.audience) ?? strings(x.audiences)[0] ?? '',
      agent: agent !== undefined ? actors.actor(agent) : { did: '' },
      actorChain: row.actors.map((d) => actors.actor(d)), outcome,
      ...(outcomeBy ? { outcomeBy } : {}), ...(code !== undefined ? { code } : {}),
      issuedAt: iso(start.time), ...(at !== undefined && outcome !== 'not_presented' ? { reportedAt: iso(at) } : {}),
    } })
  }
  return out
}

/** Counts of a task's calls (TaskSummary.counts without mandates and approvals). */
export function callCounts(records: readonly AuditRecord[], actors: Actors): { calls: number; verified: number; refused: number; notPresented: number } {
  let calls = 0
  let verified = 0
  let refused = 0
  let notPresented = 0
  for (const row of callViews(records, actors.agents)) {
    if (row.status === 'approval_required') continue
    calls++
    if (row.status === 'verified') verified++
    else if (row.status === 'refused') refused++
    else notPresented++
  }
  return { calls, verified, refused, notPresented }
}

/**
 * Holder-signed offline hops, which the Authority never minted: from the guards' call reports
 * (`offline_hops`, validated when recorded), each under the node it narrows. A hop reported again
 * (every call over one chain reports it) is one node; a call hop takes the outcome of its report.
 */
function offlineHops(input: TreeInput, nodes: Map<string, TreeNode>, attach: (parent: string | undefined, node: TreeNode) => void, actors: Actors): void {
  for (const r of input.records) {
    const x = r.fields
    const list = x.offline_hops
    if (r.type !== 'call.report' || !Array.isArray(list)) continue
    const reportedBy = s(x.reporter) !== undefined ? actors.actor(s(x.reporter) as string) : undefined
    for (const h of list) {
      if (typeof h !== 'object' || h === null || Array.isArray(h)) continue
      const jti = s(h.jti)
      const holder = s(h.holder)
      const kind = h.kind === 'delegation' || h.kind === 'audience' || h.kind === 'call' ? h.kind : undefined
      if (jti === undefined || holder === undefined || kind === undefined || nodes.has(jti)) continue
      const parentId = s(h.parent)
      const parent = parentId !== undefined ? nodes.get(parentId) : undefined
      const exp = typeof h.exp === 'number' ? h.exp : 0
      const node: TreeNode = {
        id: jti, kind: kind === 'call' ? 'call' : 'mandate', offline: { kind, ...(reportedBy ? { reportedBy } : {}) }, holder: actors.actor(holder),
        actorChain: parent ? (kind === 'delegation' ? [...parent.actorChain, actors.actor(holder)] : parent.actorChain) : [actors.actor(holder)],
        audiences: kind === 'delegation' && parent ? parent.audiences : s(x.audience) !== undefined ? [s(x.audience) as string] : [],
        // a revoked ancestor kills the hop (revocation cascades to what the Authority never saw)
        state: input.revoked.has(jti) || parent?.state === 'revoked' ? 'revoked' : exp * 1000 <= input.now ? 'expired' : 'issued',
        issuedAt: iso((typeof h.iat === 'number' ? h.iat : 0) * 1000), expiresAt: iso(exp * 1000), children: [],
      }
      if (kind === 'call') {
        node.tool = strings(h.tools)[0] ?? s(x.tool) ?? ''
        if (jti === s(x.jti) && s(x.args) !== undefined) node.argumentsDigest = s(x.args) as string
        // an agent's account of its own offline call is not a guard's verification
        const byGuard = reportedByGuard(s(x.reporter), reportedBy?.role, strings(x.actors))
        node.state = !byGuard ? 'not_presented' : x.decision === 'refused' ? 'refused' : 'verified'
        if (reportedBy && byGuard) node.stateBy = reportedBy
        if (s(x.error) !== undefined) node.code = s(x.error) as string
      }
      nodes.set(jti, node)
      attach(parentId, node)
    }
  }
}

export interface TreeInput {
  mandates: readonly MandateRecord[]
  /** The task's call starts and reports, ascending. */
  records: readonly AuditRecord[]
  approvals: readonly ApprovalRecord[]
  /** jti → revoked (the mandate, an ancestor via cascade, the task, or its holder). */
  revoked: ReadonlySet<string>
  now: number
}

/** The delegation tree of one task: mandates, their call credentials, refused calls and approvals. */
export function taskTree(input: TreeInput, actors: Actors): TreeNode[] {
  const calls = new Map<string, DashboardCall>()
  for (const row of callViews(input.records, actors.agents)) if (row.jti !== undefined && row.status !== 'approval_required' && row.status !== 'refused') calls.set(row.jti, row)
  // a guard's refusal of a credential names the credential; the Authority's refusal names the parent
  for (const row of callViews(input.records, actors.agents)) if (row.jti !== undefined && row.status === 'refused' && row.by !== undefined) calls.set(row.jti, row)
  const approvalById = new Map(input.approvals.map((a) => [a.id, a]))
  const nodes = new Map<string, TreeNode>()
  const roots: TreeNode[] = []
  const attach = (parent: string | undefined, node: TreeNode) => {
    const p = parent === undefined ? undefined : nodes.get(parent)
    if (p) p.children.push(node)
    else roots.push(node)
  }
  for (const m of input.mandates) {
    const chain = chainOf(m.claims.act)
    const node: TreeNode = {
      id: m.jti, kind: m.kind === 'call' ? 'call' : 'mandate', holder: actors.actor(m.holder), actorChain: chain.map((d) => actors.actor(d)),
      audiences: audienceList(m.claims.aud), state: 'issued', issuedAt: iso(m.iat * 1000), expiresAt: iso(m.exp * 1000), children: [],
    }
    if (m.claims.credential === 'audience') node.credential = 'audience'
    if (m.claims.call) {
      node.tool = m.claims.call.tool
      node.argumentsDigest = m.claims.call.args
    }
    const revoked = input.revoked.has(m.jti)
    const expired = m.exp * 1000 <= input.now
    if (m.kind === 'call') {
      const row = calls.get(m.jti)
      let state: TreeNodeState = row?.status === 'verified' ? 'verified' : row?.status === 'refused' ? 'refused' : 'not_presented'
      if (state === 'not_presented' && revoked) state = 'revoked'
      node.state = state
      if (row?.by && (state === 'verified' || state === 'refused')) node.stateBy = actors.actor(row.by.did)
      if (row?.code !== undefined) node.code = row.code
      const approvalId = m.claims.approval?.id
      const a = approvalId !== undefined ? approvalById.get(approvalId) : undefined
      if (a) node.approval = { id: a.id, status: a.status, ...(a.decidedBy ? { decidedBy: actors.actor(a.decidedBy) } : {}), ...(a.decisionReason ? { reason: clean(a.decisionReason) } : {}) }
    } else {
      node.state = revoked ? 'revoked' : expired ? 'expired' : 'issued'
    }
    nodes.set(m.jti, node)
    attach(m.parent, node)
  }
  offlineHops(input, nodes, attach, actors)
  // calls the Authority refused (no credential exists): under the mandate they were asked from
  for (const r of input.records) {
    if (r.type !== 'refusal' || !auditFacets(r.type, r.fields).call) continue
    const x = r.fields
    const agent = s(x.agent)
    const node: TreeNode = {
      id: `seq:${r.seq}`, kind: 'call', holder: agent ? actors.actor(agent) : { did: '' }, actorChain: (strings(x.actors).length ? strings(x.actors) : agent ? [agent] : []).map((d) => actors.actor(d)),
      audiences: s(x.audience) ? [s(x.audience) as string] : [], state: 'refused', issuedAt: iso(r.time), expiresAt: iso(r.time), children: [],
      ...(s(x.tool) ? { tool: s(x.tool) as string } : {}), ...(s(x.args) ? { argumentsDigest: s(x.args) as string } : {}), ...(s(x.code) ? { code: s(x.code) as string } : {}),
    }
    attach(s(x.parent), node)
  }
  // approvals not (yet) turned into a credential: pending, approved but unused, denied, expired
  for (const a of input.approvals) {
    if (a.status === 'approved' && a.used) continue
    const state: TreeNodeState = a.status === 'pending' ? 'pending_approval' : a.status
    const node: TreeNode = {
      id: a.id, kind: 'call', holder: actors.actor(a.requestedBy), actorChain: (a.actorChain.length ? a.actorChain : [a.requestedBy]).map((d) => actors.actor(d)),
      audiences: [a.audience], tool: a.tool, argumentsDigest: a.argumentsDigest, state,
      ...(a.decidedBy ? { stateBy: actors.actor(a.decidedBy) } : {}),
      approval: { id: a.id, status: a.status, ...(a.decidedBy ? { decidedBy: actors.actor(a.decidedBy) } : {}), ...(a.decisionReason ? { reason: clean(a.decisionReason) } : {}) },
      issuedAt: iso(a.createdAt), expiresAt: iso(a.expiresAt), children: [],
    }
    attach(a.parent, node)
  }
  return roots
}
