/**
 * Strict parsing of the dashboard API's query strings and action bodies. Fail closed: an unknown
 * parameter, a repeated one, a malformed value or a cursor this server did not make is a 400
 * `INVALID_REQUEST`, never silently ignored (a typo in a filter must not widen the answer).
 */
import { MandateError, parseStrictJson } from '@mandate/core'
import { checkReasonText } from '../audit/reason_text.js'
import { parseForm } from '../http/body.js'
import type { AuditType } from '../types.js'
import type { AuditDecision } from '../store/audit_facets.js'

/** Every audit record type (a `type=` filter must name one). */
export const AUDIT_TYPES: readonly AuditType[] = [
  'agent.registered', 'agent.disabled', 'agent.enabled', 'grant', 'exchange', 'refusal', 'approval.requested',
  'approval.approved', 'approval.denied', 'approval.expired', 'revocation', 'call.report', 'key.rotated', 'audit.unsealed',
  'federation.rule.added', 'federation.rule.removed',
]
export const DECISIONS: readonly AuditDecision[] = ['allowed', 'refused', 'pending', 'approved', 'denied', 'expired']

const bad = (message: string) => new MandateError('INVALID_REQUEST', message)

/** The raw query of a request, refusing parameters outside `allowed` and repeated ones. */
export function strictQuery(url: string, allowed: readonly string[]): Map<string, string> {
  // the same strict percent-decoding as the HTTP API's forms and queries (http/body.ts): a malformed
  // or non-UTF-8 escape is refused, not turned into U+FFFD (URLSearchParams would)
  const u = new URL(url)
  const out = new Map<string, string>()
  for (const [k, v] of parseForm(u.search.slice(1), 'the query')) {
    if (!allowed.includes(k)) throw bad(`unknown query parameter "${k.slice(0, 40)}" (allowed: ${allowed.join(', ')})`)
    if (out.has(k)) throw bad(`query parameter "${k}" given twice`)
    out.set(k, v)
  }
  return out
}

/** An exact-match filter value: 1..512 printable characters. */
export function text(q: Map<string, string>, name: string): string | undefined {
  const v = q.get(name)
  if (v === undefined) return undefined
  if (v.length === 0 || v.length > 512 || /[\x00-\x1f\x7f]/.test(v)) throw bad(`${name} must be 1..512 printable characters`)
  return v
}

/** A `q` search term: 1..200 characters. */
export function search(q: Map<string, string>): string | undefined {
  const v = q.get('q')
  if (v === undefined) return undefined
  if (v.length === 0 || v.length > 200 || /[\x00-\x1f\x7f]/.test(v)) throw bad('q must be 1..200 printable characters')
  return v
}

export function oneOf<T extends string>(q: Map<string, string>, name: string, values: readonly T[]): T | undefined {
  const v = q.get(name)
  if (v === undefined) return undefined
  if (!(values as readonly string[]).includes(v)) throw bad(`${name} must be one of ${values.join(', ')}`)
  return v as T
}

/** A time bound: ISO 8601 (with a date) or ms since the epoch; ms since the epoch. */
export function time(q: Map<string, string>, name: string): number | undefined {
  const v = q.get(name)
  if (v === undefined) return undefined
  let ms: number
  if (/^[0-9]{1,15}$/.test(v)) ms = Number(v)
  else if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) ms = Date.parse(v)
  else throw bad(`${name} must be an ISO 8601 date/time or ms since the epoch`)
  if (!Number.isFinite(ms)) throw bad(`${name} is not a valid date`)
  return ms
}

export function limit(q: Map<string, string>): number {
  const v = q.get('limit')
  if (v === undefined) return 50
  if (!/^[1-9][0-9]{0,2}$/.test(v) || Number(v) > 200) throw bad('limit must be an integer 1..200')
  return Number(v)
}

/**
 * Cursors are `<kind>.<position>` in base64url: opaque to clients, and a cursor of one list is
 * refused by another (a task cursor is not an audit seq).
 */
export function encodeCursor(kind: string, position: number): string {
  return Buffer.from(`${kind}.${position}`).toString('base64url')
}

export function cursor(q: Map<string, string>, kind: string): number | undefined {
  const v = q.get('cursor')
  if (v === undefined) return undefined
  const m = /^[A-Za-z0-9_-]{1,64}$/.test(v) ? /^([a-z]+)\.([1-9][0-9]{0,15})$/.exec(Buffer.from(v, 'base64url').toString('latin1')) : null
  if (!m || m[1] !== kind || !Number.isSafeInteger(Number(m[2]))) throw bad('cursor is not one this list returned')
  return Number(m[2])
}

/** A path parameter id (jti, approval id, txn): printable ASCII without spaces, at most 256. */
export function pathId(v: string | undefined, what: string): string {
  if (typeof v !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(v)) throw bad(`malformed ${what}`)
  return v
}

/**
 * A JSON action body: an object with only `allowed` members and a `reason` of 1..500 characters
 * (it lands in the audit record of the action).
 */
export async function actionBody(req: { text(): Promise<string>; header(name: string): string | undefined }, allowed: readonly string[]): Promise<Record<string, unknown> & { reason: string }> {
  const type = req.header('content-type') ?? ''
  if (!/^application\/json\b/i.test(type)) throw bad('the body must be JSON (content-type: application/json)')
  let body: unknown
  try {
    // strict: a duplicate member ({"reason":"a","reason":"b"}) is refused, not resolved to the last
    body = parseStrictJson(await req.text())
  } catch {
    throw bad('the body must be a JSON object (no duplicate members)')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the body must be a JSON object')
  for (const k of Object.keys(body)) if (k !== 'reason' && !allowed.includes(k)) throw bad(`unknown body member "${k.slice(0, 40)}"`)
  const reason = (body as { reason?: unknown }).reason
  if (typeof reason !== 'string' || reason.trim().length === 0 || reason.length > 500) {
    throw bad('a reason (1..500 characters) is required; it is recorded in the audit log')
  }
  // the rule of every API that records a reason (controls, bidi, invisible format characters)
  checkReasonText(reason, 500)
  return body as Record<string, unknown> & { reason: string }
}
