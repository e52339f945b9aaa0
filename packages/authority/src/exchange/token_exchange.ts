/**
 * RFC 8693 token exchange: the authenticated holder of a mandate (client assertion + DPoP proof by
 * the key in its `cnf.jkt`) derives (a) a delegated mandate for another registered agent, or (b) a
 * call credential for one audience, tool and argument set. Every check runs before anything is
 * written; the issuance, use counting, approval consumption and audit record commit together.
 */
import {
  actorChain, argumentsDigest, audienceList, MandateError, narrowMandate, parseScope, signMandate, snapshotArguments, tokenHash,
  type ApprovalClaim, type Budget, type JsonValue, type MandateClaims, type NarrowingRequest, type ToolGrant,
} from '@mandate/core'
import { nowSec, type AuthorityContext } from '../context.js'
import { pooledRandomId } from '../internal/random_id.js'
import type { AgentRecord, ApprovalRecord } from '../types.js'
import type { IssuedMandate, RefusalFields } from './issued.js'
import { budgetParam, intParam, LIMITS, onlyMembers, resourceList, scopeList, strParam, toolList } from './params.js'
import { keepPerCall, markPerCallGrants, perCallTools } from './call_modes.js'

export interface DelegationParams {
  kind: 'delegation'
  subjectToken: string
  /** did:key of the delegate. */
  requestedActor: string
  audiences?: string[]
  scopes?: string[]
  tools?: ToolGrant[]
  expiresIn?: number
  maxDepth?: number
  budget?: Budget
  maxUses?: number
}

export interface CallParams {
  kind: 'call'
  subjectToken: string
  audience: string
  tool: string
  arguments: JsonValue
  scopes?: string[]
  expiresIn?: number
  approvalId?: string
}

/**
 * An audience credential (cached call mode): the caller's own mandate narrowed to one audience, not
 * bound to one call, reused with a fresh proof per call (docs/authority-api.md, "Call modes").
 */
export interface AudienceParams {
  kind: 'audience'
  subjectToken: string
  audience: string
  /** Narrower tool grants; default: the mandate's grants that apply at this audience. */
  tools?: ToolGrant[]
  scopes?: string[]
  expiresIn?: number
}

export type ExchangeParams = DelegationParams | CallParams | AudienceParams

const DELEGATION_MEMBERS = ['kind', 'subjectToken', 'requestedActor', 'audiences', 'scopes', 'tools', 'expiresIn', 'maxDepth', 'budget', 'maxUses'] as const
const CALL_MEMBERS = ['kind', 'subjectToken', 'audience', 'tool', 'arguments', 'scopes', 'expiresIn', 'approvalId'] as const
const AUDIENCE_MEMBERS = ['kind', 'subjectToken', 'audience', 'tools', 'scopes', 'expiresIn'] as const

/** Longest audience credential the Authority issues, seconds (core's default cap; never above maxMandateLifetime). */
export const MAX_AUDIENCE_LIFETIME = 900

/**
 * Check in-process exchange parameters as strictly as the token endpoint parses its form (the same
 * bounds and element parsers, see params.ts), and refuse members the request does not define:
 * what HTTP refuses, the in-process path refuses too, instead of dropping it silently.
 */
