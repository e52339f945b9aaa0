import { asMandateError, challengeFor, MandateError, type Guard, type HeaderBag } from '@mandate/core'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { RequestId } from '@modelcontextprotocol/sdk/types.js'
import { refusalReport, type AuditSink } from './audit.js'
import { enforceToolRequirements, type ToolRequirements } from './tool_requirements.js'
import { verifiedAuthInfo } from './verified_marks.js'

export interface HttpAuthorizeOptions {
  guard: Guard
  /** The tool's declared requirements (scopes, constraints). */
  requirements?: (tool: string) => ToolRequirements | undefined
  audit?: AuditSink | undefined
  /** Advertised in `WWW-Authenticate: DPoP … resource_metadata="…"`. */
  resourceMetadataUrl: string
  /** Receives audit-sink failures (the refusal itself still stands). */
  onError?: (error: Error) => void
}

export interface HttpRequestFacts {
  method: string
  /** The URL the client addressed: the resource's public origin + the request path (not the Host header). */
  url: string | URL
  headers: HeaderBag
  /** The parsed JSON-RPC body. */
  message: unknown
}

export type HttpAuthorizeResult =
  | { ok: true; authInfo?: AuthInfo }
  | { ok: false; status: number; headers: Record<string, string>; body: Record<string, unknown> }

/**
 * Decide an MCP POST at the HTTP layer. A `tools/call` must carry `Authorization: DPoP <credential>`
 * and a `DPoP` proof for this method and URL; it is verified here, with the tool name and arguments
 * from the body, so refusals are real HTTP answers (401/403 with a DPoP challenge, `DPoP-Nonce`,
 * `resource_metadata`). Other messages (initialize, tools/list, notifications) need no credential.
 * A batch that contains a `tools/call` is refused: one credential cannot bind several calls.
 */
export async function authorizeHttpMessage(options: HttpAuthorizeOptions, req: HttpRequestFacts): Promise<HttpAuthorizeResult> {
  const msg = req.message
  const messages = Array.isArray(msg) ? msg : [msg]
  const calls = messages.filter((m) => typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'tools/call')
  if (calls.length === 0) return { ok: true }
  let tool = ''
  let args: unknown = {}
  let credential: string | undefined
  try {
    if (Array.isArray(msg)) throw new MandateError('INVALID_REQUEST', 'tools/call cannot be batched')
    const call = calls[0] as { id?: unknown; params?: { name?: unknown; arguments?: unknown } }
    if (typeof call.id !== 'string' && typeof call.id !== 'number') throw new MandateError('INVALID_REQUEST', 'tools/call must be a request')
    tool = typeof call.params?.name === 'string' ? call.params.name : ''
    args = call.params?.arguments ?? {}
    credential = credentialOf(req.headers)
    const verified = await options.guard.verifyRequest({ method: req.method, url: req.url, headers: req.headers, tool, arguments: args })
    enforceToolRequirements(verified, options.requirements?.(tool), args)
    return { ok: true, authInfo: verifiedAuthInfo({ call: verified, requestId: call.id as RequestId, tool, arguments: args }) }
  } catch (err) {
    const refusal = asMandateError(err)
    if (options.audit) {
      try {
        await options.audit(refusalReport(refusal, { tool, arguments: args, audience: options.guard.audience, credential }))
      } catch (auditErr) {
        options.onError?.(new MandateError('AUDIT_BROKEN', 'could not record the refused call', { cause: auditErr }))
      }
    }
    const scope = typeof refusal.detail?.scope === 'string' ? refusal.detail.scope : undefined
    const c = challengeFor(refusal, { resourceMetadata: options.resourceMetadataUrl, ...(scope ? { scope } : {}) })
    return { ok: false, status: c.status, headers: c.headers, body: { ...c.body, mandate_code: refusal.code, ...(scope ? { scope } : {}) } }
  }
}

/** The presented credential, for attributing a refusal in the audit log (a Bearer downgrade is attributed too). */
function credentialOf(headers: HeaderBag): string | undefined {
  const raw = typeof (headers as Headers).get === 'function' ? (headers as Headers).get('authorization') : (headers as Record<string, string | string[] | undefined>).authorization
  const v = Array.isArray(raw) ? raw[0] : raw
  if (typeof v !== 'string') return undefined
  const m = /^(?:dpop|bearer) +(\S+)$/i.exec(v.trim())
  return m?.[1]
}
