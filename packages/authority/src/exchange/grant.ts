/**
 * Root task grant: a registered grantor asks for a task mandate for a registered agent
 * (in-process `authority.grant`, or HTTP `grant_type=urn:mandate:grant-type:task`).
 */
import {
  buildRootMandate, formatScope, MandateError, parseToolGrant, randomId, signMandate, tokenHash, audienceList,
  type Budget, type JsonValue, type ToolGrant,
} from '@mandate/core'
import { nowSec, type AuthorityContext } from '../context.js'
import type { IssuedMandate, RefusalFields } from './issued.js'

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
}

const TXN = /^[A-Za-z0-9._:-]{1,128}$/

export async function grantRootMandate(ctx: AuthorityContext, params: GrantParams, info: RefusalFields = {}): Promise<IssuedMandate> {
  info.agent = params.grantor
  const grantor = await ctx.store.getAgent(params.grantor)
  if (!grantor || grantor.disabled || (grantor.role !== 'grantor' && grantor.role !== 'admin')) {
    throw new MandateError('UNAUTHORIZED_CLIENT', 'the client is not a registered, enabled grantor')
  }
  if (typeof params.subject !== 'string' || params.subject.length === 0 || params.subject.length > 512) throw new MandateError('INVALID_REQUEST', 'subject must be a non-empty string of at most 512 characters')
  info.subject = params.subject
  if (typeof params.agent !== 'string') throw new MandateError('INVALID_REQUEST', 'agent is required')
  info.recipient = params.agent
  const agent = await ctx.store.getAgent(params.agent)
  if (!agent || agent.disabled || agent.role !== 'agent') throw new MandateError('INVALID_REQUEST', 'agent must be a registered, enabled agent')
  if (params.txn !== undefined && (typeof params.txn !== 'string' || !TXN.test(params.txn))) throw new MandateError('INVALID_REQUEST', 'txn must be 1..128 characters of [A-Za-z0-9._:-]')
  if (params.purpose !== undefined && (typeof params.purpose !== 'string' || params.purpose.length > 1024)) throw new MandateError('INVALID_REQUEST', 'purpose must be a string of at most 1024 characters')
  if (!Array.isArray(params.audiences)) throw new MandateError('INVALID_REQUEST', 'at least one resource (audience) is required')
  if (!Array.isArray(params.tools) || params.tools.length === 0 || params.tools.length > 32) throw new MandateError('INVALID_REQUEST', 'authorization_details must list 1..32 tool_access entries')
  const tools = params.tools.map((t) => parseToolGrant(t))
  const scopes = params.scopes ?? []
  if (scopes.length) formatScope(scopes)
  const now = nowSec(ctx)
  const txn = params.txn ?? randomId()
  info.txn = txn
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
  for (const g of claims.authorization_details) {
    for (const l of g.locations ?? []) if (!audienceList(claims.aud).includes(l)) throw new MandateError('NARROWING_AUDIENCE', 'a tool grant names an audience outside the mandate')
  }
  const decision = await ctx.policy.evaluate({
    operation: 'grant', subject: claims.sub, agent: grantor.did, actorChain: [], recipient: agent.did, txn,
    audiences: audienceList(claims.aud), tools: claims.authorization_details.flatMap((g) => g.tools), scopes,
  })
  if (decision.effect !== 'allow') {
    throw new MandateError('POLICY_DENIED', decision.reason ?? (decision.effect === 'deny' ? 'policy denies this grant' : 'policy requires approval, which applies to call credentials only'), { detail: decision.rule ? { rule: decision.rule } : {} })
  }
  const token = signMandate(claims, ctx.keys.current)
  const fields: Record<string, JsonValue> = {
    jti: claims.jti, txn, subject: claims.sub, agent: agent.did, grantor: grantor.did, audiences: audienceList(claims.aud),
    tools: claims.authorization_details.flatMap((g) => g.tools), exp: claims.exp, max_depth: claims.delegation.max_depth, token_hash: tokenHash(token),
  }
  if (claims.scope !== undefined) fields.scope = claims.scope
  if (claims.purpose !== undefined) fields.purpose = claims.purpose
  if (claims.max_uses !== undefined) fields.max_uses = claims.max_uses
  if (claims.budget !== undefined) fields.budget = { amount: claims.budget.amount, unit: claims.budget.unit }
  const result = await ctx.store.issueMandate({
    mandate: {
      jti: claims.jti, txn, subject: claims.sub, holder: agent.did, kind: 'root', depth: 0, iat: claims.iat, exp: claims.exp,
      tokenHash: tokenHash(token), uses: 0, claims, ...(claims.max_uses !== undefined ? { maxUses: claims.max_uses } : {}),
    },
    revocation: { ids: [], txn, actors: [agent.did] },
    audit: ctx.audit.draft('grant', fields),
  })
  if (!result.ok) throw new MandateError('REVOKED', 'the task or the agent has been revoked')
  await ctx.audit.recorded(result.audit)
  return { token, claims, expiresIn: claims.exp - now }
}
