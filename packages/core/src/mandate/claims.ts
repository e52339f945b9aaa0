import { isPlainObject, type JsonObject, type JsonValue } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import { parseConstraintMap, defaultConstraintRegistry, type ConstraintMap, type ConstraintRegistry } from '../narrowing/constraints.js'
import { parseScope } from '../narrowing/scopes.js'
import { assertToolName, assertToolPattern } from '../narrowing/tools.js'
import { assertChainConsistent } from './chain_rules.js'

/** JWT `typ` of a mandate and of a call credential (RFC 9068 access token). */
export const MANDATE_TYP = 'at+jwt'
/** `authorization_details` type (RFC 9396) that grants tools. */
export const TOOL_ACCESS_TYPE = 'tool_access'
/** Hard cap on delegation depth and on the nesting of `act`. */
export const MAX_DEPTH_LIMIT = 16
export const MAX_MANDATE_LENGTH = 16 * 1024
/** Value of the `credential` claim of an audience credential (cached mode; docs/protocol.md). */
export const AUDIENCE_CREDENTIAL = 'audience'
/** Most offline (holder-signed) hops a mandate can allow, and the most a presented chain may carry. */
export const MAX_OFFLINE_HOPS = 8

/** The actor chain (RFC 8693 §4.1): `sub` is the current actor; nested `act` are earlier actors. */
export interface ActorClaim {
  sub: string
  act?: ActorClaim
}

/** One grant of tools (RFC 9396 authorization details entry). */
export interface ToolGrant {
  type: typeof TOOL_ACCESS_TYPE
  /** Tool names or `prefix.*` patterns. */
  tools: string[]
  /** Argument constraints that apply to every tool of this entry. */
  constraints?: ConstraintMap
  /** Audiences this entry applies to; absent means every audience of the mandate. */
  locations?: string[]
  /**
   * Tools of this entry may only be called with an Authority-minted call credential (`call` claim):
   * a guard refuses them when presented with an audience credential, a plain mandate or an offline
   * chain. Only `true` is valid; a child covered only by such grants must keep it.
   */
  per_call?: true
}

/** Offline attenuation allowance (set by the Authority only): how many holder-signed hops may follow. */
export interface OfflineClaim {
  /** 1..8; each offline hop decrements it, and a hop that would leave 0 carries no `offline` claim. */
  max_hops: number
}

/** Where a mandate sits in its delegation tree. */
export interface DelegationRecord {
  /** 0 for a root (granted) mandate, +1 per delegation. */
  depth: number
  /** Deepest depth any descendant may reach; only ever shrinks. */
  max_depth: number
  /** `jti` of the parent mandate. */
  parent?: string
  /** base64url SHA-256 of the parent mandate's compact serialization. */
  parent_hash?: string
  /** `jti`s of every ancestor, root first. */
  ancestors: string[]
}

/** A call credential's binding to exactly one tool call. */
export interface CallBinding {
  tool: string
  /** base64url SHA-256 of the RFC 8785 canonical JSON of the arguments. */
  args: string
}

export interface ApprovalClaim {
  id: string
  approver: string
  approved_at: number
}

export interface Budget {
  amount: number
  unit: string
}

/** The claims of a mandate (and of a call credential, which also carries `call`). */
export interface MandateClaims {
  iss: string
  sub: string
  aud: string | string[]
  iat: number
  nbf: number
  exp: number
  jti: string
  /** RFC 9068 `client_id`: the agent holding this mandate (equals `act.sub`). */
  client_id: string
  scope?: string
  act: ActorClaim
  /** Task id; never changes down a chain. */
  txn: string
  purpose?: string
  authorization_details: ToolGrant[]
  cnf: { jkt: string }
  delegation: DelegationRecord
  call?: CallBinding
  approval?: ApprovalClaim
  budget?: Budget
  max_uses?: number
  /**
   * `"audience"`: an audience credential (cached mode): one audience, not call-bound, reusable with a
   * fresh proof per call, cannot be delegated or narrowed further. Absent on every other token.
   */
  credential?: typeof AUDIENCE_CREDENTIAL
  /** The holder may attenuate this mandate offline (holder-signed hops); absent = not allowed. */
  offline?: OfflineClaim
}

