import type { JsonValue } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import { digestOfSnapshot, tokenHash } from '../mandate/args_digest.js'
import { snapshotArguments } from '../mandate/args_snapshot.js'
import {
  actorChain, assertAudience, AUDIENCE_CREDENTIAL, audienceList, MAX_DEPTH_LIMIT, MAX_OFFLINE_HOPS, parseToolGrant, TOOL_ACCESS_TYPE,
  type ApprovalClaim, type Budget, type MandateClaims, type OfflineClaim, type ToolGrant,
} from '../mandate/claims.js'
import {
  assertArgumentsSatisfy, assertConstraintsNarrow, defaultConstraintRegistry, type ConstraintRegistry,
} from './constraints.js'
import { assertScopesNarrow, formatScope, parseScope } from './scopes.js'
import { assertPerCallKept } from './per_call.js'
import { assertToolName, patternCovers, toolMatches } from './tools.js'

export const DEFAULT_MAX_MANDATE_LIFETIME = 24 * 3600
export const DEFAULT_CALL_LIFETIME = 60
/** Default and usual cap of an audience credential's lifetime (seconds). */
export const DEFAULT_AUDIENCE_LIFETIME = 900
const DIGEST = /^[A-Za-z0-9_-]{43}$/

/** Ask for a child mandate for another agent (delegation; the chain grows by that agent). */
export interface DelegationRequest {
  kind: 'delegation'
  /** The delegate: its identifier (e.g. `did:key`) and key thumbprint (`cnf.jkt`). */
  actor: { id: string; jkt: string }
  audiences?: string[]
  scopes?: string[]
  tools?: ToolGrant[]
  /** Requested lifetime in seconds; never past the parent's `exp`. */
  expiresIn?: number
  /**
   * How many further delegations are allowed below the child (0 = the delegate cannot delegate).
   * Default: whatever the parent still allows. Must not exceed the parent's remaining depth minus one.
   * (The claim `delegation.max_depth` is absolute: child depth + this value.)
   */
  maxDepth?: number
  budget?: Budget
  maxUses?: number
  /**
   * How many offline hops the child may still make (its `offline.max_hops`); 0 drops the claim.
   * Default: all the parent allows (unchanged at the Authority, one fewer at an offline hop). Never more.
   */
  offlineHops?: number
}

/** Ask for a call credential: one audience, one tool, one argument digest, short-lived, single use. */
export interface CallRequest {
  kind: 'call'
  audience: string
  tool: string
  /** The exact arguments; checked against the constraints and digested into the credential. */
  arguments?: unknown
  /**
   * Offline hops only (`ctx.offlineHop`), instead of `arguments`: the argument digest already in a
   * hop being re-derived by a verifier. The constraints are then checked by the guard at the call.
   */
  argsDigest?: string
  /**
   * Offline hops only: the exact grant the credential carries (one tool, the tool's constraints,
   * `per_call`), which must narrow a parent grant. Default: the parent grant the arguments satisfy.
   */
  grant?: ToolGrant
  scopes?: string[]
  expiresIn?: number
}

/**
 * Ask for an audience credential (cached mode): the same holder and key, one audience, not bound
 * to a call, reusable with a fresh proof per call; it cannot be delegated or narrowed further.
 */
export interface AudienceRequest {
  kind: 'audience'
  audience: string
  /** Default: the parent's grants that apply to this audience. */
  tools?: ToolGrant[]
  scopes?: string[]
  /** Seconds; at most `maxAudienceLifetime` and never past the parent's `exp`. */
  expiresIn?: number
}

export type NarrowingRequest = DelegationRequest | CallRequest | AudienceRequest

