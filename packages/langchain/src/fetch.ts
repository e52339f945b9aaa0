import { createProof, isMandateErrorCode, MandateError, readBounded, type MandateErrorCode, isSecureTransportUrl } from '@mandate/core'
import { refusalText } from '@mandate/core/kernel'
import { configError } from './config_check.js'
import { activeCall, type ActiveCall } from './context.js'
import { createResourceCheck, type ProofAlg } from './resource_check.js'

/** A fetch-compatible function. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

export interface MandateFetchOptions {
  /** The underlying fetch (default: the global one). */
  fetch?: FetchFunction
  /**
   * Outside a guarded tool call: `refuse` (default) throws; `passthrough` sends the request without
   * a credential (for transports that also talk outside tool calls, e.g. MCP initialize).
   */
  outsideCall?: 'refuse' | 'passthrough'
  /**
   * Inside a call, which requests carry the credential (default: all). Others are sent without it,
   * e.g. only the MCP `tools/call` POST and not its notifications.
   */
  attach?: (url: URL, init: RequestInit | undefined) => boolean
  /**
   * The fetch that reads a resource's RFC 9728 protected resource metadata (a plain GET, no
   * credential). Default: the global fetch — not `fetch`, which in `@mandate/mcp`'s attach hook only
   * sends credentialed tool calls to the MCP endpoint.
   */
  discoveryFetch?: FetchFunction
  /** How long a resource's advertised protection is trusted before it is read again, in ms (default 300 000). */
  discoveryTtlMs?: number
  /** Deadline for reading the metadata, in ms (default 10 000). */
  discoveryTimeoutMs?: number
  /**
   * UNSAFE. Send credentials to a resource without checking that it advertises Mandate protection
   * (default false). The credential names the subject, the task's purpose and the actor chain; an
   * unguarded server receives all of it and runs the call unverified. Only for a guarded resource
   * that cannot publish RFC 9728 metadata.
   */
  sendCredentialsToUnadvertisedResource?: boolean
}

/** Does the call credential's audience cover `url`? Same origin, and inside the audience path on a segment boundary. */
export function audienceCovers(audience: string, url: URL): boolean {
  let aud: URL
  try {
    aud = new URL(audience)
  } catch {
    return false
  }
  if (aud.origin === 'null' || aud.origin !== url.origin) return false
  if (url.username || url.password) return false
  if (!isSecureTransportUrl(url)) return false
  const base = aud.pathname.replace(/\/+$/, '')
  if (base === '') return true
  return url.pathname === base || url.pathname.startsWith(`${base}/`)
}

/**
 * Create a fetch that, inside a guarded tool call, attaches `Authorization: DPoP <credential>` and a
 * fresh DPoP proof (method, URL, access-token hash and the call's tool and argument digest) — and
 * refuses to send them to any origin or path outside the credential's audience, over plain HTTP
 * (loopback excepted), through a redirect, or twice (call credentials are single use).
 *
 * Sent is not verified: before the first credential goes to an audience, the resource's RFC 9728
 * protected resource metadata must name exactly that audience and the Authority's issuer (cached
 * per audience for `discoveryTtlMs`). Otherwise the request is not sent at all:
 * `RESOURCE_NOT_PROTECTED`, or `INVALID_RESPONSE` when the metadata cannot be read.
 *
 * @throws MandateError `CONFIG_INVALID` for invalid options.
 */
export function createMandateFetch(options: MandateFetchOptions = {}): FetchFunction {
  if (typeof options !== 'object' || options === null) throw configError('createMandateFetch options must be an object')
  const base: FetchFunction = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  if (typeof base !== 'function') throw configError('fetch must be a function')
  const outside = options.outsideCall ?? 'refuse'
  if (outside !== 'refuse' && outside !== 'passthrough') throw configError('outsideCall must be refuse or passthrough')
  if (options.attach !== undefined && typeof options.attach !== 'function') throw configError('attach must be a function')
  const unchecked = options.sendCredentialsToUnadvertisedResource ?? false
  if (typeof unchecked !== 'boolean') throw configError('sendCredentialsToUnadvertisedResource must be a boolean')
  const discoveryFetch: FetchFunction = options.discoveryFetch ?? ((input, init) => globalThis.fetch(input, init))
  if (typeof discoveryFetch !== 'function') throw configError('discoveryFetch must be a function')
  const ttlMs = positiveMs(options.discoveryTtlMs, 300_000, 'discoveryTtlMs')
  const timeoutMs = positiveMs(options.discoveryTimeoutMs, 10_000, 'discoveryTimeoutMs')
  const checkResource = createResourceCheck({ fetch: discoveryFetch, ttlMs, timeoutMs })

  return async (input, init) => {
    const call = activeCall()
    const request = input instanceof Request ? input : undefined
    const url = new URL(request ? request.url : input instanceof URL ? input.href : String(input))
    if (!call || (options.attach && !options.attach(url, init))) {
      if (!call && outside === 'refuse') {
        throw new MandateError('INVALID_REQUEST', 'mandateFetch is only usable inside a guarded tool call')
      }
      return base(input, init)
    }
    const audience = call.context.audience
    if (!audienceCovers(audience, url)) {
      throw refuse(call, new MandateError('AUDIENCE_MISMATCH', `refusing to send the call credential to ${url.origin}${url.pathname}: it is for another audience`))
    }
    if (call.sent) throw new MandateError('TOKEN_REPLAYED', 'the call credential was already sent; call credentials are single use')
    let alg: ProofAlg = 'Ed25519'
    if (!unchecked) {
      try {
        alg = await checkResource(audience, call.issuer, init?.signal ?? request?.signal ?? undefined)
      } catch (err) {
        throw MandateError.is(err) ? refuse(call, err) : err
      }
      // another request of this call may have gone out while the metadata was read
      if (call.sent) throw new MandateError('TOKEN_REPLAYED', 'the call credential was already sent; call credentials are single use')
    }
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase()
    const headers = new Headers(request?.headers)
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value))
    // never follow a redirect with the credential attached
    const redirect: RequestRedirect = init?.redirect === 'manual' ? 'manual' : 'error'
    const send = (): Promise<Response> => {
      // a fresh proof for every request: bound to method, URL, credential, tool and argument digest
      const proof = createProof(call.key, { method, url: url.href, accessToken: call.token, tool: call.tool, arguments: call.arguments, alg })
      call.addSecret?.(proof)
      headers.set('authorization', `DPoP ${call.token}`)
      headers.set('dpop', proof)
      call.sent = true
      if (request) return base(new Request(request, { ...init, method, headers, redirect }))
      return base(url, { ...init, method, headers, redirect })
    }
    const res = await send()
    // cached mode: the server wants an Authority-minted call credential for this tool. It refused
    // before running anything, so the same request goes once more with a call credential.
    if (call.perCallFallback && !request && resendable(init?.body) && (await demandsCallCredential(res))) {
      await res.body?.cancel().catch(() => undefined)
      call.token = await call.perCallFallback()
      const again = await send()
      call.serverRefusal = await serverRefusalOf(again)
      return again
    }
    call.serverRefusal = await serverRefusalOf(res)
    return res
  }
}

