import { createProof, isMandateErrorCode, MandateError, readBounded, safeUrl, snapshotArguments, type Ed25519Key, type MandateErrorCode } from '@mandate/core'
import { refusalText } from '@mandate/core/kernel'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'
import { createCredentialProvider, type CallCredentialOptions } from './credentials.js'
import { discoverProtectedResource, type ProtectedResourceMetadata } from './discovery.js'
import { challengeParams, stepUpRefused, stepUpScopes } from './step_up.js'
import { boundResponse, DEFAULT_MAX_RESPONSE_BYTES } from './bounded_response.js'

export interface MandateFetchOptions extends CallCredentialOptions {
  /** The MCP endpoint (Streamable HTTP). Credentials are only ever sent to exactly this URL. */
  serverUrl: string | URL
  /** The holder's key: signs the DPoP proof of every call. */
  key: Ed25519Key
  /** The fetch to wrap (default: global fetch). */
  fetch?: FetchLike
  /**
   * Read the server's RFC 9728 metadata before the first call and check that it names this URL and
   * this Authority (default true). When false, the server URL itself is the audience.
   */
  discover?: boolean
  /** Called with the validated metadata after discovery. */
  onDiscovered?: (metadata: ProtectedResourceMetadata) => void
  /**
   * Largest answer accepted from the server (bytes): a JSON answer whole, each SSE event on its own;
   * error answers are read up to 64 KiB. Default 16 MiB. Beyond it the answer is INVALID_RESPONSE.
   */
  maxResponseBytes?: number
}

/** Canonical form of an endpoint URL for comparison and as an audience: origin + path. */
export function canonicalUrl(url: string | URL): string {
  const u = new URL(url)
  return `${u.origin}${u.pathname}`
}

export interface ToolCallMessage {
  name: string
  arguments: unknown
}

export function parseToolCall(body: string): ToolCallMessage | undefined {
  let msg: unknown
  try {
    msg = JSON.parse(body)
  } catch {
    return undefined
  }
  const messages = Array.isArray(msg) ? msg : [msg]
  const calls = messages.filter((m) => typeof m === 'object' && m !== null && (m as { method?: unknown }).method === 'tools/call')
  if (calls.length === 0) return undefined
  if (Array.isArray(msg)) throw new MandateError('INVALID_REQUEST', 'a tools/call cannot be sent in a batch: each call needs its own credential')
  const params = (calls[0] as { params?: unknown }).params
  const name = typeof params === 'object' && params !== null ? (params as { name?: unknown }).name : undefined
  if (typeof name !== 'string') throw new MandateError('INVALID_REQUEST', 'tools/call without a tool name')
  // limits applied before anything is minted or hashed; the body sent is the JSON these were parsed from
  return { name, arguments: snapshotArguments((params as { arguments?: unknown }).arguments ?? {}) }
}

/** The `error` parameter of the answer's `WWW-Authenticate` challenge. */
export function challengeError(res: Response): string | undefined {
  return challengeParams(res.headers.get('www-authenticate')).error
}

/** A refusal body is a short OAuth error object; anything bigger or slower is not read. */
const MAX_REFUSAL_BYTES = 8192
const REFUSAL_TIMEOUT_MS = 5_000

export async function refusalFrom(res: Response, url: string | URL = res.url || 'about:blank'): Promise<MandateError> {
  let body: Record<string, unknown> = {}
  try {
    const text = await readBounded(res, url, { maxBytes: MAX_REFUSAL_BYTES, timeoutMs: REFUSAL_TIMEOUT_MS, invalid: 'INVALID_RESPONSE', what: 'refusal' })
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>
  } catch {
    // too large, too slow or not JSON: the status and challenge below still say what happened
  }
  const challenge = challengeParams(res.headers.get('www-authenticate'))
  const oauth = typeof body.error === 'string' ? body.error : challenge.error
  const code: MandateErrorCode = isMandateErrorCode(body.mandate_code)
    ? body.mandate_code
    : oauth === 'insufficient_scope'
      ? 'INSUFFICIENT_SCOPE'
      : oauth === 'use_dpop_nonce'
        ? 'NONCE_REQUIRED'
        : 'ACCESS_DENIED'
  const description = typeof body.error_description === 'string' ? refusalText(body.error_description) : `the server refused the call (HTTP ${res.status})`
  const detail: Record<string, string | number> = { source: 'resource', status: res.status }
  // the scopes a 403 insufficient_scope requires: the challenge says (RFC 6750 §3), a Mandate guard's body repeats it
  const scope = challenge.scope ?? (typeof body.scope === 'string' ? body.scope : undefined)
  if (scope !== undefined) detail.scope = scope.slice(0, 2048)
  return new MandateError(code, description, { detail })
}

