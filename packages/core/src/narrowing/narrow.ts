import type { JsonValue } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import { digestOfSnapshot, tokenHash } from '../mandate/args_digest.js'
import { snapshotArguments } from '../mandate/args_snapshot.js'
import {
  actorChain, assertAudience, audienceList, MAX_DEPTH_LIMIT, parseToolGrant, TOOL_ACCESS_TYPE,
  type ApprovalClaim, type Budget, type MandateClaims, type ToolGrant,
} from '../mandate/claims.js'
import {
  assertArgumentsSatisfy, assertConstraintsNarrow, defaultConstraintRegistry, type ConstraintRegistry,
} from './constraints.js'
import { assertScopesNarrow, formatScope, parseScope } from './scopes.js'
import { assertToolName, patternCovers, toolMatches } from './tools.js'

export const DEFAULT_MAX_MANDATE_LIFETIME = 24 * 3600
export const DEFAULT_CALL_LIFETIME = 60

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
}

/** Ask for a call credential: one audience, one tool, one argument digest, short-lived, single use. */
export interface CallRequest {
  kind: 'call'
  audience: string
  tool: string
  /** The exact arguments; checked against the constraints and digested into the credential. */
  arguments: unknown
  scopes?: string[]
  expiresIn?: number
}

export type NarrowingRequest = DelegationRequest | CallRequest

export interface NarrowingContext {
  issuer: string
  /** Current time in seconds. */
  now: number
  /** `jti` for the child. */
  jti: string
  /** The parent's compact serialization (its hash is recorded in the child). */
  parentToken: string
  /** The authenticated caller: must be the parent's current actor, holding the parent's key. */
  caller: { id: string; jkt: string }
  /** Approval to record in a call credential (set by the Authority only). */
  approval?: ApprovalClaim
  maxMandateLifetime?: number
  maxCallLifetime?: number
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
  if (ctx.caller.id !== parent.client_id || ctx.caller.jkt !== parent.cnf.jkt) {
    throw new MandateError('NARROWING_CHAIN', 'only the current holder of a mandate can exchange it')
  }
  if (ctx.now >= parent.exp) throw new MandateError('NARROWING_TIME', 'the parent mandate has expired')

  const parentAud = audienceList(parent.aud)
  const parentScopes = parent.scope === undefined ? [] : parseScope(parent.scope)
  const requestedScopes = request.scopes ?? parentScopes
  requestedScopes.forEach((s) => parseScope(s))
  assertScopesNarrow(parentScopes, requestedScopes)

  const { nbf, exp } = childTimes(parent, request, ctx)
  const delegation = {
    depth: parent.delegation.depth,
    max_depth: parent.delegation.max_depth,
    parent: parent.jti,
    parent_hash: tokenHash(ctx.parentToken),
    ancestors: [...parent.delegation.ancestors, parent.jti],
  }
  const purpose = parent.purpose
  const scope = requestedScopes.length ? formatScope(requestedScopes) : undefined

  if (request.kind === 'call') {
    const audience = assertAudience(request.audience, 'resource')
    if (!parentAud.includes(audience)) throw new MandateError('NARROWING_AUDIENCE', 'the audience is not allowed by the parent mandate')
    assertToolName(request.tool)
    // one snapshot for the constraint check and the digest: a live object cannot answer twice
    const args = snapshotArguments(request.arguments)
    const grant = grantForCall(parent, audience, request.tool, args, registry)
    const detail: ToolGrant = { type: TOOL_ACCESS_TYPE, tools: [request.tool] }
    if (grant.constraints) detail.constraints = grant.constraints
    // one literal in claim order (the signed JSON keeps this order), optional members added after
    const claims: MandateClaims = {
      iss: ctx.issuer, sub: parent.sub, iat: ctx.now, nbf, exp, jti: ctx.jti, txn: parent.txn,
      ...(purpose !== undefined ? { purpose } : {}),
      ...(scope !== undefined ? { scope } : {}),
      aud: audience,
      client_id: parent.client_id,
      act: parent.act,
      authorization_details: [detail],
      cnf: { jkt: parent.cnf.jkt },
      delegation,
      call: { tool: request.tool, args: digestOfSnapshot(args) },
      max_uses: 1,
    }
    if (parent.budget) claims.budget = parent.budget
    if (ctx.approval) claims.approval = ctx.approval
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
  // a repeated agent adds no authority and makes attribution ambiguous (docs/protocol.md, chain rules)
  if (actorChain(parent.act).includes(request.actor.id)) {
    throw new MandateError('NARROWING_CHAIN', 'the delegate already appears in the actor chain', { detail: { rule: 'repeated-actor' } })
  }

  const audiences = request.audiences ?? parentAud
  if (audiences.length === 0 || audiences.length > 16) throw new MandateError('NARROWING_AUDIENCE', 'a mandate needs 1 to 16 audiences')
  for (const a of audiences) {
    assertAudience(a, 'audience')
    if (!parentAud.includes(a)) throw new MandateError('NARROWING_AUDIENCE', 'an audience is not allowed by the parent mandate', { detail: { audience: a } })
  }
  const tools = request.tools
    ? request.tools.map((t) => assertGrantNarrows(parent, parentAud, audiences, t, registry))
    : inheritGrants(parent.authorization_details, audiences)

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
  return claims
}

const REQUEST_MEMBERS: Record<NarrowingRequest['kind'], ReadonlySet<string>> = {
  delegation: new Set(['kind', 'actor', 'audiences', 'scopes', 'tools', 'expiresIn', 'maxDepth', 'budget', 'maxUses']),
  call: new Set(['kind', 'audience', 'tool', 'arguments', 'scopes', 'expiresIn']),
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
  const cap = request.kind === 'call' ? (ctx.maxCallLifetime ?? DEFAULT_CALL_LIFETIME) : (ctx.maxMandateLifetime ?? DEFAULT_MAX_MANDATE_LIFETIME)
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
  for (const g of parent.authorization_details) {
    if (!grantLocations(g, parentAud).includes(audience)) continue
    if (!g.tools.some((p) => toolMatches(p, tool))) continue
    try {
      assertArgumentsSatisfy(g.constraints, args, registry)
      return g
    } catch (err) {
      if (!MandateError.is(err)) throw err
      constraintError ??= new MandateError('NARROWING_CONSTRAINT', err.message, { detail: err.detail ?? {} })
    }
  }
  throw constraintError ?? new MandateError('NARROWING_TOOL', `tool "${tool}" is not granted for this audience`, { detail: { tool } })
}

function assertGrantNarrows(parent: MandateClaims, parentAud: string[], childAud: string[], requested: ToolGrant, registry: ConstraintRegistry): ToolGrant {
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

function inheritGrants(grants: readonly ToolGrant[], childAud: readonly string[]): ToolGrant[] {
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

function narrowBudget(parent: Budget | undefined, requested: Budget | undefined): Budget | undefined {
  if (!requested) return parent
  if (typeof requested.amount !== 'number' || !Number.isFinite(requested.amount) || requested.amount < 0 || typeof requested.unit !== 'string' || !requested.unit) {
    throw new MandateError('NARROWING_BUDGET', 'budget must be a non-negative amount with a unit')
  }
  if (!parent) return { amount: requested.amount, unit: requested.unit }
  if (requested.unit !== parent.unit) throw new MandateError('NARROWING_BUDGET', 'budget unit cannot change')
  if (requested.amount > parent.amount) throw new MandateError('NARROWING_BUDGET', 'budget cannot grow')
  return { amount: requested.amount, unit: requested.unit }
}

function narrowUses(parent: number | undefined, requested: number | undefined): number | undefined {
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
  return claims
}