const KNOWN_CLAIMS = new Set([
  'iss', 'sub', 'aud', 'iat', 'nbf', 'exp', 'jti', 'client_id', 'scope', 'act', 'txn', 'purpose',
  'authorization_details', 'cnf', 'delegation', 'call', 'approval', 'budget', 'max_uses', 'credential', 'offline',
])

/**
 * Every character in `[A-Za-z0-9_-]` and the length within [min, max]: exactly what
 * `/^[A-Za-z0-9_-]{min,max}$/` tests, without a regex call for each of the ids and digests of every
 * token.
 */
function isB64u(s: string, min: number, max: number): boolean {
  const n = s.length
  if (n < min || n > max) return false
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95)) return false
  }
  return true
}
/** `jti`: 128 to 384 bits of base64url (22..64 characters). */
const B64U_ID = { test: (s: string): boolean => isB64u(s, 22, 64) }
/** A base64url SHA-256 digest (43 characters). */
const DIGEST = { test: (s: string): boolean => isB64u(s, 43, 43) }

function fail(claim: string, reason: string): never {
  throw new MandateError('CLAIM_INVALID', `claim "${claim}" ${reason}`, { detail: { claim } })
}
function str(v: unknown, claim: string, max = 512): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) fail(claim, 'must be a non-empty string')
  return v
}
function int(v: unknown, claim: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(claim, 'must be a non-negative integer')
  return v
}
function strList(v: unknown, claim: string, maxItems: number): string[] {
  if (!Array.isArray(v) || v.length > maxItems) fail(claim, 'must be a bounded array')
  // short lists (every list of a usual token) compare pairwise: no Set allocated per list per token
  if (v.length <= 16) {
    for (let i = 0; i < v.length; i++) {
      const s: unknown = v[i]
      str(s, claim)
      for (let j = 0; j < i; j++) if (v[j] === s) fail(claim, 'has a duplicate entry')
    }
    return v as string[]
  }
  const seen = new Set<string>()
  for (const s of v) {
    str(s, claim)
    if (seen.has(s as string)) fail(claim, 'has a duplicate entry')
    seen.add(s as string)
  }
  return v as string[]
}
// allowed member names, one array each (not a fresh literal per parsed object)
const MEMBERS_ACT: readonly string[] = ['sub', 'act']
const MEMBERS_AUTHORIZATION_DETAILS: readonly string[] = ['type', 'tools', 'constraints', 'locations', 'per_call']
const MEMBERS_CNF: readonly string[] = ['jkt']
const MEMBERS_CALL: readonly string[] = ['tool', 'args']
const MEMBERS_APPROVAL: readonly string[] = ['id', 'approver', 'approved_at']
const MEMBERS_OFFLINE: readonly string[] = ['max_hops']
const MEMBERS_BUDGET: readonly string[] = ['amount', 'unit']
const MEMBERS_DELEGATION: readonly string[] = ['depth', 'max_depth', 'parent', 'parent_hash', 'ancestors']
function members(obj: JsonObject, allowed: readonly string[], claim: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) fail(claim, `has unknown member "${k.slice(0, 32)}"`)
}

// Audiences repeat on every token of a deployment and the check is a pure function of the string,
// so strings already accepted skip the URL parse (bounded; failures are never cached).
const acceptedAudiences = new Set<string>()
const ACCEPTED_AUDIENCES_MAX = 512

/** Audience / resource identifiers: absolute URIs (RFC 8707), no fragment, compared exactly. */
export function assertAudience(v: unknown, claim = 'aud'): string {
  if (typeof v === 'string' && acceptedAudiences.has(v)) return v
  const s = str(v, claim, 2048)
  let u: URL
  try {
    u = new URL(s)
  } catch {
    fail(claim, 'must be an absolute URI')
  }
  if (u.hash || s.includes('#')) fail(claim, 'must not have a fragment')
  if (u.username || u.password) fail(claim, 'must not carry credentials')
  if (u.protocol !== 'https:' && u.protocol !== 'http:' && u.protocol !== 'urn:') fail(claim, 'must be an https, http or urn URI')
  if (acceptedAudiences.size >= ACCEPTED_AUDIENCES_MAX) acceptedAudiences.clear()
  acceptedAudiences.add(s)
  return s
}

export function audienceList(aud: string | string[]): string[] {
  return typeof aud === 'string' ? [aud] : aud
}