export interface NarrowingContext {
  issuer: string
  /** Current time in seconds. */
  now: number
  /** `jti` for the child. */
  jti: string
  /** The parent's compact serialization (its hash is recorded in the child). */
  parentToken: string
  /** tokenHash(parentToken) when the caller has it already (a verifier that just checked it). */
  parentHash?: string
  /** The authenticated caller: must be the parent's current actor, holding the parent's key. */
  caller: { id: string; jkt: string }
  /** Approval to record in a call credential (set by the Authority only). */
  approval?: ApprovalClaim
  maxMandateLifetime?: number
  maxCallLifetime?: number
  /** Cap on an audience credential's lifetime; default {@link DEFAULT_AUDIENCE_LIFETIME}. */
  maxAudienceLifetime?: number
  /**
   * This child is an offline hop signed by the parent's holder, not minted by the Authority: the
   * parent must allow offline attenuation and the child's `offline.max_hops` is one fewer. Set by
   * attenuateMandate and verifyOfflineChain only.
   */
  offlineHop?: boolean
  registry?: ConstraintRegistry
}

/**
 * Derive a child from a verified parent, enforcing every rule of the narrowing rulebook, or throw a
 * MandateError naming the rule. The child may restate or narrow the parent, never widen it.
 */
export function narrowMandate(parent: MandateClaims, request: NarrowingRequest, ctx: NarrowingContext): MandateClaims {
  const registry = ctx.registry ?? defaultConstraintRegistry
  assertKnownRequestMembers(request)
  if (parent.call) throw new MandateError('NARROWING_CHAIN', 'a call credential cannot be exchanged further')
  // terminal: its holder still holds the mandate it came from, and narrows that one instead
  if (parent.credential !== undefined) throw new MandateError('NARROWING_CHAIN', 'an audience credential cannot be exchanged or narrowed further')
  if (ctx.offlineHop) {
    if (!parent.offline) throw new MandateError('ATTENUATION_NOT_ALLOWED', 'the mandate does not allow offline attenuation')
    if (ctx.approval) throw new MandateError('NARROWING_CLAIM', 'an offline hop cannot carry an approval')
  }
  if (ctx.caller.id !== parent.client_id || ctx.caller.jkt !== parent.cnf.jkt) {
    throw new MandateError('NARROWING_CHAIN', 'only the current holder of a mandate can exchange it')
  }
  if (ctx.now >= parent.exp) throw new MandateError('NARROWING_TIME', 'the parent mandate has expired')

  const parentAud = audienceList(parent.aud)
  const parentScopes = parent.scope === undefined ? [] : parseScope(parent.scope)
  if (request.scopes !== undefined && !Array.isArray(request.scopes)) throw new MandateError('NARROWING_SCOPE', 'scopes must be an array of scope tokens')
  const requestedScopes = request.scopes ?? parentScopes
  for (let i = 0; i < requestedScopes.length; i++) parseScope(requestedScopes[i])
  assertScopesNarrow(parentScopes, requestedScopes)

  const { nbf, exp } = childTimes(parent, request, ctx)
  const delegation = {
    depth: parent.delegation.depth,
    max_depth: parent.delegation.max_depth,
    parent: parent.jti,
    parent_hash: ctx.parentHash ?? tokenHash(ctx.parentToken),
    ancestors: [...parent.delegation.ancestors, parent.jti],
  }
  const purpose = parent.purpose
  const scope = requestedScopes.length ? formatScope(requestedScopes) : undefined

  if (request.kind === 'call') {
    const audience = assertAudience(request.audience, 'resource')
    if (!parentAud.includes(audience)) throw new MandateError('NARROWING_AUDIENCE', 'the audience is not allowed by the parent mandate')
    assertToolName(request.tool)
    const { grant, args } = callGrant(parent, parentAud, audience, request, ctx, registry)
    // one literal in claim order (the signed JSON keeps this order), optional members added after
    const claims: MandateClaims = {
      iss: ctx.issuer, sub: parent.sub, iat: ctx.now, nbf, exp, jti: ctx.jti, txn: parent.txn,
      ...(purpose !== undefined ? { purpose } : {}),
      ...(scope !== undefined ? { scope } : {}),
      aud: audience,
      client_id: parent.client_id,
      act: parent.act,
      authorization_details: [grant],
      cnf: { jkt: parent.cnf.jkt },
      delegation,
      call: { tool: request.tool, args },
      max_uses: 1,
    }
    if (parent.budget) claims.budget = parent.budget
    if (ctx.approval) claims.approval = ctx.approval
    return claims
  }

  if (request.kind === 'audience') {
    const audience = assertAudience(request.audience, 'resource')
    if (!parentAud.includes(audience)) throw new MandateError('NARROWING_AUDIENCE', 'the audience is not allowed by the parent mandate')
    const only = [audience]
    const tools = request.tools
      ? boundedGrants(request.tools).map((t) => assertGrantNarrows(parent, parentAud, only, t, registry))
      : inheritGrants(parent.authorization_details, only)
    if (tools.length === 0) throw new MandateError('NARROWING_TOOL', 'the parent mandate grants no tool at this audience')
    assertPerCallKept(parent.authorization_details, parentAud, tools, only)
    const claims: MandateClaims = {
      iss: ctx.issuer, sub: parent.sub, iat: ctx.now, nbf, exp, jti: ctx.jti, txn: parent.txn,
      ...(purpose !== undefined ? { purpose } : {}),
      ...(scope !== undefined ? { scope } : {}),
      aud: audience,
      client_id: parent.client_id,
      act: parent.act,
      authorization_details: tools,
      cnf: { jkt: parent.cnf.jkt },
      // like a call credential's (same depth, parent recorded), and nothing can be delegated below it
      delegation: { ...delegation, max_depth: delegation.depth },
      credential: AUDIENCE_CREDENTIAL,
    }
    if (parent.budget) claims.budget = parent.budget
    if (parent.max_uses !== undefined) claims.max_uses = parent.max_uses
    return claims
  }

  if (request.kind !== 'delegation') throw new MandateError('NARROWING_CLAIM', 'unknown request kind')
  // delegation: the chain grows by exactly one actor, bound to the delegate's key
  const depth = parent.delegation.depth + 1
  if (depth > parent.delegation.max_depth) {
    throw new MandateError('NARROWING_DEPTH', 'delegation depth would exceed the maximum', { detail: { max_depth: parent.delegation.max_depth } })
  }
  // the request counts further delegations below the child; the claim is absolute
  const remaining = parent.delegation.max_depth - depth
  if (request.maxDepth !== undefined && (!Number.isSafeInteger(request.maxDepth) || request.maxDepth < 0)) {
    throw new MandateError('NARROWING_DEPTH', 'max depth must be a non-negative integer (further delegations allowed)')
  }
  if (request.maxDepth !== undefined && request.maxDepth > remaining) {
    throw new MandateError('NARROWING_DEPTH', `max depth cannot grow: at most ${remaining} further delegation(s) are left`, { detail: { remaining } })
  }
  const maxDepth = depth + (request.maxDepth ?? remaining)
  if (maxDepth > MAX_DEPTH_LIMIT) throw new MandateError('NARROWING_DEPTH', `max depth is at most ${MAX_DEPTH_LIMIT}`)
  if (typeof request.actor !== 'object' || request.actor === null || typeof request.actor.id !== 'string' || typeof request.actor.jkt !== 'string') {
    throw new MandateError('NARROWING_CHAIN', 'a delegation names its delegate: actor { id, jkt }')
  }
  // a repeated agent adds no authority and makes attribution ambiguous (docs/protocol.md, chain rules)
  if (actorChain(parent.act).includes(request.actor.id)) {
    throw new MandateError('NARROWING_CHAIN', 'the delegate already appears in the actor chain', { detail: { rule: 'repeated-actor' } })
  }

  if (request.audiences !== undefined && !Array.isArray(request.audiences)) throw new MandateError('NARROWING_AUDIENCE', 'audiences must be an array of audience URIs')
  const audiences = request.audiences ?? parentAud
  if (audiences.length === 0 || audiences.length > 16) throw new MandateError('NARROWING_AUDIENCE', 'a mandate needs 1 to 16 audiences')
  for (const a of audiences) {
    assertAudience(a, 'audience')
    if (!parentAud.includes(a)) throw new MandateError('NARROWING_AUDIENCE', 'an audience is not allowed by the parent mandate', { detail: { audience: a } })
  }
  const tools = request.tools
    ? boundedGrants(request.tools).map((t) => assertGrantNarrows(parent, parentAud, audiences, t, registry))
    : inheritGrants(parent.authorization_details, audiences)
  assertPerCallKept(parent.authorization_details, parentAud, tools, audiences)
  const offline = narrowOffline(parent.offline, request.offlineHops, ctx.offlineHop === true)

  const claims: MandateClaims = {
    iss: ctx.issuer, sub: parent.sub, iat: ctx.now, nbf, exp, jti: ctx.jti, txn: parent.txn,
    ...(purpose !== undefined ? { purpose } : {}),
    ...(scope !== undefined ? { scope } : {}),
    aud: audiences.length === 1 ? (audiences[0] as string) : [...audiences],
    client_id: request.actor.id,
    act: { sub: request.actor.id, act: parent.act },
    authorization_details: tools,
    cnf: { jkt: request.actor.jkt },
    delegation: { depth, max_depth: maxDepth, parent: delegation.parent, parent_hash: delegation.parent_hash, ancestors: delegation.ancestors },
  }
  const budget = narrowBudget(parent.budget, request.budget)
  if (budget) claims.budget = budget
  const uses = narrowUses(parent.max_uses, request.maxUses)
  if (uses !== undefined) claims.max_uses = uses
  if (offline) claims.offline = offline
  return claims
}

