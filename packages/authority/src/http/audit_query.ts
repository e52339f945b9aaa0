/**
 * Strict parsing of the `GET /audit` and `GET /admin/revocations` query strings, and the paged,
 * filtered read behind `GET /audit`. Filters the store indexes (txn, agent, subject, type, time) are
 * pushed down; `tool` and `decision` (the record's facets, as the dashboard derives them) are matched while paging
 * through the indexed selection, with a bounded scan per request and a cursor to continue from.
 */
import { MandateError } from '@mandate/core'
import type { Authority } from '../authority.js'
import { auditFacets, type AuditDecision } from '../store/audit_facets.js'
import type { AuditQuery, AuditRecord, AuditType, RevocationKind } from '../types.js'

/** Every audit type (a Record so that a new type cannot be forgotten here). */
const AUDIT_TYPES: Readonly<Record<AuditType, true>> = {
  'agent.registered': true, 'agent.disabled': true, 'agent.enabled': true, grant: true, exchange: true, refusal: true,
  'approval.requested': true, 'approval.approved': true, 'approval.denied': true, 'approval.expired': true,
  revocation: true, 'call.report': true, 'key.rotated': true, 'audit.unsealed': true, 'federation.rule.added': true, 'federation.rule.removed': true,
}

/** Every decision facet (audit_facets.ts: the same derivation the dashboard filters on). */
const DECISIONS: Readonly<Record<AuditDecision, true>> = { allowed: true, refused: true, pending: true, approved: true, denied: true, expired: true }
/** The values `?decision=` accepts. */
export const AUDIT_DECISIONS = Object.keys(DECISIONS) as readonly AuditDecision[]

/** Most records one `GET /audit` reads from the store while matching tool/decision (then it answers with a cursor). */
const MAX_SCAN = 20_000
const PAGE = 1000
const MAX_LIMIT = 10_000

/** The query parameters as Hono gives them (every value of every name). */
type Queries = Record<string, string[]>

/** One value of `name`: absent, or exactly once (a repeated filter is a mistake, not an OR). */
function one(q: Queries, name: string): string | undefined {
  const v = q[name]
  if (v === undefined) return undefined
  if (v.length !== 1) throw new MandateError('INVALID_REQUEST', `${name} must not be repeated`)
  return v[0]
}

function refuseUnknown(q: Queries, allowed: readonly string[]): void {
  for (const k of Object.keys(q)) if (!allowed.includes(k)) throw new MandateError('INVALID_REQUEST', `unknown query parameter "${k.slice(0, 32)}"`)
}

function ms(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  if (!/^[0-9]{1,15}$/.test(v)) throw new MandateError('INVALID_REQUEST', `${name} must be milliseconds since the epoch`)
  return Number(v)
}

function count(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  if (!/^[0-9]{1,6}$/.test(v)) throw new MandateError('INVALID_REQUEST', `${name} must be a whole number`)
  return Number(v)
}

function cursor(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  if (!/^(0|[1-9][0-9]{0,15})$/.test(v)) throw new MandateError('INVALID_REQUEST', `${name} must be a cursor returned by this endpoint`)
  return Number(v)
}

function text(v: string | undefined, name: string): string | undefined {
  if (v === undefined) return undefined
  if (v === '' || v.length > 512) throw new MandateError('INVALID_REQUEST', `${name} must be 1..512 characters`)
  return v
}

/** A parsed `GET /audit` query. */
export interface AuditFilter {
  query: AuditQuery & { limit: number }
  tool?: string
  decision?: AuditDecision
}

const AUDIT_PARAMS = ['txn', 'agent', 'subject', 'tool', 'type', 'decision', 'since', 'until', 'limit', 'after'] as const

/** Parse `GET /audit?txn=&agent=&subject=&tool=&type=&decision=&since=&until=&limit=&after=`; anything else is refused. */
export function parseAuditFilter(q: Queries): AuditFilter {
  refuseUnknown(q, AUDIT_PARAMS)
  const query: AuditQuery & { limit: number } = { limit: 1000 }
  for (const k of ['txn', 'agent', 'subject'] as const) {
    const v = text(one(q, k), k)
    if (v !== undefined) query[k] = v
  }
  const type = one(q, 'type')
  if (type !== undefined) {
    if (!Object.hasOwn(AUDIT_TYPES, type)) throw new MandateError('INVALID_REQUEST', `type must be one of ${Object.keys(AUDIT_TYPES).join(', ')}`)
    query.type = type as AuditType
  }
  const since = ms(one(q, 'since'), 'since')
  const until = ms(one(q, 'until'), 'until')
  const limit = count(one(q, 'limit'), 'limit')
  const after = cursor(one(q, 'after'), 'after')
  if (since !== undefined) query.since = since
  if (until !== undefined) query.until = until
  if (limit !== undefined) query.limit = Math.max(1, Math.min(limit, MAX_LIMIT))
  if (after !== undefined) query.afterSeq = after
  const out: AuditFilter = { query }
  const tool = text(one(q, 'tool'), 'tool')
  if (tool !== undefined) out.tool = tool
  const decision = one(q, 'decision')
  if (decision !== undefined) {
    if (!(AUDIT_DECISIONS as readonly string[]).includes(decision)) throw new MandateError('INVALID_REQUEST', `decision must be one of ${AUDIT_DECISIONS.join(', ')}`)
    out.decision = decision as AuditDecision
  }
  return out
}

/**
 * One page of matching records in seq order, and `next` (the `after` cursor of the following page)
 * when the page is full or the scan budget ran out before the log did.
 */
export async function readAuditPage(authority: Authority, f: AuditFilter): Promise<{ records: AuditRecord[]; next?: string }> {
  const matches = (r: AuditRecord) => {
    if (f.tool === undefined && f.decision === undefined) return true
    const facets = auditFacets(r.type, r.fields)
    return (f.tool === undefined || facets.tool === f.tool) && (f.decision === undefined || facets.decision === f.decision)
  }
  const { limit, ...base } = f.query
  const records: AuditRecord[] = []
  let after = base.afterSeq ?? 0
  let scanned = 0
  for (;;) {
    // without in-field filters every record read matches: read exactly one more than the page, to know if there is a next
    const want = f.tool === undefined && f.decision === undefined ? Math.min(limit - records.length + 1, PAGE) : PAGE
    const page = await authority.audit.query({ ...base, afterSeq: after, limit: want })
    for (const r of page) {
      if (!matches(r)) {
        after = r.seq
        scanned++
        continue
      }
      if (records.length === limit) return { records, next: String(after) }
      records.push(r)
      after = r.seq
      scanned++
    }
    if (page.length < want) return { records }
    if (scanned >= MAX_SCAN) return { records, next: String(after) }
  }
}

const REVOCATION_PARAMS = ['after', 'kind', 'limit'] as const
const KINDS: readonly RevocationKind[] = ['mandate', 'task', 'agent']

/** Parse `GET /admin/revocations?after=&kind=&limit=`. */
export function parseRevocationFilter(q: Queries): { after: number; kind?: RevocationKind; limit: number } {
  refuseUnknown(q, REVOCATION_PARAMS)
  const kind = one(q, 'kind')
  if (kind !== undefined && !(KINDS as readonly string[]).includes(kind)) throw new MandateError('INVALID_REQUEST', `kind must be one of ${KINDS.join(', ')}`)
  const limit = count(one(q, 'limit'), 'limit')
  return { after: cursor(one(q, 'after'), 'after') ?? 0, ...(kind !== undefined ? { kind: kind as RevocationKind } : {}), limit: Math.max(1, Math.min(limit ?? 100, 1000)) }
}