/**
 * `fetch` to the MCP server, with a network failure as a MandateError (`INVALID_RESPONSE`, with the
 * URL) instead of a raw `TypeError: fetch failed`. A caller's own abort passes through unchanged.
 */
export function reachingPeer(base: FetchLike, maxResponseBytes: number = DEFAULT_MAX_RESPONSE_BYTES): FetchLike {
  return async (url, init) => boundResponse(await reach(url, init), maxResponseBytes)
  async function reach(url: string | URL, init: RequestInit | undefined): Promise<Response> {
    try {
      // The MCP transport hands every request the same long-lived signal, and undici adds an abort
      // listener to it per Request that only goes away when that Request is collected: thousands of
      // calls pile up listeners (MaxListenersExceededWarning). A dependent signal per request follows
      // the caller's abort without adding a listener to it.
      const signal = init?.signal ? AbortSignal.any([init.signal]) : undefined
      return await base(url, signal ? { ...init, signal } : init)
    } catch (err) {
      if (MandateError.is(err) || init?.signal?.aborted || (err instanceof Error && err.name === 'AbortError')) throw err
      const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause
      const reason = cause && typeof cause.code === 'string' && /^[A-Z0-9_]{2,40}$/.test(cause.code) ? cause.code : 'network'
      throw new MandateError('INVALID_RESPONSE', `the MCP server at ${safeUrl(url)} could not be reached`, { detail: { url: safeUrl(url), reason }, cause: err })
    }
  }
}

/** `maxResponseBytes` as given, or the default; anything but a positive integer is CONFIG_INVALID. */
export function maxResponseBytesOption(v: unknown): number {
  if (v === undefined) return DEFAULT_MAX_RESPONSE_BYTES
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1024) throw new MandateError('CONFIG_INVALID', 'maxResponseBytes must be an integer of at least 1024')
  return v
}

/**
 * A tools/call answered with a redirect: refused, never followed. The SDK re-sends a request to a
 * same-origin Location through this fetch, and each re-send would cost a fresh credential (and an
 * Authority exchange) for a server that did not answer the call.
 */
export async function refuseRedirect(res: Response, url: string | URL): Promise<Response> {
  if (res.status < 300 || res.status > 399) return res
  await res.body?.cancel().catch(() => undefined)
  throw new MandateError('INVALID_RESPONSE', `the MCP server at ${safeUrl(url)} answered a tools/call with a redirect (HTTP ${res.status}); a credential is never re-sent to follow it`, { detail: { url: safeUrl(url), status: res.status } })
}

/**
 * The `tools/call` a request carries, when it is one, after checking that it goes to the endpoint
 * and that the endpoint is the resource its metadata names; undefined for any other request.
 */
export async function toolCallFor(endpoint: string, audience: (signal?: AbortSignal) => Promise<string>, url: string | URL, init: RequestInit | undefined): Promise<ToolCallMessage | undefined> {
  const method = (init?.method ?? 'GET').toUpperCase()
  if (method !== 'POST' || typeof init?.body !== 'string') return undefined
  const call = parseToolCall(init.body)
  if (!call) return undefined
  // never hand a credential to anything but the resource it was minted for
  if (canonicalUrl(url) !== endpoint) throw new MandateError('AUDIENCE_MISMATCH', 'refusing to send a credential to another URL')
  if ((await audience(init.signal ?? undefined)) !== endpoint) throw new MandateError('AUDIENCE_MISMATCH', 'the resource is not the URL being called')
  return call
}

/**
 * The server's canonical resource, learned once from its RFC 9728 metadata (checked against the
 * endpoint and the issuer); a failed discovery is retried on the next call, never cached.
 */
export function resourceDiscovery(o: { endpoint: string; issuer: string; fetch: FetchLike; discover?: boolean | undefined; onDiscovered?: ((metadata: ProtectedResourceMetadata) => void) | undefined }): (signal?: AbortSignal) => Promise<string> {
  let resource: Promise<string> | undefined
  return (signal) => {
    if (o.discover === false) return Promise.resolve(o.endpoint)
    if (!resource) {
      const p = discoverProtectedResource(o.endpoint, { fetch: o.fetch, issuer: o.issuer, ...(signal ? { signal } : {}) }).then((prm) => {
        o.onDiscovered?.(prm)
        return prm.resource
      })
      resource = p
      p.catch(() => {
        if (resource === p) resource = undefined
      })
    }
    return resource
  }
}

