import { createProof, MandateError } from '@mandate/core'
import { activeCall } from './context.js'

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
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

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
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) return false
  const base = aud.pathname.replace(/\/+$/, '')
  if (base === '') return true
  return url.pathname === base || url.pathname.startsWith(`${base}/`)
}

/**
 * Create a fetch that, inside a guarded tool call, attaches `Authorization: DPoP <credential>` and a
 * fresh DPoP proof (method, URL, access-token hash and the call's tool and argument digest) — and
 * refuses to send them to any origin or path outside the credential's audience, over plain HTTP
 * (loopback excepted), through a redirect, or twice (call credentials are single use).
 */
export function createMandateFetch(options: MandateFetchOptions = {}): FetchFunction {
  const base: FetchFunction = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const outside = options.outsideCall ?? 'refuse'
  if (outside !== 'refuse' && outside !== 'passthrough') throw new TypeError('outsideCall must be refuse or passthrough')
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
      throw new MandateError('AUDIENCE_MISMATCH', `refusing to send the call credential to ${url.origin}${url.pathname}: it is for another audience`)
    }
    if (call.sent) throw new MandateError('TOKEN_REPLAYED', 'the call credential was already sent; call credentials are single use')
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase()
    const headers = new Headers(request?.headers)
    new Headers(init?.headers).forEach((value, name) => headers.set(name, value))
    const proof = createProof(call.key, { method, url: url.href, accessToken: call.token, tool: call.tool, arguments: call.arguments })
    headers.set('authorization', `DPoP ${call.token}`)
    headers.set('dpop', proof)
    call.sent = true
    // never follow a redirect with the credential attached
    const redirect: RequestRedirect = init?.redirect === 'manual' ? 'manual' : 'error'
    if (request) return base(new Request(request, { ...init, method, headers, redirect }))
    return base(url, { ...init, method, headers, redirect })
  }
}

/** {@link createMandateFetch} with defaults: the global fetch, refused outside a guarded tool call. */
export const mandateFetch: FetchFunction = createMandateFetch()
