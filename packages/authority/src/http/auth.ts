/** `Authorization: MandateAssertion <client assertion>` on the JSON endpoints (single-use assertions). */
import { MandateError } from '@mandate/core'
import type { Context } from 'hono'
import type { Authority } from '../authority.js'
import type { AgentRecord, Role } from '../types.js'
import { noteRequest } from '../observability/request_info.js'

export async function principal(c: Context, authority: Authority, roles?: readonly Role[]): Promise<AgentRecord> {
  const h = c.req.header('authorization')
  // no credential at all: the challenge carries no error code (RFC 6750 §3.1), see jsonErrorAnswer
  if (h === undefined) throw new MandateError('INVALID_CLIENT', 'Authorization: MandateAssertion <client assertion> is required', { detail: { credentials: 'absent' } })
  const sp = h.indexOf(' ')
  if (sp === -1 || h.slice(0, sp).toLowerCase() !== 'mandateassertion' || h.includes(',')) {
    throw new MandateError('INVALID_CLIENT', 'Authorization: MandateAssertion <client assertion> is required')
  }
  const agent = await authority.authenticate(h.slice(sp + 1).trim(), endpointUrls(c.req.path, authority))
  // the request log names who asked (never the assertion)
  noteRequest(c.req.raw, { principal: agent.did })
  if (roles && !roles.includes(agent.role)) throw new MandateError('ACCESS_DENIED', `this endpoint requires the role ${roles.join(' or ')}`)
  return agent
}

/**
 * The URLs an assertion sent to this JSON endpoint may name as `aud` besides the issuer
 * (docs/protocol.md: "the issuer or the endpoint URL"): the request's own URL under the issuer's
 * origin, and the endpoint it belongs to as the metadata advertises it (`approvals_endpoint`, ...).
 */
function endpointUrls(path: string, authority: Authority): string[] {
  const e = authority.endpoints
  const out = [`${new URL(e.issuer).origin}${path}`]
  for (const base of [e.approvals, e.audit, e.admin]) {
    const basePath = new URL(base).pathname
    if (path === basePath || path.startsWith(`${basePath}/`)) out.push(base)
  }
  return out
}