const REQUEST_MEMBERS: Record<NarrowingRequest['kind'], ReadonlySet<string>> = {
  delegation: new Set(['kind', 'actor', 'audiences', 'scopes', 'tools', 'expiresIn', 'maxDepth', 'budget', 'maxUses', 'offlineHops']),
  call: new Set(['kind', 'audience', 'tool', 'arguments', 'argsDigest', 'grant', 'scopes', 'expiresIn']),
  audience: new Set(['kind', 'audience', 'tools', 'scopes', 'expiresIn']),
}

/**
 * The child's `offline` claim. Minted by the Authority, a delegation keeps what the parent allows
 * (the count is task-wide along any path: the Authority never resets it); at an offline hop the
 * parent must allow one and the child keeps one fewer; a request may only lower it, and 0 drops it.
 */
function narrowOffline(parent: OfflineClaim | undefined, requested: number | undefined, offlineHop: boolean): OfflineClaim | undefined {
  if (requested !== undefined && (!Number.isSafeInteger(requested) || requested < 0 || requested > MAX_OFFLINE_HOPS)) {
    throw new MandateError('NARROWING_CLAIM', `offline hops must be an integer 0..${MAX_OFFLINE_HOPS}`)
  }
  const allowed = parent ? parent.max_hops - (offlineHop ? 1 : 0) : 0
  if (requested !== undefined && requested > allowed) {
    throw new MandateError('NARROWING_CLAIM', `offline attenuation cannot grow: at most ${allowed} offline hop(s) are left`, { detail: { rule: 'offline', remaining: allowed } })
  }
  const n = requested ?? allowed
  return n > 0 ? { max_hops: n } : undefined
}

