/**
 * What the dashboard needs from an Authority (a structural subset of `Authority`), and the
 * redaction applied to everything it sends to a browser.
 */
import type { ApprovalView } from '../approvals/service.js'
import type { AgentRecord, ApprovalStatus, AuditQuery, AuditRecord } from '../types.js'

export type AuditVerification = { ok: true; count: number; head?: unknown } | { ok: false; brokenAt: number; reason: string }

export interface DashboardAuthority {
  listAgents(): Promise<AgentRecord[]>
  approvals: {
    list(filter?: { status?: ApprovalStatus; limit?: number }): Promise<ApprovalView[]>
    approve(id: string, decision: { approver: string; reason?: string }): Promise<unknown>
    deny(id: string, decision: { approver: string; reason?: string }): Promise<unknown>
  }
  audit: {
    query(query: AuditQuery): Promise<AuditRecord[]>
    verify(): Promise<AuditVerification>
  }
  /** Subscribe to appended audit records; returns the unsubscribe function. */
  on(event: 'event', listener: (record: AuditRecord) => void): () => void
  /** Authenticate a client assertion (`Authorization: MandateAssertion …`); throws INVALID_CLIENT. */
  authenticate?(assertion: string, endpoint?: string): Promise<AgentRecord>
}

const JWT_LIKE = /^[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}$/
const SECRET_KEYS = new Set(['token', 'access_token', 'subject_token', 'assertion', 'client_assertion', 'proof', 'dpop', 'd', 'privateJwk', 'secret'])

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

export interface DashboardAgent {
  did: string
  name: string
  role: string
  owner?: string
  disabled: boolean
}

export interface DashboardApproval {
  id: string
  status: ApprovalStatus
  tool: string
  audience: string
  argumentsDigest: string
  arguments?: unknown
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
    ...(a.arguments === undefined ? {} : { arguments: redact(a.arguments) }),
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
  hash: string
  fields: unknown
}

export function eventView(r: AuditRecord): DashboardEvent {
  return { seq: r.seq, time: r.time, type: r.type, hash: r.hash, fields: redact(r.fields) }
}
