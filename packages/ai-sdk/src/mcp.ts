import { createProof, isMandateErrorCode, MandateError, readBounded, type MandateErrorCode, isSecureTransportUrl } from '@mandate/core'
import { refusalText } from '@mandate/core/kernel'
import { audienceProblemOf, configError } from './config.js'
import { activeCall, type ActiveCall } from './context.js'

/** A fetch-compatible function. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** Options of {@link mandateMcpTransport}. */
export interface MandateMcpTransportOptions {
  /** The fetch the transport sends through (default: the global fetch). */
  fetch?: FetchFunction
  /** How long the server's advertised protection is trusted before it is read again, in ms (default 300 000). */
  discoveryTtlMs?: number
  /** Deadline for reading the server's metadata, in ms (default 10 000). */
  discoveryTimeoutMs?: number
}

/**
 * The `transport` of `@ai-sdk/mcp`'s `createMCPClient` for a Mandate-guarded MCP server
 * (Streamable HTTP). Every `tools/call` carries the credential of the guarded tool call being run
 * (`Authorization: DPoP <credential>` and a fresh DPoP proof bound to the tool and arguments);
 * `initialize`, `tools/list`, notifications and the session's GET/DELETE go out without one.
 *
 * Wrap the client's tools with {@link mandateTools}, listing them as `remote` with `url` as their
 * audience: that wrapper obtains one credential per call and runs the MCP call inside its call
 * context, where this transport finds it. Fail closed: a `tools/call` made outside a guarded call
 * is never sent (`PROOF_MISSING`); a credential goes only to `url` (never through a redirect), only
 * after the server's RFC 9728 metadata names `url` and the Authority (else `RESOURCE_NOT_PROTECTED`),
 * and only once.
 *
 * @example
 * ```ts
 * const mcp = await createMCPClient({ transport: mandateMcpTransport(url) })
 * const tools = mandateTools(await mcp.tools(), { client, key, mandate, audience: url, remote: true })
 * ```
 * @throws MandateError `CONFIG_INVALID` for a URL that is not a canonical http(s) resource URI.
 */
export function mandateMcpTransport(url: string, options: MandateMcpTransportOptions = {}): { type: 'http'; url: string; fetch: FetchFunction; redirect: 'error' } {
  if (typeof url !== 'string') throw configError('the MCP server URL must be a string')
  const problem = audienceProblemOf(url)
  if (problem) throw configError(`the MCP server URL ${problem}`)
  if (!/^https?:/.test(url)) throw configError('the MCP server URL must be an http(s) URL (Streamable HTTP)')
  if (typeof options !== 'object' || options === null) throw configError('mandateMcpTransport options must be an object')
  const raw: FetchFunction = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  // a dependent signal per request: undici's per-Request abort listeners never pile up on the
  // transport's one long-lived signal (see @mandate/mcp's reachingPeer)
  const base: FetchFunction = (input, init) => raw(input, init?.signal ? { ...init, signal: AbortSignal.any([init.signal]) } : init)
  if (typeof base !== 'function') throw configError('fetch must be a function')
  const ttlMs = options.discoveryTtlMs ?? 300_000
  const timeoutMs = options.discoveryTimeoutMs ?? 10_000
  for (const [n, v] of [['discoveryTtlMs', ttlMs], ['discoveryTimeoutMs', timeoutMs]] as const) {
    if (!Number.isSafeInteger(v) || v <= 0 || v > 86_400_000) throw configError(`${n} must be a whole number of milliseconds, 1..86400000`)
  }
  const checkResource = resourceCheck(base, ttlMs, timeoutMs)
  const endpoint = new URL(url)

  const fetch: FetchFunction = async (input, init) => {
    const name = toolsCallName(init)
    if (name === undefined) return base(input, init)
    const call = activeCall()
    if (!call) throw new MandateError('PROOF_MISSING', 'an MCP tools/call outside a Mandate-guarded tool call has no credential: it is not sent')
    if (call.tool !== name) {
      throw refuse(call, new MandateError('TOOL_NOT_ALLOWED', `the guarded call is for tool "${call.tool.slice(0, 128)}", not "${name.slice(0, 128)}": its credential is not sent`))
    }
    const target = new URL(input instanceof Request ? input.url : String(input))
    if (target.href !== endpoint.href || !audienceCovers(call.context.audience, target)) {
      throw refuse(call, new MandateError('AUDIENCE_MISMATCH', `refusing to send the call credential to ${target.origin}${target.pathname}: it is for another audience`))
    }
    if (call.sent) throw new MandateError('TOKEN_REPLAYED', 'the call credential was already sent; call credentials are single use')
    try {
      await checkResource(call.context.audience, call.issuer)
    } catch (err) {
      throw MandateError.is(err) ? refuse(call, err) : err
    }
    if (call.sent) throw new MandateError('TOKEN_REPLAYED', 'the call credential was already sent; call credentials are single use')
    const headers = new Headers(input instanceof Request ? input.headers : undefined)
    new Headers(init?.headers).forEach((value, key) => headers.set(key, value))
    // a fresh proof bound to method, URL, credential, tool and argument digest
    headers.set('authorization', `DPoP ${call.token}`)
    const proof = createProof(call.key, { method: 'POST', url: target.href, accessToken: call.token, tool: call.tool, arguments: call.arguments })
    call.addSecret?.(proof)
    headers.set('dpop', proof)
    call.sent = true
    // never follow a redirect with the credential attached
    const res = await base(target, { ...init, method: 'POST', headers, redirect: 'error' })
    // the server's guard refused the credential: keep its typed refusal for the wrapper, which
    // reports it to the model as a Mandate refusal (and can stop the run on a terminal one)
    if (res.status === 401 || res.status === 403) call.serverRefusal = await serverRefusal(res)
    return res
  }
  return { type: 'http', url, fetch, redirect: 'error' }
}