function boundedGrants(tools: unknown): ToolGrant[] {
  if (!Array.isArray(tools) || tools.length > 32) throw new MandateError('NARROWING_CLAIM', 'tools must be an array of at most 32 grants')
  return tools as ToolGrant[]
}

/**
 * The single grant and the argument digest of a call credential. With arguments (the Authority,
 * or a holder attenuating): the first parent grant that covers the tool at the audience and whose
 * constraints the arguments satisfy, preferring one without `per_call`; its constraints and
 * `per_call` are copied. With a digest (a verifier re-deriving an offline call hop): the requested
 * grant must narrow a parent grant at this audience; the guard checks the arguments at the call.
 */
function callGrant(parent: MandateClaims, parentAud: string[], audience: string, request: CallRequest, ctx: NarrowingContext, registry: ConstraintRegistry): { grant: ToolGrant; args: string } {
  const hasDigest = request.argsDigest !== undefined
  if ((hasDigest || request.grant !== undefined) && !ctx.offlineHop) {
    throw new MandateError('NARROWING_CLAIM', 'argsDigest and grant are only for offline hops')
  }
  // absent arguments are `{}` (an MCP call without arguments), so only both together are ambiguous
  if (hasDigest && request.arguments !== undefined) throw new MandateError('NARROWING_CLAIM', 'a call request names either its arguments or (offline) their digest')
  let args: string
  let snapshot: JsonValue | undefined
  if (hasDigest) {
    if (typeof request.argsDigest !== 'string' || !DIGEST.test(request.argsDigest)) throw new MandateError('NARROWING_CLAIM', 'argsDigest must be a SHA-256 digest')
    args = request.argsDigest
  } else {
    // one snapshot for the constraint check and the digest: a live object cannot answer twice
    snapshot = snapshotArguments(request.arguments)
    args = digestOfSnapshot(snapshot)
  }
  if (request.grant !== undefined) {
    const g = assertGrantNarrows(parent, parentAud, [audience], request.grant, registry)
    if (g.tools.length !== 1 || g.tools[0] !== request.tool || g.locations !== undefined) {
      throw new MandateError('NARROWING_CLAIM', 'a call credential grants exactly its tool, with no locations')
    }
    if (snapshot !== undefined) assertArgumentsSatisfy(g.constraints, snapshot, registry)
    return { grant: g, args }
  }
  const chosen = snapshot !== undefined ? grantForCall(parent, audience, request.tool, snapshot, registry) : grantForTool(parent, audience, request.tool)
  const detail: ToolGrant = { type: TOOL_ACCESS_TYPE, tools: [request.tool] }
  if (chosen.constraints) detail.constraints = chosen.constraints
  if (chosen.per_call) detail.per_call = true
  return { grant: detail, args }
}