function parseActor(v: unknown, depth: number): ActorClaim {
  if (depth > MAX_DEPTH_LIMIT + 1) throw new MandateError('CLAIM_INVALID', 'act chain too deep', { detail: { claim: 'act' } })
  if (!isPlainObject(v)) fail('act', 'must be an object')
  members(v, MEMBERS_ACT, 'act')
  const out: ActorClaim = { sub: str(v.sub, 'act.sub') }
  if (v.act !== undefined) out.act = parseActor(v.act, depth + 1)
  return out
}

/** Parse one `tool_access` entry. */
export function parseToolGrant(v: unknown, registry: ConstraintRegistry = defaultConstraintRegistry): ToolGrant {
  if (!isPlainObject(v)) fail('authorization_details', 'entries must be objects')
  if (v.type !== TOOL_ACCESS_TYPE) {
    throw new MandateError('CLAIM_UNKNOWN', 'unknown authorization_details type', { detail: { claim: 'authorization_details' } })
  }
  members(v, MEMBERS_AUTHORIZATION_DETAILS, 'authorization_details')
  const tools = strList(v.tools, 'authorization_details.tools', 64)
  if (tools.length === 0) fail('authorization_details.tools', 'must not be empty')
  tools.forEach(assertToolPattern)
  const out: ToolGrant = { type: TOOL_ACCESS_TYPE, tools: [...tools] }
  if (v.constraints !== undefined) out.constraints = parseConstraintMap(v.constraints, registry)
  if (v.locations !== undefined) {
    out.locations = strList(v.locations, 'authorization_details.locations', 16).map((l) => assertAudience(l, 'authorization_details.locations'))
  }
  if (v.per_call !== undefined) {
    // only `true`: `false` would be a second spelling of "absent", which canonical comparison of hops must not see
    if (v.per_call !== true) fail('authorization_details.per_call', 'must be true when present')
    out.per_call = true
  }
  return out
}

/**
 * Validate a mandate payload's shape: every claim known and well typed, bounded arrays and nesting,
 * no unknown (possibly authority-bearing) claim. Signature and time are checked elsewhere.
 */
export function parseMandateClaims(payload: JsonObject, registry: ConstraintRegistry = defaultConstraintRegistry): MandateClaims {
  for (const k of Object.keys(payload)) {
    if (!KNOWN_CLAIMS.has(k)) throw new MandateError('CLAIM_UNKNOWN', `unknown claim "${k.slice(0, 32)}"`, { detail: { claim: k.slice(0, 32) } })
  }
  const aud = payload.aud
  let audience: string | string[]
  if (Array.isArray(aud)) {
    const list = strList(aud, 'aud', 16)
    if (list.length === 0) fail('aud', 'must not be empty')
    audience = list.map((a) => assertAudience(a))
  } else {
    audience = assertAudience(aud)
  }
  const jti = str(payload.jti, 'jti', 64)
  if (!B64U_ID.test(jti)) fail('jti', 'must be at least 128 bits of base64url')
  const act = parseActor(payload.act, 1)
  const clientId = str(payload.client_id, 'client_id')
  if (!isPlainObject(payload.cnf)) fail('cnf', 'must be an object')
  members(payload.cnf, MEMBERS_CNF, 'cnf')
  const jkt = str(payload.cnf.jkt, 'cnf.jkt', 43)
  if (!DIGEST.test(jkt)) fail('cnf.jkt', 'must be a SHA-256 JWK thumbprint')
  if (!Array.isArray(payload.authorization_details) || payload.authorization_details.length > 32) {
    fail('authorization_details', 'must be a bounded array')
  }
  const claims: MandateClaims = {
    iss: str(payload.iss, 'iss', 2048),
    sub: str(payload.sub, 'sub'),
    aud: audience,
    iat: int(payload.iat, 'iat'),
    nbf: int(payload.nbf, 'nbf'),
    exp: int(payload.exp, 'exp'),
    jti,
    client_id: clientId,
    act,
    txn: str(payload.txn, 'txn', 128),
    authorization_details: payload.authorization_details.map((d) => parseToolGrant(d, registry)),
    cnf: { jkt },
    delegation: parseDelegation(payload.delegation),
  }
  if (claims.nbf > claims.exp) fail('nbf', 'must not be after exp')
  if (payload.scope !== undefined) {
    parseScope(payload.scope)
    claims.scope = payload.scope as string
  }
  if (payload.purpose !== undefined) claims.purpose = str(payload.purpose, 'purpose', 1024)
  if (payload.call !== undefined) {
    if (!isPlainObject(payload.call)) fail('call', 'must be an object')
    members(payload.call, MEMBERS_CALL, 'call')
    assertToolName(payload.call.tool)
    const args = str(payload.call.args, 'call.args', 43)
    if (!DIGEST.test(args)) fail('call.args', 'must be a SHA-256 digest')
    claims.call = { tool: payload.call.tool, args }
  }
  if (payload.approval !== undefined) {
    if (!isPlainObject(payload.approval)) fail('approval', 'must be an object')
    members(payload.approval, MEMBERS_APPROVAL, 'approval')
    claims.approval = { id: str(payload.approval.id, 'approval.id', 128), approver: str(payload.approval.approver, 'approval.approver'), approved_at: int(payload.approval.approved_at, 'approval.approved_at') }
  }
  if (payload.budget !== undefined) claims.budget = parseBudget(payload.budget)
  if (payload.max_uses !== undefined) {
    claims.max_uses = int(payload.max_uses, 'max_uses')
    if (claims.max_uses < 1) fail('max_uses', 'must be at least 1')
  }
  if (payload.credential !== undefined) {
    if (payload.credential !== AUDIENCE_CREDENTIAL) fail('credential', 'must be "audience" when present')
    claims.credential = AUDIENCE_CREDENTIAL
  }
  if (payload.offline !== undefined) claims.offline = parseOfflineClaim(payload.offline)
  // ancestry vs depth, actor chain vs depth, actor = bound key, no repeated actor, credential shapes
  assertChainConsistent(claims)
  return claims
}

