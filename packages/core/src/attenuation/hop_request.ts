/**
 * The narrowing request a hop claims to be. A verifier re-derives the hop by running the
 * Authority's own narrowMandate on the previous link with this request and compares the result to
 * the hop's claims member by member: every claim is either derived from the request (and so checked
 * by the narrowing rules) or recomputed from the parent, so a hop that widens anything, or carries
 * anything the narrowing would not produce, differs and is refused.
 */
import { audienceList, AUDIENCE_CREDENTIAL, type MandateClaims } from '../mandate/claims.js'
import type { NarrowingRequest } from '../narrowing/narrow.js'
import { parseScope } from '../narrowing/scopes.js'

/** What kind of narrowing a hop is. */
export type HopKind = 'delegation' | 'audience' | 'call'

export function hopKind(hop: Pick<MandateClaims, 'call' | 'credential'>): HopKind {
  return hop.call ? 'call' : hop.credential === AUDIENCE_CREDENTIAL ? 'audience' : 'delegation'
}

/** The request that, narrowed from the previous link at `hop.iat`, must give exactly `hop`. */
export function requestFromHop(hop: MandateClaims): NarrowingRequest {
  const scopes = hop.scope === undefined ? [] : parseScope(hop.scope)
  const expiresIn = hop.exp - hop.iat
  const kind = hopKind(hop)
  if (kind === 'call') {
    const call = hop.call as NonNullable<MandateClaims['call']>
    return {
      kind: 'call', audience: hop.aud as string, tool: call.tool, argsDigest: call.args,
      // a call credential carries exactly one grant; a second one would be refused by the comparison
      ...(hop.authorization_details.length === 1 ? { grant: hop.authorization_details[0] } : {}),
      scopes, expiresIn,
    }
  }
  if (kind === 'audience') {
    return { kind: 'audience', audience: hop.aud as string, tools: hop.authorization_details, scopes, expiresIn }
  }
  return {
    kind: 'delegation',
    actor: { id: hop.client_id, jkt: hop.cnf.jkt },
    audiences: audienceList(hop.aud),
    scopes,
    tools: hop.authorization_details,
    expiresIn,
    maxDepth: hop.delegation.max_depth - hop.delegation.depth,
    ...(hop.budget ? { budget: hop.budget } : {}),
    ...(hop.max_uses !== undefined ? { maxUses: hop.max_uses } : {}),
    offlineHops: hop.offline?.max_hops ?? 0,
  }
}