/** Without arguments: the first grant covering the tool at the audience, preferring one without `per_call`. */
function grantForTool(parent: MandateClaims, audience: string, tool: string): ToolGrant {
  const parentAud = audienceList(parent.aud)
  let perCall: ToolGrant | undefined
  for (const g of parent.authorization_details) {
    if (!grantLocations(g, parentAud).includes(audience)) continue
    if (!g.tools.some((p) => toolMatches(p, tool))) continue
    if (!g.per_call) return g
    perCall ??= g
  }
  if (perCall) return perCall
  throw new MandateError('NARROWING_TOOL', `tool "${tool}" is not granted for this audience`, { detail: { tool } })
}

/** Fail closed on request members we do not understand (e.g. an attempt to set `sub`, `txn` or `approval`). */
function assertKnownRequestMembers(request: NarrowingRequest): void {
  if (typeof request !== 'object' || request === null) throw new MandateError('NARROWING_CLAIM', 'narrowing request must be an object')
  const allowed = REQUEST_MEMBERS[request.kind]
  if (!allowed || !Object.hasOwn(REQUEST_MEMBERS, request.kind)) throw new MandateError('NARROWING_CLAIM', 'unknown request kind')
  for (const k of Object.keys(request)) {
    if (!allowed.has(k)) throw new MandateError('NARROWING_CLAIM', `unknown request member "${k.slice(0, 32)}"`, { detail: { member: k.slice(0, 32) } })
  }
}

function childTimes(parent: MandateClaims, request: NarrowingRequest, ctx: NarrowingContext): { nbf: number; exp: number } {
  const cap = request.kind === 'call'
    ? (ctx.maxCallLifetime ?? DEFAULT_CALL_LIFETIME)
    : request.kind === 'audience'
      ? (ctx.maxAudienceLifetime ?? DEFAULT_AUDIENCE_LIFETIME)
      : (ctx.maxMandateLifetime ?? DEFAULT_MAX_MANDATE_LIFETIME)
  const nbf = Math.max(ctx.now, parent.nbf)
  let exp: number
  if (request.expiresIn !== undefined) {
    if (!Number.isSafeInteger(request.expiresIn) || request.expiresIn <= 0) throw new MandateError('NARROWING_TIME', 'lifetime must be a positive integer')
    if (request.expiresIn > cap) throw new MandateError('NARROWING_TIME', `lifetime exceeds the ${cap}s cap`, { detail: { cap } })
    exp = ctx.now + request.expiresIn
    if (exp > parent.exp) throw new MandateError('NARROWING_TIME', 'the child would outlive its parent')
  } else {
    exp = Math.min(parent.exp, ctx.now + cap)
  }
  if (exp <= nbf) throw new MandateError('NARROWING_TIME', 'the child would have no valid lifetime')
  return { nbf, exp }
}