export function checkExchangeParams(v: unknown): ExchangeParams {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MandateError('INVALID_REQUEST', 'exchange parameters must be an object')
  const p = v as Record<string, unknown>
  const subjectToken = strParam(p.subjectToken, 'subjectToken')
  const scopes = p.scopes === undefined ? undefined : scopeList(p.scopes)
  if (p.kind === 'call') {
    onlyMembers(p, CALL_MEMBERS, 'call credential request')
    const [audience] = resourceList([p.audience])
    const expiresIn = p.expiresIn === undefined ? undefined : intParam(p.expiresIn, 'expiresIn', ...LIMITS.callExpiresIn)
    const approvalId = p.approvalId === undefined ? undefined : strParam(p.approvalId, 'approvalId')
    return {
      kind: 'call', subjectToken, audience: audience as string, tool: strParam(p.tool, 'tool'),
      // absent arguments are `{}`, as an absent tool_arguments parameter is
      arguments: snapshotArguments(p.arguments === undefined ? {} : p.arguments),
      ...(scopes !== undefined ? { scopes } : {}), ...(expiresIn !== undefined ? { expiresIn } : {}), ...(approvalId !== undefined ? { approvalId } : {}),
    }
  }
  if (p.kind === 'audience') {
    onlyMembers(p, AUDIENCE_MEMBERS, 'audience credential request')
    const [audience] = resourceList([p.audience])
    const out: AudienceParams = { kind: 'audience', subjectToken, audience: audience as string }
    if (p.tools !== undefined) out.tools = toolList(p.tools)
    if (scopes !== undefined) out.scopes = scopes
    if (p.expiresIn !== undefined) out.expiresIn = intParam(p.expiresIn, 'expiresIn', ...LIMITS.audienceExpiresIn)
    return out
  }
  if (p.kind !== 'delegation') throw new MandateError('INVALID_REQUEST', 'kind must be delegation, audience or call')
  onlyMembers(p, DELEGATION_MEMBERS, 'delegation request')
  const out: DelegationParams = { kind: 'delegation', subjectToken, requestedActor: strParam(p.requestedActor, 'requestedActor') }
  if (p.audiences !== undefined) out.audiences = resourceList(p.audiences)
  if (scopes !== undefined) out.scopes = scopes
  if (p.tools !== undefined) out.tools = toolList(p.tools)
  if (p.expiresIn !== undefined) out.expiresIn = intParam(p.expiresIn, 'expiresIn', ...LIMITS.mandateExpiresIn)
  if (p.maxDepth !== undefined) out.maxDepth = intParam(p.maxDepth, 'maxDepth', ...LIMITS.maxDepth)
  if (p.budget !== undefined) out.budget = budgetParam(p.budget)
  if (p.maxUses !== undefined) out.maxUses = intParam(p.maxUses, 'maxUses', ...LIMITS.maxUses)
  return out
}

/**
 * Verify the subject mandate and everything it depends on: ours, held by the caller, live, unrevoked.
 * Returns the claims and the stored token hash, which the caller must compare with the hash of the
 * presented token before anything is written (see exchangeMandate).
 */
async function loadSubject(ctx: AuthorityContext, caller: AgentRecord, token: string, info: RefusalFields): Promise<{ claims: MandateClaims; storedHash: string; hash: string }> {
  // the signature and strict parse of a subject token presented before are not repeated (subject_cache.ts)
  const now = nowSec(ctx)
  const { claims, hash } = await ctx.subjects.verify(token, { issuer: ctx.issuer, keys: ctx.keys.resolver, now, skew: ctx.limits.skew })
  info.parent = claims.jti
  info.txn = claims.txn
  info.subject = claims.sub
  // the skew allowance is for other clocks; nothing derives from a subject past its expiry on this
  // one, and an agent must hear that as TOKEN_EXPIRED (terminal), not a narrowing refusal it retries
  if (now >= claims.exp) throw new MandateError('TOKEN_EXPIRED', 'the subject token has expired')
  if (claims.client_id !== caller.did || claims.cnf.jkt !== caller.jkt) {
    throw new MandateError('INVALID_GRANT', 'the subject token is not held by the authenticated client')
  }
  // a refusal from here on names the whole chain the verified token carries
  const actors = actorChain(claims.act)
  info.actors = actors
  const record = await ctx.store.getMandate(claims.jti)
  if (!record) throw new MandateError('INVALID_GRANT', 'the subject token was not issued by this Authority')
  if (await ctx.store.isRevoked({ ids: [claims.jti, ...claims.delegation.ancestors], txn: claims.txn, actors })) {
    throw new MandateError('REVOKED', 'the subject token, one of its ancestors, its task or one of its agents has been revoked')
  }
  for (const did of actors) {
    // read again, the caller included: it may have been disabled since this request authenticated
    const a = await ctx.store.getAgent(did)
    if (!a || a.disabled) throw new MandateError('INVALID_GRANT', 'an agent of the delegation chain is disabled')
  }
  return { claims, storedHash: record.tokenHash, hash }
}

