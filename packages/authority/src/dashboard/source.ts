/**
 * What the dashboard needs from an Authority (a structural subset of `Authority`), and the
 * redaction applied to everything it sends to a browser.
 */
import type { ApprovalView } from '../approvals/service.js'
import type { RevocationResult, RevocationTarget } from '../revocation/revoke.js'
import type { AuthorityStore } from '../store/store.js'
import type { AgentRecord, ApprovalStatus, AuditQuery, AuditRecord } from '../types.js'

export type AuditVerification = { ok: true; count: number; head?: unknown } | { ok: false; brokenAt: number; reason: string }

export interface DashboardAuthority {
  readonly issuer: string
  /** Read directly for the paged, indexed dashboard queries and for re-admitting the session's principal. */
  readonly store: AuthorityStore
  listAgents(): Promise<AgentRecord[]>
  /** Revoke a mandate, task or agent (the dashboard passes the session's did as `by`, and the reason). */
  revoke(target: RevocationTarget, meta: { by?: string; reason?: string }): Promise<RevocationResult>
  disableAgent(did: string, meta: { by?: string; reason?: string }): Promise<AgentRecord>
  enableAgent(did: string, meta: { by?: string; reason?: string }): Promise<AgentRecord>
  approvals: {
    list(filter?: { status?: ApprovalStatus; limit?: number }): Promise<ApprovalView[]>
    /** Expire overdue approvals now. */
    sweep?(): Promise<number>
    approve(id: string, decision: { approver: string; reason?: string }): Promise<unknown>
    deny(id: string, decision: { approver: string; reason?: string }): Promise<unknown>
  }
  audit: {
    query(query: AuditQuery): Promise<AuditRecord[]>
    verify(): Promise<AuditVerification>
  }
  /** Subscribe to appended audit records; returns the unsubscribe function. */
  on(event: 'event', listener: (record: AuditRecord) => void): () => void
  /**
   * Hear that another instance sharing the store committed audit records up to `seq` (undefined:
   * events may have been missed); the live feed then re-reads the log from the store. Optional: an
   * Authority on a store of one process has none.
   */
  onRemoteAudit?(listener: (seq: number | undefined) => void): () => void
  /** Authenticate a client assertion (`Authorization: MandateAssertion …`); throws INVALID_CLIENT. */
  authenticate?(assertion: string, endpoint?: string): Promise<AgentRecord>
}

// a compact JWS or JWT by its header: base64url JSON ("eyJ…"), three segments — not any dotted
// name (a host name such as a.b.c with long labels is shown)
const JWT_LIKE = /^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$/
// any member whose name sounds like a credential, in any case (client_secret, refresh_token, apiKey, Authorization…)
const SECRET_NAME = /token$|secret|assertion|^proof$|^dpop|password|passwd|^authorization$|private|api[_-]?key|^d$/i
const SECRET_KEYS = { has: (k: string): boolean => SECRET_NAME.test(k) }

/**
 * Defence in depth: audit records never hold tokens, but the dashboard still strips anything that
 * looks like a compact JWS or sits under a secret-sounding key before it leaves the process.
 */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 12) return '[…]'
  if (typeof value === 'string') return JWT_LIKE.test(value) ? '[redacted]' : value.length > 2000 ? `${value.slice(0, 2000)}…` : value
  if (Array.isArray(value)) return value.slice(0, 200).map((v) => redact(v, depth + 1))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.has(k) ? '[redacted]' : redact(v, depth + 1)
    return out
  }
  return value
}


/**
 * A call's arguments for the approver: in full — an approval approves exactly these arguments, so
 * nothing is cut short (the argument limits already bound them) and nothing is hidden because of
 * its name (the agent chooses names: `refund_to_token: "acct-of-mallory"` would otherwise be
 * approved unseen). Only a compact JWS, which is never something to approve by reading, is replaced
 * by a marker saying so and how long it is, and named in `hidden` (JSON pointers); members whose
 * name sounds like a secret are named in `secretNamed`, so the approver is told that a secret is
 * being passed (often the sign of one being exfiltrated).
 */
