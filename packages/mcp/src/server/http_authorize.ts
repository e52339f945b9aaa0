import { asMandateError, challengeFor, MandateError, type Guard, type HeaderBag, type VerifiedCall } from '@mandate/core'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { isJSONRPCRequest, type RequestId } from '@modelcontextprotocol/sdk/types.js'
import type { AuditSink } from './audit.js'
import { assertSingleHeaderLines } from './http_request_limits.js'
import { refusalAuditFor } from './refusal_audit.js'
import { enforceToolRequirements, type ToolRequirements } from './tool_requirements.js'
import { verifiedAuthInfo } from './verified_marks.js'

export interface HttpAuthorizeOptions {
  guard: Guard
  /** The tool's declared requirements (scopes, constraints). */
  requirements?: (tool: string) => ToolRequirements | undefined
  /**
   * Receives the record of each refused call, from a bounded queue off the request path (see
   * `RefusalAudit`): the answer never waits for it, and a refusal is attributed to a task only with
   * what the guard verified.
   */
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
  /**
   * The header lines as received (node: `req.rawHeaders`); pass it from node:http. When given, a
   * request that repeats a single-value header (`Authorization`, `DPoP`, …, in any letter case) is
   * refused here, and it is forwarded to the guard (`verifyRequest({ rawHeaders })`), which refuses
   * repeated `Authorization` / `DPoP` lines too. Without it only what `headers` shows is checked:
   * Node keeps only the first `Authorization` line in `req.headers`, so a second one would go unseen
   * (`req.headersDistinct` as `headers` keeps them all; fetch `Headers` join them, which the guard
   * refuses).
   */
  rawHeaders?: readonly string[]
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
 * A batch that contains a `tools/call` is refused: one credential cannot bind several calls, and
 * so is a `tools/call` that the MCP SDK's JSON-RPC schema would refuse (its credential is not spent).
 */
export async function authorizeHttpMessage(options: HttpAuthorizeOptions, req: HttpRequestFacts): Promise<HttpAuthorizeResult> {
  const msg = req.message
  const messages = Array.isArray(msg) ? msg : [msg]
  const calls = messages.filter((m) => typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'tools/call')
  if (calls.length === 0) return { ok: true }
  let tool = ''
  let args: unknown = {}
  let credential: string | undefined
  let verifiedCall: VerifiedCall | undefined
  // read once: what is enforced and what a refusal's challenge names are the same requirements
  let requirements: ToolRequirements | undefined
  try {
    if (req.rawHeaders) assertSingleHeaderLines(req.rawHeaders)
    if (Array.isArray(msg)) throw new MandateError('INVALID_REQUEST', 'tools/call cannot be batched')
    const call = calls[0] as { id?: unknown; params?: { name?: unknown; arguments?: unknown } }
    if (typeof call.id !== 'string' && typeof call.id !== 'number') throw new MandateError('INVALID_REQUEST', 'tools/call must be a request')
    // what the SDK's JSON-RPC schema refuses (an id that is not a string or a safe integer, members
    // besides jsonrpc/id/method/params, jsonrpc other than "2.0") never runs: refused before the
    // guard sees, and spends, the single-use credential
    if (!isJSONRPCRequest(call)) throw new MandateError('INVALID_REQUEST', 'tools/call must be a well-formed JSON-RPC request')
    tool = typeof call.params?.name === 'string' ? call.params.name : ''
    args = call.params?.arguments ?? {}
    requirements = options.requirements?.(tool)
    credential = credentialOf(req.headers)
    const verified = await options.guard.verifyRequest({ method: req.method, url: req.url, headers: req.headers, ...(req.rawHeaders ? { rawHeaders: req.rawHeaders } : {}), tool, arguments: args })
    verifiedCall = verified
    // the guard's snapshot is what was digested; requirements and the tool see exactly it
    const snapshot = verified.arguments
    if (snapshot === undefined) throw new MandateError('ARGUMENTS_MISMATCH', 'the verified call carries no arguments snapshot')
    enforceToolRequirements(verified, requirements, snapshot)
    return { ok: true, authInfo: verifiedAuthInfo({ call: verified, requestId: call.id as RequestId, tool, arguments: snapshot }) }
  } catch (err) {
    const refusal = asMandateError(err)
    // recorded off the request path: the answer never waits on the audit sink (or the Authority)
    if (options.audit) refusalAuditFor(options.audit, options.guard).record(refusal, { tool, arguments: args, credential, verified: verifiedCall }, options.onError)
    const scope = requiredScope(refusal, requirements)
    const c = challengeFor(refusal, { resourceMetadata: options.resourceMetadataUrl, ...(scope ? { scope } : {}) })
    return { ok: false, status: c.status, headers: c.headers, body: { ...c.body, mandate_code: refusal.code, ...(scope ? { scope } : {}) } }
  }
}

/**
 * The `scope` of an `insufficient_scope` challenge: every scope the call needs, in one challenge
 * (MCP authorization, scope step-up), i.e. the one the refusal names plus the tool's declared ones,
 * so a client that steps up once is not refused again for the next missing scope.
 */
function requiredScope(refusal: MandateError, requirements: ToolRequirements | undefined): string | undefined {
  const named = typeof refusal.detail?.scope === 'string' ? refusal.detail.scope : undefined
  if (refusal.code !== 'INSUFFICIENT_SCOPE') return named
  const all = new Set<string>(named ? named.split(' ').filter((s) => s.length > 0) : [])
  for (const s of requirements?.scopes ?? []) all.add(s)
  return all.size ? [...all].join(' ') : undefined
}

/** The presented credential, attributed in the audit log only once the guard has verified it (a Bearer downgrade of a valid credential is too). */
function credentialOf(headers: HeaderBag): string | undefined {
  const raw = typeof (headers as Headers).get === 'function' ? (headers as Headers).get('authorization') : (headers as Record<string, string | string[] | undefined>).authorization
  const v = Array.isArray(raw) ? raw[0] : raw
  if (typeof v !== 'string') return undefined
  const m = /^(?:dpop|bearer) +(\S+)$/i.exec(v.trim())
  return m?.[1]
}