/** Check a presented approval against the exact call; returns the claim to embed. */
async function checkApproval(ctx: AuthorityContext, a: ApprovalRecord | undefined, caller: AgentRecord, parent: MandateClaims, call: CallParams, digest: string): Promise<ApprovalClaim> {
  if (!a) throw new MandateError('INVALID_GRANT', 'unknown approval_id')
  if (a.requestedBy !== caller.did || a.parent !== parent.jti || a.audience !== call.audience || a.tool !== call.tool || a.argumentsDigest !== digest) {
    throw new MandateError('INVALID_GRANT', 'approval_id was granted for a different call (mandate, audience, tool or arguments); request a new approval')
  }
  switch (a.status) {
    case 'pending':
      throw new MandateError('APPROVAL_REQUIRED', 'the approval is still pending', { detail: { approval_id: a.id, expires_at: Math.floor(a.expiresAt / 1000), reason: a.reason } })
    case 'denied':
      throw new MandateError('APPROVAL_DENIED', 'the approval was denied')
    case 'expired':
      throw new MandateError('APPROVAL_EXPIRED', 'the approval has expired; request a new one')
    case 'approved': {
      if (a.used) throw new MandateError('INVALID_GRANT', 'the approval has already been used')
      // an approval is redeemable within the window it was asked for (approvalTtlSeconds), not for
      // as long as the parent mandate lives: an approver says yes to a call now, not in a day
      if (ctx.now() >= a.expiresAt) throw new MandateError('APPROVAL_EXPIRED', 'the approval has expired; request a new one')
      // a decision is only as good as its approver still is: one disabled or revoked since (a
      // leaked key, a departed employee) authorizes nothing more
      const approver = await ctx.store.getAgent(a.decidedBy as string)
      const gone = () => new MandateError('APPROVAL_DENIED', 'the approver of this approval has since been disabled or revoked; request a new approval')
      if (!approver || approver.disabled) throw gone()
      // disabled and enabled again after deciding: the decision went with the suspension (the
      // reason for it, a leaked key, may have been why it was made); an approver disabled before
      // deciding could not have decided
      if ((await ctx.store.queryAudit({ agent: approver.did, type: 'agent.disabled', since: (a.decidedAt as number) + 1, limit: 1 })).length > 0) throw gone()
      if (await ctx.store.isRevoked({ ids: [], txn: parent.txn, actors: [approver.did] })) {
        if (await ctx.store.isRevoked({ ids: [], txn: parent.txn, actors: [] })) throw new MandateError('REVOKED', 'the task has been revoked')
        throw gone()
      }
      return { id: a.id, approver: a.decidedBy as string, approved_at: Math.floor((a.decidedAt as number) / 1000) }
    }
  }
}