/**
 * A `fetch` for the MCP SDK's `StreamableHTTPClientTransport` that gives every `tools/call` POST its
 * own call credential and DPoP proof (`Authorization: DPoP <credential>`, `DPoP: <proof>`), inside
 * the one MCP session the transport already has. Other requests (initialize, tools/list,
 * notifications, the SSE GET, DELETE) pass through without any credential.
 *
 * The credential is requested for the server's canonical resource (RFC 8707), learned from its
 * RFC 9728 metadata, and is sent only to that exact URL (no redirects are followed with it).
 * A `use_dpop_nonce` challenge is answered once with the server's nonce. A `403 insufficient_scope`
 * that names the scopes the tool requires is answered once with a fresh call credential for them
 * (scope step-up, see `CallCredentialOptions.stepUp`). Any other 401/403 becomes a MandateError
 * with the server's code.
 *
 * @throws MandateError — see {@link createCallCredentialSource}, plus the server's refusal codes.
 */
export function createMandateFetch(options: MandateFetchOptions): FetchLike {
  const base = reachingPeer(options.fetch ?? fetch, maxResponseBytesOption(options.maxResponseBytes))
  const endpoint = canonicalUrl(options.serverUrl)
  const key = options.key
  if (!key || typeof key.sign !== 'function') throw new MandateError('CONFIG_INVALID', 'key must be an Ed25519Key')
  const credentials = createCredentialProvider(options)
  // RFC 9864: proofs say Ed25519; a resource that advertises only the older EdDSA name gets that
  let proofAlg: 'Ed25519' | 'EdDSA' = 'Ed25519'
  const audience = resourceDiscovery({
    endpoint, issuer: options.authority.issuer, fetch: base, discover: options.discover,
    onDiscovered: (prm) => {
      const algs = prm.dpop_signing_alg_values_supported
      if (Array.isArray(algs) && !algs.includes('Ed25519') && algs.includes('EdDSA')) proofAlg = 'EdDSA'
      options.onDiscovered?.(prm)
    },
  })
  let nonce: string | undefined

  async function send(url: string | URL, init: RequestInit, credential: string, call: ToolCallMessage): Promise<Response> {
    const headers = new Headers(init.headers)
    // RFC 9449 proof (htm, htu, ath, nonce) also bound to the tool and the argument digest
    const proof = createProof(key, { method: 'POST', url: endpoint, accessToken: credential, tool: call.name, arguments: call.arguments, alg: proofAlg, ...(nonce !== undefined ? { nonce } : {}) })
    headers.set('authorization', `DPoP ${credential}`)
    headers.set('dpop', proof)
    const res = await base(url, { ...init, headers, redirect: 'manual' })
    const fresh = res.headers.get('dpop-nonce')
    if (fresh) nonce = fresh
    return res
  }

  return async (url, init) => {
    const call = await toolCallFor(endpoint, audience, url, init)
    if (!call || !init) return base(url, init)
    const request = { audience: endpoint, tool: call.name, arguments: call.arguments, ...(init.signal ? { signal: init.signal } : {}) }
    const { token, cached } = await credentials.credential(request)
    const attempt = async (credential: string): Promise<Response> => {
      let res = await send(url, init, credential, call)
      if (res.status === 401 && challengeError(res) === 'use_dpop_nonce' && res.headers.get('dpop-nonce')) {
        await res.body?.cancel()
        res = await send(url, init, credential, call)
      }
      return refuseRedirect(res, url)
    }
    const res = await attempt(token)
    if (res.status !== 401 && res.status !== 403) return res
    const refusal = await refusalFrom(res, url)
    // scope step-up: once per call, with a fresh credential (the refused one is spent), never wider
    // than the mandate (the Authority refuses that), and a second refusal is the caller's answer
    const scopes = credentials.stepUp ? stepUpScopes(refusal, credentials.scopes) : undefined
    if (scopes) {
      let fresh: string
      try {
        fresh = await credentials.stepUpCredential({ ...request, scopes })
      } catch (err) {
        throw stepUpRefused(err, refusal)
      }
      const again = await attempt(fresh)
      if (again.status === 401 || again.status === 403) throw await refusalFrom(again, url)
      return again
    }
    if (!cached) throw refusal
    // the server refused before running anything: this tool needs an Authority-minted call
    // credential (the mandate's or the server's rule, not the agent's choice), so ask for one
    if (refusal.code === 'CALL_CREDENTIAL_REQUIRED') {
      const again = await attempt(await credentials.perCall(request))
      if (again.status === 401 || again.status === 403) throw await refusalFrom(again, url)
      return again
    }
    credentials.refused(request, refusal.code)
    throw refusal
  }
}