function grantLocations(grant: ToolGrant, aud: readonly string[]): string[] {
  return grant.locations ?? [...aud]
}

/** The first parent grant that covers the tool at the audience and whose constraints the arguments satisfy. */
function grantForCall(parent: MandateClaims, audience: string, tool: string, args: JsonValue, registry: ConstraintRegistry): ToolGrant {
  const parentAud = audienceList(parent.aud)
  let constraintError: MandateError | undefined
  let perCall: ToolGrant | undefined
  for (const g of parent.authorization_details) {
    if (!grantLocations(g, parentAud).includes(audience)) continue
    if (!g.tools.some((p) => toolMatches(p, tool))) continue
    try {
      assertArgumentsSatisfy(g.constraints, args, registry)
      // a grant without per_call authorizes more ways of calling: prefer it
      if (!g.per_call) return g
      perCall ??= g
    } catch (err) {
      if (!MandateError.is(err)) throw err
      constraintError ??= new MandateError('NARROWING_CONSTRAINT', err.message, { detail: err.detail ?? {} })
    }
  }
  if (perCall) return perCall
  throw constraintError ?? new MandateError('NARROWING_TOOL', `tool "${tool}" is not granted for this audience`, { detail: { tool } })
}

/** @internal shared with template.ts (one implementation of the rule). */
export function assertGrantNarrows(parent: MandateClaims, parentAud: string[], childAud: string[], requested: ToolGrant, registry: ConstraintRegistry): ToolGrant {
  if (requested?.type !== TOOL_ACCESS_TYPE) throw new MandateError('NARROWING_CLAIM', 'unknown authorization_details type')
  const child = parseToolGrant(requested, registry)
  const locations = child.locations ?? childAud
  for (const l of locations) {
    if (!childAud.includes(l)) throw new MandateError('NARROWING_AUDIENCE', 'a tool grant names an audience outside the child mandate', { detail: { audience: l } })
  }
  let firstError: MandateError | undefined
  for (const p of parent.authorization_details) {
    const pl = grantLocations(p, parentAud)
    if (!locations.every((l) => pl.includes(l))) continue
    if (!child.tools.every((c) => p.tools.some((pp) => patternCovers(pp, c)))) continue
    // dropping per_call would let a cached or offline credential call what needed the Authority
    if (p.per_call && !child.per_call) {
      firstError ??= new MandateError('NARROWING_TOOL', 'the parent grant requires per-call credentials (per_call) and the child must keep it', { detail: { rule: 'per-call' } })
      continue
    }
    try {
      assertConstraintsNarrow(p.constraints, child.constraints, registry)
      return child
    } catch (err) {
      if (!MandateError.is(err)) throw err
      firstError ??= err
    }
  }
  throw firstError ?? new MandateError('NARROWING_TOOL', 'a requested tool is not covered by the parent mandate', { detail: { tools: child.tools.join(' ').slice(0, 200) } })
}

/** @internal shared with template.ts (one implementation of the rule). */
export function inheritGrants(grants: readonly ToolGrant[], childAud: readonly string[]): ToolGrant[] {
  const out: ToolGrant[] = []
  for (const g of grants) {
    if (!g.locations) {
      out.push(g)
      continue
    }
    const kept = g.locations.filter((l) => childAud.includes(l))
    if (kept.length) out.push({ ...g, locations: kept })
  }
  return out
}

