/** RFC 7662 introspection and RFC 7009 revocation of tokens the Authority issued. */
import { actorChain, MandateError, tokenHash, verifyMandate, type JsonValue, type MandateClaims } from '@mandate/core'
import { nowSec, type AuthorityContext } from '../context.js'
import type { AgentRecord } from '../types.js'
import { revokeTarget } from './revoke.js'

export type IntrospectionResponse = { active: false } | ({ active: true; token_type: 'DPoP' } & Record<string, JsonValue>)

const MAX_TOKEN = 16 * 1024

/**
 * Active only for a token this Authority issued, unexpired, unrevoked (itself, ancestors, task,
 * agents), and visible to the caller: an admin, a registered resource, or an agent of its chain.
 */
export async function introspectToken(ctx: AuthorityContext, token: string, caller: AgentRecord): Promise<IntrospectionResponse> {
  if (typeof token !== 'string' || token.length > MAX_TOKEN) return { active: false }
  let claims: MandateClaims
  try {
    claims = (await verifyMandate(token, { issuer: ctx.issuer, keys: ctx.keys.resolver, now: nowSec(ctx), skew: ctx.limits.skew })).claims
  } catch {
    return { active: false }
  }
  const record = await ctx.store.getMandate(claims.jti)
  if (!record || record.tokenHash !== tokenHash(token)) return { active: false }
  const chain = actorChain(claims.act)
  if (caller.role !== 'admin' && caller.role !== 'resource' && !chain.includes(caller.did)) return { active: false }
  if (await ctx.store.isRevoked({ ids: [claims.jti, ...claims.delegation.ancestors], txn: claims.txn, actors: chain })) return { active: false }
  const out: Record<string, JsonValue> = {
    iss: claims.iss, sub: claims.sub, aud: claims.aud, exp: claims.exp, iat: claims.iat, nbf: claims.nbf, jti: claims.jti,
    client_id: claims.client_id, cnf: { jkt: claims.cnf.jkt }, act: claims.act as unknown as JsonValue, txn: claims.txn,
    authorization_details: claims.authorization_details as unknown as JsonValue, delegation: claims.delegation as unknown as JsonValue,
  }
  if (claims.scope !== undefined) out.scope = claims.scope
  if (claims.purpose !== undefined) out.purpose = claims.purpose
  if (claims.call) out.call = { tool: claims.call.tool, args: claims.call.args }
  if (claims.approval) out.approval = { ...claims.approval }
  if (claims.budget) out.budget = { ...claims.budget }
  if (claims.max_uses !== undefined) {
    out.max_uses = claims.max_uses
    out.uses = record.uses
  }
  return { active: true, token_type: 'DPoP', ...out }
}

/**
 * RFC 7009: revoke a token (and every descendant). Unknown or foreign tokens are a no-op (the caller
 * answers 200). Only an agent of the token's chain, or an admin, may revoke it.
 */
export async function revokeToken(ctx: AuthorityContext, token: string, caller: AgentRecord, hint?: string): Promise<void> {
  if (hint !== undefined && hint !== 'access_token' && hint !== 'refresh_token') {
    // RFC 7009 §2.1: the hint is advisory; unknown hints are ignored
  }
  if (typeof token !== 'string' || token.length > MAX_TOKEN) return
  const record = await ctx.store.getMandateByTokenHash(tokenHash(token))
  if (!record) return
  if (caller.role !== 'admin' && !actorChain(record.claims.act).includes(caller.did)) {
    throw new MandateError('UNAUTHORIZED_CLIENT', 'the token was not issued to this client or its delegation chain')
  }
  await revokeTarget(ctx, { mandate: record.jti }, { by: caller.did, reason: 'RFC 7009 revocation' })
}
