/**
 * Narrowing a root grant to a template. A federation rule (or any other bound set by an operator)
 * says what a root mandate issued under it may hold at most; the request can only restate or narrow
 * it, by the same comparators a delegation uses (narrow.ts), so "within the template" means exactly
 * what "narrower than the parent" means in the rulebook.
 */
import { MandateError } from '../errors.js'
import { assertAudience, MAX_DEPTH_LIMIT, MAX_OFFLINE_HOPS, TOOL_ACCESS_TYPE, type Budget, type MandateClaims, type ToolGrant } from '../mandate/claims.js'
import { defaultConstraintRegistry, type ConstraintRegistry } from './constraints.js'
import { assertGrantNarrows, inheritGrants, narrowBudget, narrowUses } from './narrow.js'
import { assertScopesNarrow } from './scopes.js'

/** The most a root mandate may hold. */
export interface GrantTemplate {
  audiences: string[]
  tools: ToolGrant[]
  scopes?: string[]
  /** Longest lifetime, seconds. */
  maxLifetime: number
  /** Most delegations below the root (default 0). */
  maxDepth?: number
  budget?: Budget
  maxUses?: number
  /** Most offline hops (default none). */
  offlineHops?: number
}

/** What a grant asks for; every member absent takes the template's value (its lifetime: at most an hour). */
export interface TemplateRequest {
  audiences?: string[]
  tools?: ToolGrant[]
  scopes?: string[]
  expiresIn?: number
  maxDepth?: number
  budget?: Budget
  maxUses?: number
  offlineHops?: number
}

/** A concrete grant within the template (feed it to buildRootMandate). */
export interface TemplatedGrant {
  audiences: string[]
  tools: ToolGrant[]
  scopes: string[]
  expiresIn: number
  maxDepth: number
  budget?: Budget
  maxUses?: number
  /** Offline hops the root may allow; absent: none. */
  offline?: { maxHops: number }
}

/**
 * The grant `request` asks for, checked to lie within `template`, or a MandateError naming the
 * rule it would break (NARROWING_AUDIENCE, NARROWING_TOOL, NARROWING_CONSTRAINT, NARROWING_SCOPE,
 * NARROWING_TIME, NARROWING_DEPTH, NARROWING_BUDGET, ATTENUATION_NOT_ALLOWED).
 */
export function narrowToTemplate(template: GrantTemplate, request: TemplateRequest = {}, registry: ConstraintRegistry = defaultConstraintRegistry): TemplatedGrant {
  const templateAud = template.audiences.map((a) => assertAudience(a, 'template audience'))
  const audiences = request.audiences ?? templateAud
  if (!Array.isArray(audiences) || audiences.length === 0 || audiences.length > 16) throw new MandateError('NARROWING_AUDIENCE', 'a mandate needs 1 to 16 audiences')
  for (const a of audiences) {
    assertAudience(a, 'audience')
    if (!templateAud.includes(a)) throw new MandateError('NARROWING_AUDIENCE', 'an audience is outside what the rule allows', { detail: { audience: a } })
  }
  // the template's grants stand in for a parent mandate's: the same comparator decides coverage
  const parent = { authorization_details: template.tools.map((t) => ({ ...t, type: TOOL_ACCESS_TYPE })) } as Pick<MandateClaims, 'authorization_details'> as MandateClaims
  const tools = request.tools !== undefined
    ? request.tools.map((t) => assertGrantNarrows(parent, templateAud, audiences, { ...t, type: t.type ?? TOOL_ACCESS_TYPE }, registry))
    : inheritGrants(parent.authorization_details, audiences)
  if (tools.length === 0) throw new MandateError('NARROWING_TOOL', 'no tool of the rule applies to the requested audiences')
  const templateScopes = template.scopes ?? []
  const scopes = request.scopes ?? templateScopes
  assertScopesNarrow(templateScopes, scopes)
  const maxLifetime = template.maxLifetime
  if (!Number.isSafeInteger(maxLifetime) || maxLifetime <= 0) throw new MandateError('NARROWING_TIME', 'the template lifetime must be a positive number of seconds')
  const expiresIn = request.expiresIn ?? Math.min(maxLifetime, 3600)
  if (!Number.isSafeInteger(expiresIn) || expiresIn <= 0) throw new MandateError('NARROWING_TIME', 'lifetime must be a positive number of seconds')
  if (expiresIn > maxLifetime) throw new MandateError('NARROWING_TIME', `lifetime cannot exceed the rule's ${maxLifetime} seconds`, { detail: { max_lifetime: maxLifetime } })
  const templateDepth = template.maxDepth ?? 0
  const maxDepth = request.maxDepth ?? templateDepth
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 0 || maxDepth > MAX_DEPTH_LIMIT) throw new MandateError('NARROWING_DEPTH', `max depth must be 0..${MAX_DEPTH_LIMIT}`)
  if (maxDepth > templateDepth) throw new MandateError('NARROWING_DEPTH', `max depth cannot exceed the rule's ${templateDepth}`, { detail: { max_depth: templateDepth } })
  const out: TemplatedGrant = { audiences: [...audiences], tools, scopes: [...scopes], expiresIn, maxDepth }
  const budget = narrowBudget(template.budget, request.budget)
  if (budget) out.budget = budget
  const maxUses = narrowUses(template.maxUses, request.maxUses)
  if (maxUses !== undefined) out.maxUses = maxUses
  const templateHops = template.offlineHops ?? 0
  const hops = request.offlineHops ?? templateHops
  if (!Number.isSafeInteger(hops) || hops < 0 || hops > MAX_OFFLINE_HOPS) throw new MandateError('NARROWING_CLAIM', `offline hops must be 0..${MAX_OFFLINE_HOPS}`)
  if (hops > templateHops) throw new MandateError('ATTENUATION_NOT_ALLOWED', templateHops === 0 ? 'the rule allows no offline attenuation' : `at most ${templateHops} offline hop(s) under this rule`)
  if (hops > 0) out.offline = { maxHops: hops }
  return out
}