/** @internal shared with template.ts (one implementation of the rule). */
export function narrowBudget(parent: Budget | undefined, requested: Budget | undefined): Budget | undefined {
  if (!requested) return parent
  if (typeof requested.amount !== 'number' || !Number.isFinite(requested.amount) || requested.amount < 0 || typeof requested.unit !== 'string' || !requested.unit) {
    throw new MandateError('NARROWING_BUDGET', 'budget must be a non-negative amount with a unit')
  }
  if (!parent) return { amount: requested.amount, unit: requested.unit }
  if (requested.unit !== parent.unit) throw new MandateError('NARROWING_BUDGET', 'budget unit cannot change')
  if (requested.amount > parent.amount) throw new MandateError('NARROWING_BUDGET', 'budget cannot grow')
  return { amount: requested.amount, unit: requested.unit }
}

/** @internal shared with template.ts (one implementation of the rule). */
export function narrowUses(parent: number | undefined, requested: number | undefined): number | undefined {
  if (requested === undefined) return parent
  if (!Number.isSafeInteger(requested) || requested < 1) throw new MandateError('NARROWING_BUDGET', 'max uses must be a positive integer')
  if (parent !== undefined && requested > parent) throw new MandateError('NARROWING_BUDGET', 'max uses cannot grow')
  return requested
}

/** What a host application asks for when it grants a root task mandate. */
export interface RootGrantRequest {
  subject: string
  agent: { id: string; jkt: string }
  purpose?: string
  /** Task id; generated when absent. */
  txn?: string
  audiences: string[]
  scopes?: string[]
  tools: ToolGrant[]
  expiresIn?: number
  /** How many delegations are allowed below the root (0 = the agent cannot delegate). Default 3. */
  maxDepth?: number
  budget?: Budget
  maxUses?: number
  /** Allow the agent to attenuate offline, at most `maxHops` (1..8) holder-signed hops. Authority only. */
  offline?: { maxHops: number }
}

/** Build the claims of a root task mandate (depth 0; the agent is the first actor). */
export function buildRootMandate(req: RootGrantRequest, ctx: { issuer: string; now: number; jti: string; txn: string; maxMandateLifetime?: number }): MandateClaims {
  const cap = ctx.maxMandateLifetime ?? DEFAULT_MAX_MANDATE_LIFETIME
  const lifetime = req.expiresIn ?? Math.min(3600, cap)
  if (!Number.isSafeInteger(lifetime) || lifetime <= 0 || lifetime > cap) throw new MandateError('NARROWING_TIME', `lifetime must be 1..${cap} seconds`)
  const maxDepth = req.maxDepth ?? 3
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 0 || maxDepth > MAX_DEPTH_LIMIT) throw new MandateError('NARROWING_DEPTH', `max depth must be 0..${MAX_DEPTH_LIMIT}`)
  if (req.audiences.length === 0 || req.audiences.length > 16) throw new MandateError('NARROWING_AUDIENCE', 'a mandate needs 1 to 16 audiences')
  req.audiences.forEach((a) => assertAudience(a, 'audience'))
  const scopes = req.scopes ?? []
  const claims: MandateClaims = {
    iss: ctx.issuer,
    sub: req.subject,
    aud: req.audiences.length === 1 ? (req.audiences[0] as string) : [...req.audiences],
    iat: ctx.now,
    nbf: ctx.now,
    exp: ctx.now + lifetime,
    jti: ctx.jti,
    client_id: req.agent.id,
    act: { sub: req.agent.id },
    txn: req.txn ?? ctx.txn,
    authorization_details: req.tools.map((t) => ({ ...t, type: TOOL_ACCESS_TYPE })),
    cnf: { jkt: req.agent.jkt },
    delegation: { depth: 0, max_depth: maxDepth, ancestors: [] },
  }
  if (scopes.length) claims.scope = formatScope(scopes)
  if (req.purpose !== undefined) claims.purpose = req.purpose
  if (req.budget) claims.budget = narrowBudget(undefined, req.budget) as Budget
  if (req.maxUses !== undefined) claims.max_uses = narrowUses(undefined, req.maxUses) as number
  if (req.offline !== undefined) {
    const n = req.offline?.maxHops
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_OFFLINE_HOPS) throw new MandateError('NARROWING_CLAIM', `offline max hops must be 1..${MAX_OFFLINE_HOPS}`)
    claims.offline = { max_hops: n }
  }
  return claims
}
