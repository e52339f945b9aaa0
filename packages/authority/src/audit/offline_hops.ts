/**
 * The `offlineHops` of a guard's call report: summaries of the holder-signed hops of the offline
 * chain the guard verified (core's OfflineHop), so that the audit log and the dashboard show
 * delegations the Authority never minted. A report is a claim by an admitted reporter, not a token:
 * it is parsed strictly and bounded (at most 8 hops, known members only, linked one to the next and
 * ending at the reported credential), and recorded as `offline_hops`, never interpreted as authority.
 */
import { isDidKey, MandateError, type JsonValue } from '@mandate/core'

/** core's MAX_OFFLINE_HOPS: a chain never has more. */
export const MAX_REPORTED_HOPS = 8
const MEMBERS = ['jti', 'holder', 'parent', 'depth', 'kind', 'iat', 'exp', 'tools']
const KINDS = ['delegation', 'audience', 'call']
// jti values are the Authority's and the holders' random ids (base64url)
const ID = /^[A-Za-z0-9_-]{1,64}$/
const TOOL = /^(?:\*|[A-Za-z0-9_\-/:]+(?:\.[A-Za-z0-9_\-/:]+)*(?:\.\*)?)$/

function bad(message: string): never {
  throw new MandateError('INVALID_REQUEST', `report.offlineHops: ${message}`)
}

const int = (v: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) bad(`${name} must be a non-negative integer`)
  return v
}

/**
 * Parse the hops of a report whose credential is `mandateId` (the last hop's jti). Returns the
 * audit field value: one object per hop, first hop (child of the Authority-minted root) first.
 */
export function parseOfflineHops(v: unknown, mandateId: string): JsonValue[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_REPORTED_HOPS) bad(`must be an array of 1..${MAX_REPORTED_HOPS} hops`)
  const out: JsonValue[] = []
  let previous: { jti: string; depth: number; exp: number; kind: string } | undefined
  for (let i = 0; i < v.length; i++) {
    const h: unknown = v[i]
    if (typeof h !== 'object' || h === null || Array.isArray(h)) bad(`hop ${i} must be an object`)
    const hop = h as Record<string, unknown>
    for (const k of Object.keys(hop)) if (!MEMBERS.includes(k)) bad(`hop ${i} has unknown member "${k.slice(0, 32)}"`)
    for (const k of MEMBERS) if (!Object.hasOwn(hop, k)) bad(`hop ${i} lacks "${k}"`)
    if (typeof hop.jti !== 'string' || !ID.test(hop.jti)) bad(`hop ${i}.jti must be an id`)
    if (typeof hop.parent !== 'string' || !ID.test(hop.parent)) bad(`hop ${i}.parent must be an id`)
    if (typeof hop.holder !== 'string' || hop.holder.length > 128 || !isDidKey(hop.holder)) bad(`hop ${i}.holder must be a did:key`)
    if (typeof hop.kind !== 'string' || !KINDS.includes(hop.kind)) bad(`hop ${i}.kind must be ${KINDS.join(', ')}`)
    const depth = int(hop.depth, `hop ${i}.depth`, 16)
    const iat = int(hop.iat, `hop ${i}.iat`)
    const exp = int(hop.exp, `hop ${i}.exp`)
    if (exp <= iat) bad(`hop ${i} expires before it was issued`)
    if (!Array.isArray(hop.tools) || hop.tools.length === 0 || hop.tools.length > 64) bad(`hop ${i}.tools must list 1..64 tools`)
    for (const t of hop.tools) if (typeof t !== 'string' || t.length > 128 || !TOOL.test(t)) bad(`hop ${i}.tools must be tool names or patterns`)
    // the hops of one chain, in order: each the child of the one before, nested in its lifetime;
    // only a delegation hop can have a child (audience and call hops are leaves)
    if (previous) {
      if (hop.parent !== previous.jti) bad(`hop ${i} is not the child of hop ${i - 1}`)
      if (previous.kind !== 'delegation') bad(`hop ${i - 1} (${previous.kind}) cannot have a child hop`)
      if (depth !== previous.depth + (hop.kind === 'delegation' ? 1 : 0)) bad(`hop ${i}.depth does not follow hop ${i - 1}`)
      if (exp > previous.exp) bad(`hop ${i} outlives hop ${i - 1}`)
    }
    previous = { jti: hop.jti, depth, exp, kind: hop.kind }
    out.push({ jti: hop.jti, holder: hop.holder, parent: hop.parent, depth, kind: hop.kind, iat, exp, tools: [...(hop.tools as string[])] })
  }
  if (previous?.jti !== mandateId) bad('the last hop must be the reported credential (mandateId)')
  return out
}