export async function exchangeMandate(ctx: AuthorityContext, caller: AgentRecord, params: ExchangeParams, info: RefusalFields = {}): Promise<IssuedMandate> {
  info.agent = caller.did
  info.operation = params.kind
  // an operator who turned the cached mode off: clients fall back to per-call exchange on this code
  if (params.kind === 'audience' && !ctx.callModes.audience) throw new MandateError('UNSUPPORTED_TOKEN_TYPE', 'this Authority does not issue audience credentials (callModes.audience is off)')
  const { claims: parent, storedHash, hash: subjectHash } = await loadSubject(ctx, caller, params.subjectToken, info)
  const now = nowSec(ctx)
  let request: NarrowingRequest
  let recipient = caller.did
  let approval: ApprovalClaim | undefined
  let digest: string | undefined
  if (params.kind === 'delegation') {
    const delegate = await ctx.store.getAgent(params.requestedActor)
    info.recipient = params.requestedActor
    if (!delegate || delegate.disabled || delegate.role !== 'agent') throw new MandateError('INVALID_REQUEST', 'requested_actor must be a registered, enabled agent')
    if (await ctx.store.isRevoked({ ids: [], txn: parent.txn, actors: [delegate.did] })) throw new MandateError('REVOKED', 'requested_actor has been revoked')
    recipient = delegate.did
    request = {
      kind: 'delegation', actor: { id: delegate.did, jkt: delegate.jkt },
      ...(params.audiences !== undefined ? { audiences: params.audiences } : {}),
      ...(params.scopes !== undefined ? { scopes: params.scopes } : {}),
      ...(params.tools !== undefined ? { tools: keepPerCall(parent, params.tools) } : {}),
      ...(params.expiresIn !== undefined ? { expiresIn: params.expiresIn } : {}),
      ...(params.maxDepth !== undefined ? { maxDepth: params.maxDepth } : {}),
      ...(params.budget !== undefined ? { budget: params.budget } : {}),
      ...(params.maxUses !== undefined ? { maxUses: params.maxUses } : {}),
      // an operator who turned offline attenuation off: delegations no longer pass it on
      ...(!ctx.callModes.offline && parent.offline ? { offlineHops: 0 } : {}),
    }
  } else if (params.kind === 'audience') {
    info.audience = params.audience
    request = {
      kind: 'audience', audience: params.audience,
      ...(params.tools !== undefined ? { tools: keepPerCall(parent, params.tools) } : {}),
      ...(params.scopes !== undefined ? { scopes: params.scopes } : {}),
      ...(params.expiresIn !== undefined ? { expiresIn: params.expiresIn } : {}),
    }
  } else {
    info.tool = params.tool
    info.audience = params.audience
    if (params.approvalId !== undefined) {
      digest = argumentsDigest(params.arguments)
      info.args = digest
      // reading an approval may expire it (a write): check the token against its record first
      if (subjectHash !== storedHash) throw new MandateError('INVALID_GRANT', 'the subject token was not issued by this Authority')
      approval = await checkApproval(ctx, await ctx.approvals.get(params.approvalId).catch(() => undefined), caller, parent, params, digest)
    }
    request = {
      kind: 'call', audience: params.audience, tool: params.tool, arguments: params.arguments,
      ...(params.scopes !== undefined ? { scopes: params.scopes } : {}),
      ...(params.expiresIn !== undefined ? { expiresIn: params.expiresIn } : {}),
    }
  }
  const jti = pooledRandomId()
  let child: MandateClaims
  try {
    child = narrowMandate(parent, request, {
      issuer: ctx.issuer, now, jti, parentToken: params.subjectToken, parentHash: subjectHash, caller: { id: caller.did, jkt: caller.jkt },
      ...(approval ? { approval } : {}),
      maxMandateLifetime: ctx.limits.maxMandateLifetime, maxCallLifetime: ctx.limits.maxCallLifetime,
      maxAudienceLifetime: Math.min(MAX_AUDIENCE_LIFETIME, ctx.limits.maxMandateLifetime),
    })
  } catch (err) {
    // a refused call still names its arguments' digest (only computed here: refusals are the rare path)
    if (params.kind === 'call' && info.args === undefined) {
      try {
        info.args = argumentsDigest(params.arguments)
      } catch {
        // arguments the narrowing refused as such: the refusal names no digest
      }
    }
    throw err
  }
  // a call credential's digest is the one narrowMandate computed from the same snapshot (no second pass)
  if (params.kind === 'call' && child.call) {
    digest = child.call.args
    info.args = digest
  }
  // The stored record must be for this very token (same jti is not enough). narrowMandate has just
  // hashed the presented token into the child's delegation.parent_hash, so compare with that rather
  // than hash it twice; this runs before policy, approvals or anything else that writes.
  // (A narrowing that stopped recording parent_hash would fail closed here.)
  if (child.delegation.parent_hash !== storedHash) {
    throw new MandateError('INVALID_GRANT', 'the subject token was not issued by this Authority')
  }
  const chain = actorChain(parent.act)
  const decision = await ctx.policy.evaluate({
    operation: params.kind, subject: parent.sub, agent: caller.did, actorChain: chain, recipient, txn: parent.txn,
    audiences: audienceList(child.aud), tools: params.kind === 'call' ? [params.tool] : child.authorization_details.flatMap((g) => g.tools),
    ...(params.kind === 'call' ? { arguments: params.arguments } : {}),
    scopes: child.scope ? parseScope(child.scope) : [],
  })
  if (decision.effect === 'deny') throw new MandateError('POLICY_DENIED', decision.reason ?? 'policy denies this request', { detail: decision.rule ? { rule: decision.rule } : {} })
  if (decision.effect === 'require_approval' && !approval) {
    if (params.kind !== 'call') throw new MandateError('POLICY_DENIED', decision.reason ?? 'policy requires approval, which applies to call credentials only', { detail: decision.rule ? { rule: decision.rule } : {} })
    const a = await ctx.approvals.request({
      requestedBy: caller.did, parent: parent.jti, subject: parent.sub, txn: parent.txn, actorChain: chain, audience: params.audience,
      tool: params.tool, argumentsDigest: digest as string, reason: decision.reason ?? `policy rule ${decision.rule ?? ''} requires approval`.trim(),
      ...(ctx.storeApprovalArguments ? { arguments: params.arguments } : {}),
    })
    info.approval = a.id
    throw new MandateError('APPROVAL_REQUIRED', 'this call needs a human approval', { detail: { approval_id: a.id, expires_at: Math.floor(a.expiresAt / 1000), reason: a.reason } })
  }

  // tools whose calls the Authority must decide one by one (call credentials are call-bound already)
  if (params.kind !== 'call') await markPerCallGrants(ctx.policy, ctx.callModes, child, { agent: caller.did, recipient, actorChain: chain })
  const token = signMandate(child, ctx.keys.current)
  const hash = tokenHash(token)
  const fields: Record<string, JsonValue> = {
    operation: params.kind, jti, parent: parent.jti, txn: child.txn, subject: child.sub, agent: caller.did, recipient,
    actors: child.act === parent.act ? chain : actorChain(child.act), audiences: audienceList(child.aud), exp: child.exp, depth: child.delegation.depth, token_hash: hash,
  }
  if (child.scope !== undefined) fields.scope = child.scope
  if (child.call) {
    fields.tool = child.call.tool
    fields.args = child.call.args
  } else {
    fields.tools = child.authorization_details.flatMap((g) => g.tools)
    const perCall = perCallTools(child)
    if (perCall.length) fields.per_call_tools = perCall
  }
  if (params.kind === 'audience') fields.credential = 'audience'
  if (approval) fields.approval = { id: approval.id, approver: approval.approver, approved_at: approval.approved_at }
  if (decision.rule) fields.policy_rule = decision.rule
  if (child.max_uses !== undefined) fields.max_uses = child.max_uses
  const result = await ctx.store.issueMandate({
    mandate: {
      jti, parent: parent.jti, txn: child.txn, subject: child.sub, holder: child.client_id, kind: params.kind,
      depth: child.delegation.depth, iat: child.iat, exp: child.exp, tokenHash: hash, uses: 0, claims: child,
      ...(child.max_uses !== undefined ? { maxUses: child.max_uses } : {}),
    },
    revocation: { ids: [parent.jti, ...parent.delegation.ancestors], txn: parent.txn, actors: [...chain, recipient] },
    ...(params.kind === 'call' ? { consumeUses: [parent.jti, ...parent.delegation.ancestors] } : {}),
    ...(approval ? { consumeApproval: approval.id } : {}),
    audit: ctx.audit.draft('exchange', fields),
  })
  if (!result.ok) {
    if (result.reason === 'uses_exhausted') throw new MandateError('NARROWING_BUDGET', 'the mandate (or an ancestor) has no uses left', { detail: { mandate: result.jti ?? null } })
    if (result.reason === 'approval_unusable') throw new MandateError('INVALID_GRANT', 'the approval has already been used')
    if (result.reason === 'revoked') throw new MandateError('REVOKED', 'the subject token or one of its ancestors has been revoked')
    throw new MandateError('INTERNAL', 'could not record the issued mandate')
  }
  await ctx.audit.recorded(result.audit)
  return { token, claims: child, expiresIn: child.exp - now }
}