export function approvalArguments(value: unknown): { value: unknown; hidden: string[]; secretNamed: string[] } {
  const hidden: string[] = []
  const secretNamed: string[] = []
  const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1')
  const walk = (v: unknown, path: string, depth: number): unknown => {
    if (depth > 64) {
      hidden.push(path)
      return '[not shown: nested too deep]'
    }
    if (typeof v === 'string') {
      if (!signedToken(v)) return v
      hidden.push(path)
      return `[redacted: a signed token, ${v.length} characters]`
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}/${i}`, depth + 1))
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {}
      for (const [k, x] of Object.entries(v)) {
        const at = `${path}/${esc(k)}`
        if (SECRET_KEYS.has(k) && secretNamed.length < 200) secretNamed.push(at)
        // an own data member even for "__proto__"
        Object.defineProperty(out, k, { value: walk(x, at, depth + 1), enumerable: true, writable: true, configurable: true })
      }
      return out
    }
    return v
  }
  return { value: walk(value, '', 0), hidden, secretNamed }
}

/**
 * A compact JWS that could be a credential: JWS-shaped, with a header that decodes to JSON naming a
 * signature algorithm. An unsigned (`alg: none`) or undecodable one authorizes nothing and may be
 * exactly what the approver must read (`{"to":"mallory"}` dressed as a token), so it is shown.
 */
function signedToken(v: string): boolean {
  if (!JWT_LIKE.test(v)) return false
  try {
    const header: unknown = JSON.parse(Buffer.from(v.slice(0, v.indexOf('.')), 'base64url').toString('utf8'))
    const alg = typeof header === 'object' && header !== null ? (header as { alg?: unknown }).alg : undefined
    return typeof alg === 'string' && alg.toLowerCase() !== 'none'
  } catch {
    return false
  }
}

// approval arguments already vetted by approvalArguments: the answer's redaction leaves them whole
// (its name rule would hide what approvalArguments deliberately shows)
const VETTED_ARGUMENTS = new WeakSet<object>()

/**
 * `redact` for the paged API's answers: the same JWS and secret-key checks, without the size caps
 * (pages are bounded by `limit`, and a delegation tree must not lose its deeper nodes or its
 * 201st call). Depth is still bounded, far beyond any delegation depth.
 */
export function redactAnswer(value: unknown, depth = 0): unknown {
  if (depth > 256) return '[…]'
  if (typeof value === 'string') return JWT_LIKE.test(value) ? '[redacted]' : value
  if (Array.isArray(value)) return VETTED_ARGUMENTS.has(value) ? value : value.map((v) => redactAnswer(v, depth + 1))
  if (value !== null && typeof value === 'object') {
    if (VETTED_ARGUMENTS.has(value)) return value
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.has(k) ? '[redacted]' : redactAnswer(v, depth + 1)
    return out
  }
  return value
}

export interface DashboardAgent {
  did: string
  name: string
  role: string
  owner?: string
  disabled: boolean
}

/**
 * The view's `arguments` (in full, signed tokens replaced), `argumentsHidden` (pointers to what was
 * replaced) and `argumentsSensitiveNames` (pointers to members named like secrets), each when any.
 */
export function approvalArgumentsView(value: unknown): { arguments: unknown; argumentsHidden?: string[]; argumentsSensitiveNames?: string[] } {
  const { value: shown, hidden, secretNamed } = approvalArguments(value)
  if (typeof shown === 'object' && shown !== null) VETTED_ARGUMENTS.add(shown)
  return { arguments: shown, ...(hidden.length ? { argumentsHidden: hidden } : {}), ...(secretNamed.length ? { argumentsSensitiveNames: secretNamed } : {}) }
}

export interface DashboardApproval {
  id: string
  status: ApprovalStatus
  tool: string
  audience: string
  argumentsDigest: string
  arguments?: unknown
  /** JSON pointers of the argument values not shown (signed tokens), when any. */
  argumentsHidden?: string[]
  /** JSON pointers of members named like secrets (shown in full), when any. */
  argumentsSensitiveNames?: string[]
  reason: string
  requestedBy: string
  subject: string
  txn: string
  actorChain: string[]
  createdAt: number
  expiresAt: number
  decidedBy?: string
}

export function agentView(a: AgentRecord): DashboardAgent {
  return { did: a.did, name: a.name, role: a.role, ...(a.owner ? { owner: a.owner } : {}), disabled: a.disabled }
}

/** The browser form of an approval (times in ms; arguments redacted defensively). */
export function approvalView(a: ApprovalView): DashboardApproval {
  return {
    id: a.id,
    status: a.status,
    tool: a.tool,
    audience: a.audience,
    argumentsDigest: a.arguments_digest,
    ...(a.arguments === undefined ? {} : approvalArgumentsView(a.arguments)),
    reason: a.reason,
    requestedBy: a.requested_by,
    subject: a.subject,
    txn: a.txn,
    actorChain: [a.requested_by],
    createdAt: a.created_at * 1000,
    expiresAt: a.expires_at * 1000,
    ...(a.decided_by ? { decidedBy: a.decided_by } : {}),
  }
}

export interface DashboardEvent {
  seq: number
  time: number
  type: string
  /** The task the record belongs to, if any (views of that task refresh). */
  txn?: string
  hash: string
  fields: unknown
}

export function eventView(r: AuditRecord): DashboardEvent {
  return { seq: r.seq, time: r.time, type: r.type, ...(typeof r.fields.txn === 'string' ? { txn: r.fields.txn } : {}), hash: r.hash, fields: redact(r.fields) }
}

/**
 * What became of one call credential (or call attempt), as the log shows it. Issued is not
 * verified: a credential the Authority minted but no guard reported is `issued` ("issued, not
 * presented"), never a call.
 * - `issued`: minted, no guard has reported it (it may never have reached its audience);
 * - `verified`: a guard (a `resource` principal) reported it allowed;
 * - `refused`: a guard reported it refused, or the Authority refused the exchange (`by` absent);
 * - `reported`: only the calling agent itself reported it (a self-report, not a verification);
 * - `approval_required`: the exchange waits for a human approval.
 */
export type CallStatus = 'issued' | 'verified' | 'refused' | 'reported' | 'approval_required'

export interface DashboardCall {
  /** seq of the record the row started from */
  seq: number
  time: number
  status: CallStatus
  /** Human wording of the status, e.g. "issued, not presented", "verified by billing-guard". */
  label: string
  jti?: string
  tool?: string
  args?: string
  /** seconds */
  exp?: number
  subject?: string
  actors: string[]
  /** The guard (or agent) that reported it: did and name. */
  by?: { did: string; name: string; role?: string }
  /** success | error, as the guard reported the tool's outcome */
  outcome?: string
  /** An error code or refusal code. */
  code?: string
  approval?: string
}

const s = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])

/** Guards are `resource` principals; an admin reporting counts as one (it holds the Authority's trust). */
const GUARD_ROLES = new Set(['resource', 'admin'])

/**
 * Was a call report made by a guard: in process (no reporter; host code holding the Authority), or
 * by a resource or admin that is not itself in the call's actor chain? Anything else is the agent's
 * own account of its call, shown as reported, never as verified.
 */
export function reportedByGuard(reporter: string | undefined, role: string | undefined, actors: readonly string[]): boolean {
  return reporter === undefined || (role !== undefined && GUARD_ROLES.has(role) && !actors.includes(reporter))
}

/**
 * The calls view of the log, derived on the server so that every view (the page, the API) says the
 * same: credentials joined with the guard reports that name them.
 */
export function callViews(records: readonly AuditRecord[], agents: readonly AgentRecord[]): DashboardCall[] {
  const byDid = new Map(agents.map((a) => [a.did, a]))
  const rows: DashboardCall[] = []
  const byJti = new Map<string, DashboardCall>()
  const who = (did: string) => {
    const a = byDid.get(did)
    return { did, name: a?.name ?? did, ...(a ? { role: a.role } : {}) }
  }
  for (const r of records) {
    const x = r.fields
    if (r.type === 'exchange' && (x.operation === 'call' || (x.tool !== undefined && x.tools === undefined))) {
      const jti = s(x.jti)
      const row: DashboardCall = { seq: r.seq, time: r.time, status: 'issued', label: 'issued, not presented', actors: strings(x.actors) }
      if (jti) row.jti = jti
      if (s(x.tool)) row.tool = s(x.tool) as string
      if (s(x.args)) row.args = s(x.args) as string
      if (typeof x.exp === 'number') row.exp = x.exp
      if (s(x.subject)) row.subject = s(x.subject) as string
      const approval = typeof x.approval === 'object' && x.approval !== null && !Array.isArray(x.approval) ? s((x.approval as Record<string, unknown>).id) : s(x.approval)
      if (approval) row.approval = approval
      rows.push(row)
      if (jti && !byJti.has(jti)) byJti.set(jti, row)
    } else if (r.type === 'call.report') {
      const jti = s(x.jti)
      const reporter = s(x.reporter)
      const by = reporter ? who(reporter) : undefined
      // no reporter: host code holding the Authority object reported it in process (a guard there,
      // e.g. a guarded MCP server given `audit: authority`); over HTTP a reporter is always named
      const inProcess = reporter === undefined
      const guard = reportedByGuard(reporter, by?.role, strings(x.actors))
      const refused = x.decision === 'refused'
      const status: CallStatus = guard ? (refused ? 'refused' : 'verified') : 'reported'
      const label = guard
        ? `${refused ? 'refused' : 'verified'} by ${inProcess ? "a guard in the Authority's process" : by?.name}`
        : `reported by ${by?.name} itself, not verified by a guard`
      let row = jti ? byJti.get(jti) : undefined
      if (!row) {
        row = { seq: r.seq, time: r.time, status, label, actors: strings(x.actors) }
        if (jti) row.jti = jti
        if (s(x.tool)) row.tool = s(x.tool) as string
        if (s(x.args)) row.args = s(x.args) as string
        if (s(x.subject)) row.subject = s(x.subject) as string
        rows.push(row)
        if (jti) byJti.set(jti, row)
      } else if (guard || row.status === 'issued') {
        // a guard's report outranks a self-report; a later guard report replaces an earlier one
        row.status = status
        row.label = label
      } else {
        continue
      }
      if (by) row.by = by
      if (s(x.outcome)) row.outcome = s(x.outcome) as string
      if (s(x.error)) row.code = s(x.error) as string
    } else if (r.type === 'refusal' && (x.operation === 'call' || s(x.tool) !== undefined)) {
      // a call exchange the Authority refused: no credential exists
      const actors = strings(x.actors)
      const row: DashboardCall = { seq: r.seq, time: r.time, status: 'refused', label: 'refused by the Authority', actors: actors.length ? actors : s(x.agent) ? [s(x.agent) as string] : [] }
      if (s(x.subject)) row.subject = s(x.subject) as string
      if (s(x.args)) row.args = s(x.args) as string
      if (s(x.tool)) row.tool = s(x.tool) as string
      if (s(x.code)) row.code = s(x.code) as string
      if (s(x.parent)) row.jti = s(x.parent) as string
      rows.push(row)
    } else if (r.type === 'approval.requested') {
      const row: DashboardCall = { seq: r.seq, time: r.time, status: 'approval_required', label: 'waiting for approval', actors: s(x.agent) ? [s(x.agent) as string] : [] }
      if (s(x.tool)) row.tool = s(x.tool) as string
      if (s(x.args)) row.args = s(x.args) as string
      if (s(x.subject)) row.subject = s(x.subject) as string
      if (s(x.parent)) row.jti = s(x.parent) as string
      rows.push(row)
    }
  }
  return rows
}