/**
 * The resource's refusal of the credential as a MandateError: a 401/403 with a Mandate code (top
 * level, or a JSON-RPC error's `data`) or a DPoP challenge, read bounded from a clone so the caller
 * still gets the untouched response. Any other answer (a 403 of the application's own) is the
 * tool's business: undefined.
 */
async function serverRefusalOf(res: Response): Promise<MandateError | undefined> {
  if (res.status !== 401 && res.status !== 403) return undefined
  const challenged = /^\s*dpop\b/i.test(res.headers.get('www-authenticate') ?? '')
  let body: { mandate_code?: unknown; error?: unknown; error_description?: unknown } = {}
  try {
    const text = await readBounded(res.clone(), res.url || 'about:blank', { maxBytes: 8192, timeoutMs: 5_000, invalid: 'INVALID_RESPONSE', what: 'refusal' })
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null) body = parsed as typeof body
  } catch {
    // not JSON, too large or too slow: the status alone says the call was refused
  }
  const rpc = typeof body.error === 'object' && body.error !== null ? (body.error as { data?: { mandate_code?: unknown }; message?: unknown }) : undefined
  const raw = body.mandate_code ?? rpc?.data?.mandate_code
  if (!isMandateErrorCode(raw) && !challenged) return undefined
  const code: MandateErrorCode = isMandateErrorCode(raw) ? raw : body.error === 'insufficient_scope' ? 'INSUFFICIENT_SCOPE' : 'ACCESS_DENIED'
  const text = typeof body.error_description === 'string' ? body.error_description : typeof rpc?.message === 'string' ? rpc.message : `the resource refused the call (HTTP ${res.status})`
  return new MandateError(code, refusalText(text), { detail: { source: 'resource', status: res.status } })
}

/** A body that can be sent a second time as is (not a stream). */
function resendable(body: BodyInit | null | undefined): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof URLSearchParams || body instanceof ArrayBuffer || ArrayBuffer.isView(body)
}

/** Does a refusal say `CALL_CREDENTIAL_REQUIRED` (a guard's JSON error body, read bounded from a clone)? */
async function demandsCallCredential(res: Response): Promise<boolean> {
  if (res.status !== 403) return false
  if (!(res.headers.get('content-type') ?? '').toLowerCase().includes('json')) return false
  try {
    const text = await readBounded(res.clone(), res.url || 'about:blank', { maxBytes: 8192, timeoutMs: 5_000, invalid: 'INVALID_RESPONSE', what: 'refusal' })
    const body = JSON.parse(text) as { mandate_code?: unknown; error?: { data?: { mandate_code?: unknown } } }
    return body.mandate_code === 'CALL_CREDENTIAL_REQUIRED' || body.error?.data?.mandate_code === 'CALL_CREDENTIAL_REQUIRED'
  } catch {
    return false
  }
}

/** Remember why the call's credential was not sent (the first reason), and return the refusal. */
function refuse(call: ActiveCall, err: MandateError): MandateError {
  if (!call.sent && call.refusal === undefined) call.refusal = err
  return err
}

function positiveMs(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value <= 0 || value > 86_400_000) throw configError(`${name} must be a whole number of milliseconds, 1..86400000`)
  return value
}

/**
 * {@link createMandateFetch} with defaults: the global fetch, refused outside a guarded tool call,
 * credentials only to resources that advertise Mandate protection.
 */
export const mandateFetch: FetchFunction = createMandateFetch()
