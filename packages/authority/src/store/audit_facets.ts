/**
 * The query facets of an audit record — what the dashboard filters on beyond the hashed record's
 * task/agent/subject columns: tool, credential id, decision, and whether the record starts a call.
 * Derived from the record alone, so every store computes the same and an index can be rebuilt.
 */
import type { AuditDraft, AuditType } from '../types.js'

/** Decision facet values (`allowed`, `refused`, or an approval state). */
export type AuditDecision = 'allowed' | 'refused' | 'pending' | 'approved' | 'denied' | 'expired'

export interface AuditFacets {
  txn: string | null
  agent: string | null
  subject: string | null
  tool: string | null
  /** jti the record is about (issued, reported, revoked). */
  jti: string | null
  decision: AuditDecision | null
  /** True for the records that start a call row: a call credential issued, a call refused by the Authority, an approval asked. */
  call: boolean
}

const s = (v: unknown): string | null => (typeof v === 'string' ? v : null)

/** The facets of one record (see AuditFacets). */
export function auditFacets(type: AuditType | string, fields: AuditDraft['fields']): AuditFacets {
  const tool = s(fields.tool)
  let decision: AuditDecision | null = null
  let call = false
  switch (type) {
    case 'grant':
      decision = 'allowed'
      break
    case 'exchange':
      decision = 'allowed'
      call = fields.operation === 'call' || (tool !== null && fields.tools === undefined)
      break
    case 'refusal':
      decision = 'refused'
      call = fields.operation === 'call' || tool !== null
      break
    case 'call.report':
      decision = fields.decision === 'refused' ? 'refused' : 'allowed'
      break
    case 'approval.requested':
      decision = 'pending'
      call = true
      break
    case 'approval.approved':
      decision = 'approved'
      break
    case 'approval.denied':
      decision = 'denied'
      break
    case 'approval.expired':
      decision = 'expired'
      break
  }
  return { txn: s(fields.txn), agent: s(fields.agent), subject: s(fields.subject), tool, jti: s(fields.jti), decision, call }
}