/** The tool name of a JSON-RPC `tools/call` POST body (a string, as `@ai-sdk/mcp` sends it), else undefined. */
function toolsCallName(init: RequestInit | undefined): string | undefined {
  if ((init?.method ?? 'GET').toUpperCase() !== 'POST') return undefined
  const body = init?.body
  if (typeof body !== 'string') {
    // a body we cannot read could be a tools/call: refuse rather than send it without a check
    if (body === undefined || body === null) return undefined
    throw new MandateError('INVALID_REQUEST', 'the MCP transport sent a request body Mandate cannot inspect')
  }
  if (!body.includes('tools/call')) return undefined
  let msg: unknown
  try {
    msg = JSON.parse(body)
  } catch {
    return undefined
  }
  if (Array.isArray(msg)) {
    if (msg.some((m) => isToolsCall(m))) throw new MandateError('INVALID_REQUEST', 'a batch containing tools/call is not sent: each call needs its own credential')
    return undefined
  }
  if (!isToolsCall(msg)) return undefined
  const name = (msg as { params?: { name?: unknown } }).params?.name
  return typeof name === 'string' ? name : ''
}

function isToolsCall(m: unknown): boolean {
  return typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'tools/call'
}

/** A short OAuth error body is read (bounded, from a clone); anything else keeps the status alone. */
async function serverRefusal(res: Response): Promise<MandateError> {
  let body: Record<string, unknown> = {}
  try {
    // bounded in size and time: a refusal body that never ends must not hang the call
    const text = await readBounded(res.clone(), res.url || 'about:blank', { maxBytes: 8192, timeoutMs: 5_000, invalid: 'INVALID_RESPONSE', what: 'refusal' })
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>
  } catch {
    // not JSON or unreadable: the status still says the call was refused
  }
  const code: MandateErrorCode = isMandateErrorCode(body.mandate_code) ? body.mandate_code : body.error === 'insufficient_scope' ? 'INSUFFICIENT_SCOPE' : 'ACCESS_DENIED'
  const description = typeof body.error_description === 'string' ? refusalText(body.error_description) : `the MCP server refused the call (HTTP ${res.status})`
  return new MandateError(code, description, { detail: { source: 'resource', status: res.status } })
}

/** Remember why the call's credential was not sent (the first reason), and return the refusal. */
function refuse(call: ActiveCall, err: MandateError): MandateError {
  if (!call.sent && call.refusal === undefined) call.refusal = err
  return err
}

/** Does the credential's audience cover `url`? Same origin, inside the audience path, https or loopback http. */
function audienceCovers(audience: string, url: URL): boolean {
  let aud: URL
  try {
    aud = new URL(audience)
  } catch {
    return false
  }
  if (aud.origin === 'null' || aud.origin !== url.origin || url.username || url.password) return false
  if (!isSecureTransportUrl(url)) return false
  const basePath = aud.pathname.replace(/\/+$/, '')
  return basePath === '' || url.pathname === basePath || url.pathname.startsWith(`${basePath}/`)
}

/**
 * Before a credential goes to an audience: its RFC 9728 metadata (`/.well-known/oauth-protected-resource`
 * + path) must name exactly that audience and list the Authority's issuer. Positive answers are
 * cached for `ttlMs`; failures are not. Unprotected: RESOURCE_NOT_PROTECTED; unreadable: INVALID_RESPONSE.
 */
function resourceCheck(fetch: FetchFunction, ttlMs: number, timeoutMs: number): (audience: string, issuer: string) => Promise<void> {
  const until = new Map<string, number>()
  return async (audience, issuer) => {
    const key = `${issuer}\n${audience}`
    if ((until.get(key) ?? 0) > Date.now()) return
    const u = new URL(audience)
    const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
    const metadataUrl = new URL(`/.well-known/oauth-protected-resource${path}`, u.origin)
    let res: Response
    try {
      res = await fetch(metadataUrl, { method: 'GET', redirect: 'error', signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      throw new MandateError('INVALID_RESPONSE', `the protected resource metadata of ${u.origin}${u.pathname} could not be read`, { cause: err, detail: { resource: audience } })
    }
    if (res.status >= 500 || res.status === 408 || res.status === 429) {
      await res.body?.cancel().catch(() => undefined)
      throw new MandateError('INVALID_RESPONSE', `the protected resource metadata of ${u.origin}${u.pathname} could not be read (HTTP ${res.status})`, { detail: { resource: audience } })
    }
    let body: unknown
    try {
      const text = res.ok ? await res.text() : ''
      body = text.length > 0 && text.length <= 65_536 ? JSON.parse(text) : undefined
    } catch {
      body = undefined
    }
    const m = body as { resource?: unknown; authorization_servers?: unknown } | undefined
    if (!m || m.resource !== audience || !Array.isArray(m.authorization_servers) || !m.authorization_servers.includes(issuer)) {
      throw new MandateError('RESOURCE_NOT_PROTECTED', `${u.origin}${u.pathname} does not advertise Mandate protection by this Authority: no credential is sent to it`, { detail: { resource: audience } })
    }
    until.set(key, Date.now() + ttlMs)
  }
}
