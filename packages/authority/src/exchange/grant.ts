/**
 * Root task grant: a registered grantor asks for a task mandate for a registered agent
 * (in-process `authority.grant`, or HTTP `grant_type=urn:mandate:grant-type:task`).
 */
import {
  buildRootMandate, MandateError, randomId, signMandate, tokenHash, audienceList,
  type Budget, type JsonValue, type ToolGrant,
} from '@mandate/core'
import { nowSec, type AuthorityContext } from '../context.js'
import type { IssuedMandate, RefusalFields } from './issued.js'
import { budgetParam, intParam, LIMITS, onlyMembers, resourceList, scopeList, toolList } from './params.js'
import { admitPrincipal } from './principals.js'
import { markPerCallGrants, perCallTools } from './call_modes.js'
import type { FederatedIdentity } from '../federation/types.js'
import { INVISIBLE_OR_CONTROL } from '../observability/display_text.js'
import { hasUnsafeLineText } from '../audit/reason_text.js'
import type { AgentRecord } from '../types.js'

export interface GrantParams {
  /** did of the grantor (role grantor or admin). */
  grantor: string
  /** The user or system the work is for. */
  subject: string
  /** did:key of the agent that will hold the mandate. */
  agent: string
  purpose?: string
  audiences: string[]
  scopes?: string[]
  tools: ToolGrant[]
  /** seconds */
  expiresIn?: number
  maxDepth?: number
  budget?: Budget
  maxUses?: number
  /** Task id; generated when absent. */
  txn?: string
  /**
   * Allow the holder to attenuate the mandate offline, by at most `maxHops` holder-signed hops
   * (1..8, and at most the Authority's `maxOfflineHops`). Refused unless the Authority enables
   * `callModes.offline` (ATTENUATION_NOT_ALLOWED).
   */
  offline?: { maxHops: number }
}