/** Parse the `offline` claim: exactly `{ "max_hops": 1..8 }`. */
export function parseOfflineClaim(v: unknown): OfflineClaim {
  if (!isPlainObject(v)) fail('offline', 'must be an object')
  members(v, MEMBERS_OFFLINE, 'offline')
  const n = int(v.max_hops, 'offline.max_hops')
  if (n < 1 || n > MAX_OFFLINE_HOPS) fail('offline.max_hops', `must be 1..${MAX_OFFLINE_HOPS}`)
  return { max_hops: n }
}

export function parseBudget(v: unknown): Budget {
  if (!isPlainObject(v)) fail('budget', 'must be an object')
  members(v, MEMBERS_BUDGET, 'budget')
  if (typeof v.amount !== 'number' || !Number.isFinite(v.amount) || v.amount < 0) fail('budget.amount', 'must be a non-negative number')
  return { amount: v.amount, unit: str(v.unit, 'budget.unit', 32) }
}

function parseDelegation(v: JsonValue | undefined): DelegationRecord {
  if (!isPlainObject(v)) fail('delegation', 'must be an object')
  members(v, MEMBERS_DELEGATION, 'delegation')
  const depth = int(v.depth, 'delegation.depth')
  const maxDepth = int(v.max_depth, 'delegation.max_depth')
  if (maxDepth > MAX_DEPTH_LIMIT) fail('delegation.max_depth', `must be at most ${MAX_DEPTH_LIMIT}`)
  if (depth > maxDepth) fail('delegation.depth', 'exceeds max_depth')
  const ancestors = strList(v.ancestors, 'delegation.ancestors', 2 * MAX_DEPTH_LIMIT + 2)
  const out: DelegationRecord = { depth, max_depth: maxDepth, ancestors: [...ancestors] }
  if (v.parent !== undefined) out.parent = str(v.parent, 'delegation.parent', 64)
  if (v.parent_hash !== undefined) {
    out.parent_hash = str(v.parent_hash, 'delegation.parent_hash', 43)
    if (!DIGEST.test(out.parent_hash)) fail('delegation.parent_hash', 'must be a SHA-256 digest')
  }
  return out
}

/** Number of actors in the chain. */
export function actorDepth(act: ActorClaim): number {
  let n = 0
  for (let a: ActorClaim | undefined = act; a; a = a.act) n++
  return n
}

/** The actor chain in chronological order: first delegate first, current actor last. */
export function actorChain(act: ActorClaim): string[] {
  // innermost actor first: collect outermost-first, then reverse in place (unshift moves every element)
  const out: string[] = []
  for (let a: ActorClaim | undefined = act; a; a = a.act) out.push(a.sub)
  return out.reverse()
}