const TXN = /^[A-Za-z0-9._:-]{1,128}$/
// '#' and the signs read as one (♯ ⌗ ⋕, and whatever NFKC folds to '#', checked separately), and
// every character that is invisible or not a character: controls, format characters (bidi, zero-width),
// line and paragraph separators, default-ignorable code points (soft hyphen, fillers, variation
// selectors), private use, unassigned and lone surrogates. Properties, not a list of look-alikes.
const HASH_SIGNS = /[#\u266f\u2317\u22d5]/

function looksFederated(subject: string): boolean {
  return HASH_SIGNS.test(subject) || INVISIBLE_OR_CONTROL.test(subject) || subject.normalize('NFKC').includes('#')
}
const GRANT_MEMBERS = ['grantor', 'subject', 'agent', 'purpose', 'audiences', 'scopes', 'tools', 'expiresIn', 'maxDepth', 'budget', 'maxUses', 'txn', 'offline'] as const

/**
 * Check grant parameters as strictly as the task grant's form parse (same bounds and element
 * parsers, params.ts); members a grant does not define are refused. Both paths run it.
 */
export function checkGrantParams(v: unknown, federated = false): GrantParams {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MandateError('INVALID_REQUEST', 'grant parameters must be an object')
  const p = v as Record<string, unknown>
  onlyMembers(p, GRANT_MEMBERS, 'grant')
  if (typeof p.subject !== 'string' || p.subject.length === 0 || p.subject.length > 512) throw new MandateError('INVALID_REQUEST', 'subject must be a non-empty string of at most 512 characters')
  // `<issuer>#<sub>` is how federated grants name an external identity: a grantor asserting a
  // subject by itself cannot take that form (it would pass for an IdP-verified identity)
  if (!federated && looksFederated(p.subject)) throw new MandateError('INVALID_REQUEST', 'subject must not contain "#" or a look-alike, nor control, zero-width or bidi characters (reserved for identities verified under a federation rule: use the jwt-bearer grant)')
  if (typeof p.agent !== 'string' || p.agent.length === 0) throw new MandateError('INVALID_REQUEST', 'agent is required')
  if (p.txn !== undefined && (typeof p.txn !== 'string' || !TXN.test(p.txn))) throw new MandateError('INVALID_REQUEST', 'txn must be 1..128 characters of [A-Za-z0-9._:-]')
  if (p.purpose !== undefined && (typeof p.purpose !== 'string' || p.purpose.length > 1024)) throw new MandateError('INVALID_REQUEST', 'purpose must be a string of at most 1024 characters')
  // shown to approvers (dashboard, CLI): no terminal escapes, no bidi overrides that reorder what they read
  if (p.purpose !== undefined && hasUnsafeLineText(p.purpose)) throw new MandateError('INVALID_REQUEST', 'purpose must not contain control, bidi or invisible characters')
  const out: GrantParams = {
    grantor: p.grantor as string, subject: p.subject, agent: p.agent,
    audiences: resourceList(p.audiences), tools: toolList(p.tools),
  }
  if (p.purpose !== undefined) out.purpose = p.purpose as string
  if (p.txn !== undefined) out.txn = p.txn as string
  if (p.scopes !== undefined) out.scopes = scopeList(p.scopes)
  if (p.expiresIn !== undefined) out.expiresIn = intParam(p.expiresIn, 'expiresIn', ...LIMITS.mandateExpiresIn)
  if (p.maxDepth !== undefined) out.maxDepth = intParam(p.maxDepth, 'maxDepth', ...LIMITS.maxDepth)
  if (p.budget !== undefined) out.budget = budgetParam(p.budget)
  if (p.maxUses !== undefined) out.maxUses = intParam(p.maxUses, 'maxUses', ...LIMITS.maxUses)
  if (p.offline !== undefined) {
    const o = p.offline
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new MandateError('INVALID_REQUEST', 'offline must be { maxHops }')
    onlyMembers(o, ['maxHops'], 'grant offline')
    out.offline = { maxHops: intParam((o as { maxHops?: unknown }).maxHops, 'offline.maxHops', ...LIMITS.offlineHops) }
  }
  return out
}

/** The `offline` claim a grant asks for, if the Authority allows it (ATTENUATION_NOT_ALLOWED otherwise). */
function offlineClaim(ctx: AuthorityContext, offline: GrantParams['offline']): { max_hops: number } | undefined {
  if (offline === undefined) return undefined
  if (!ctx.callModes.offline) throw new MandateError('ATTENUATION_NOT_ALLOWED', 'this Authority does not grant offline attenuation (callModes.offline is off)')
  if (offline.maxHops > ctx.callModes.maxOfflineHops) {
    throw new MandateError('ATTENUATION_NOT_ALLOWED', `at most ${ctx.callModes.maxOfflineHops} offline hop(s) can be granted`, { detail: { max_offline_hops: ctx.callModes.maxOfflineHops } })
  }
  return { max_hops: offline.maxHops }
}

export async function grantRootMandate(ctx: AuthorityContext, input: GrantParams, info: RefusalFields = {}): Promise<IssuedMandate> {
  if (typeof input === 'object' && input !== null && typeof input.grantor === 'string') info.agent = input.grantor.slice(0, 2048)
  // the grantor is admitted here for both paths (HTTP clients were authenticated already; the
  // in-process grant names its grantor): a revoked or disabled grantor grants nothing
  const grantor = await admitPrincipal(ctx.store, input?.grantor, { code: 'UNAUTHORIZED_CLIENT', as: 'grantor', roles: ['grantor', 'admin'], now: ctx.now() })
  if (typeof input.subject === 'string') info.subject = input.subject.slice(0, 512)
  if (typeof input.agent === 'string') info.recipient = input.agent.slice(0, 2048)
  return issueRootMandate(ctx, input, { grantor }, info)
}

/** Who stands behind a root mandate: a registered grantor, an external identity under a federation rule, or both. */
export interface RootAuthority {
  /** The registered grantor (host app); absent for a workload agent admitted by its own platform token. */
  grantor?: AgentRecord
  /** The external identity the task is for (subject rules) or the workload the agent runs as (agent rules). */
  federation?: FederatedIdentity & { kind: 'subject' | 'agent' }
  /** Runs after every check and the policy decision, just before signing (e.g. spend the external token's jti). */
  beforeIssue?: () => Promise<void>
}

/**
 * Issue a root mandate (parameters checked here, by checkGrantParams): policy, per-call marking, signature, the stored
 * record and its audit record in one transaction. The caller has admitted whoever stands behind it.
 */
export async function issueRootMandate(ctx: AuthorityContext, params: GrantParams, by: RootAuthority, info: RefusalFields = {}): Promise<IssuedMandate> {
  const { grantor, federation } = by
  params = checkGrantParams(params, federation !== undefined)
  const agent = await ctx.store.getAgent(params.agent)
  if (!agent || agent.disabled || agent.role !== 'agent') throw new MandateError('INVALID_REQUEST', 'agent must be a registered, enabled agent')
  if (agent.expiresAt !== undefined && agent.expiresAt <= ctx.now()) throw new MandateError('INVALID_REQUEST', 'the agent\'s registration has expired')
  const tools = params.tools
  const scopes = params.scopes ?? []
  const now = nowSec(ctx)
  const txn = params.txn ?? randomId()
  info.txn = txn
  // a task is one root grant: a caller-chosen id never joins a task someone else started
  if (params.txn !== undefined && await ctx.store.hasTask(params.txn)) throw new MandateError('INVALID_REQUEST', 'this txn is already in use by another task; choose a new one or omit it')
  const claims = buildRootMandate(
    {
      subject: params.subject, agent: { id: agent.did, jkt: agent.jkt }, audiences: params.audiences, tools, scopes,
      ...(params.purpose !== undefined ? { purpose: params.purpose } : {}),
      ...(params.expiresIn !== undefined ? { expiresIn: params.expiresIn } : {}),
      ...(params.maxDepth !== undefined ? { maxDepth: params.maxDepth } : {}),
      ...(params.budget !== undefined ? { budget: params.budget } : {}),
      ...(params.maxUses !== undefined ? { maxUses: params.maxUses } : {}),
    },
    { issuer: ctx.issuer, now, jti: randomId(), txn, maxMandateLifetime: ctx.limits.maxMandateLifetime },
  )
  // an agent registered for a bounded time holds nothing that outlives its registration
  if (agent.expiresAt !== undefined && claims.exp > Math.floor(agent.expiresAt / 1000)) claims.exp = Math.floor(agent.expiresAt / 1000)
  for (const g of claims.authorization_details) {
    for (const l of g.locations ?? []) if (!audienceList(claims.aud).includes(l)) throw new MandateError('NARROWING_AUDIENCE', 'a tool grant names an audience outside the mandate')
  }
  const offline = offlineClaim(ctx, params.offline)
  if (offline) claims.offline = offline
  const requester = grantor?.did ?? agent.did
  const decision = await ctx.policy.evaluate({
    operation: 'grant', subject: claims.sub, agent: requester, actorChain: [], recipient: agent.did, txn,
    audiences: audienceList(claims.aud), tools: claims.authorization_details.flatMap((g) => g.tools), scopes,
  })
  if (decision.effect !== 'allow') {
    throw new MandateError('POLICY_DENIED', decision.reason ?? (decision.effect === 'deny' ? 'policy denies this grant' : 'policy requires approval, which applies to call credentials only'), { detail: decision.rule ? { rule: decision.rule } : {} })
  }
  await markPerCallGrants(ctx.policy, ctx.callModes, claims, { agent: requester, recipient: agent.did, actorChain: [] })
  if (by.beforeIssue) await by.beforeIssue()
  const token = signMandate(claims, ctx.keys.current)
  const fields: Record<string, JsonValue> = {
    jti: claims.jti, txn, subject: claims.sub, agent: agent.did, ...(grantor ? { grantor: grantor.did } : {}), audiences: audienceList(claims.aud),
    tools: claims.authorization_details.flatMap((g) => g.tools), exp: claims.exp, max_depth: claims.delegation.max_depth, token_hash: tokenHash(token),
  }
  if (federation) fields.federation = federationFields(federation)
  if (claims.scope !== undefined) fields.scope = claims.scope
  if (claims.purpose !== undefined) fields.purpose = claims.purpose
  if (claims.max_uses !== undefined) fields.max_uses = claims.max_uses
  if (claims.budget !== undefined) fields.budget = { amount: claims.budget.amount, unit: claims.budget.unit }
  const perCall = perCallTools(claims)
  if (perCall.length) fields.per_call_tools = perCall
  if (claims.offline) fields.offline_max_hops = claims.offline.max_hops
  const result = await ctx.store.issueMandate({
    mandate: {
      // the grantor is kept with the task: revoking that principal revokes what it granted
      jti: claims.jti, txn, subject: claims.sub, holder: agent.did, ...(grantor ? { grantor: grantor.did } : {}), kind: 'root', depth: 0, iat: claims.iat, exp: claims.exp,
      tokenHash: tokenHash(token), uses: 0, claims, ...(claims.max_uses !== undefined ? { maxUses: claims.max_uses } : {}),
    },
    // re-checked in the transaction: the grantor revoked meanwhile grants nothing either
    revocation: { ids: [], txn, actors: grantor ? [agent.did, grantor.did] : [agent.did] },
    audit: ctx.audit.draft('grant', fields),
  })
  if (!result.ok) throw new MandateError('REVOKED', 'the task, the agent or the grantor has been revoked')
  await ctx.audit.recorded(result.audit)
  return { token, claims, expiresIn: claims.exp - now }
}

/** The audit form of an external identity (never the external token itself). */
export function federationFields(f: FederatedIdentity & { kind: 'subject' | 'agent' }): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = { kind: f.kind, iss: f.iss, sub: f.sub, rule: f.rule }
  if (f.name !== undefined) out.name = f.name
  if (f.email !== undefined) out.email = f.email
  return out
}
