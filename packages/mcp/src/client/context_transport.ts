import { MandateError } from '@mandate/core'
import { StreamableHTTPClientTransport, type StreamableHTTPClientTransportOptions } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { ProtectedResourceMetadata } from './discovery.js'
import { canonicalUrl, maxResponseBytesOption, reachingPeer, refuseRedirect, refusalFrom, resourceDiscovery, toolCallFor } from './fetch_with_credentials.js'

/** The fetch an attach hook sends through (fetch-compatible; the MCP transport passes URLs, not Requests). */
export type AttachTarget = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

export interface ContextCredentialFetchOptions {
  /** The MCP endpoint (Streamable HTTP). Credentials are only ever sent to exactly this URL. */
  serverUrl: string | URL
  /** The Authority's issuer: the server's RFC 9728 metadata must name it. */
  issuer: string
  /**
   * Wrap a fetch so that the request it sends carries the credential of the tool call being run
   * (`Authorization: DPoP <credential>` and a `DPoP` proof bound to the tool and arguments).
   * With `@mandate/langchain`: `(next) => createMandateFetch({ fetch: next })`, where the agent's
   * `mandateMiddleware` (or `withMandate`) lists the MCP tools as `remote` with this server as
   * their audience, so it obtains one credential per call and runs the tool inside its context.
   */
  attach: (next: AttachTarget) => FetchLike
  /** The fetch to wrap (default: global fetch). */
  fetch?: FetchLike
  /** Read and check the server's RFC 9728 metadata before the first call (default true). */
  discover?: boolean
  onDiscovered?: (metadata: ProtectedResourceMetadata) => void
  /** Largest answer accepted from the server (bytes; a JSON answer whole, each SSE event on its own). Default 16 MiB. */
  maxResponseBytes?: number
}

/**
 * A `fetch` for `StreamableHTTPClientTransport` whose `tools/call` POSTs carry a credential that the
 * caller obtained for the call being run (e.g. `@mandate/langchain`'s middleware, one credential per
 * tool call, held in its async context), instead of exchanging one itself. Everything else
 * (initialize, tools/list, notifications, the SSE GET, DELETE) goes out without a credential.
 *
 * The same rules as {@link createMandateFetch} hold: the resource is checked against its RFC 9728
 * metadata and the Authority's issuer, credentials go only to exactly this URL and never through a
 * redirect, and a 401/403 becomes a MandateError with the server's code. Fail closed: a `tools/call`
 * the attach hook did not give a DPoP credential and proof is never sent (`PROOF_MISSING`).
 * A server that demands DPoP nonces is answered with `NONCE_REQUIRED`: a context credential is
 * single use, so the call is not retried. For the same reason there is no scope step-up here: a
 * `403 insufficient_scope` is `INSUFFICIENT_SCOPE` with `detail.scope` (the scopes the server
 * requires), for the caller's framework to ask for a credential with them.
 */
export function createContextCredentialFetch(options: ContextCredentialFetchOptions): FetchLike {
  if (typeof options?.attach !== 'function') throw new MandateError('CONFIG_INVALID', 'attach must wrap a fetch')
  if (typeof options.issuer !== 'string' || options.issuer.length === 0) throw new MandateError('CONFIG_INVALID', 'issuer is required')
  const base = reachingPeer(options.fetch ?? fetch, maxResponseBytesOption(options.maxResponseBytes))
  const endpoint = canonicalUrl(options.serverUrl)
  const audience = resourceDiscovery({ endpoint, issuer: options.issuer, fetch: base, discover: options.discover, onDiscovered: options.onDiscovered })

  // what the attach hook sends through: only to the endpoint, only with a DPoP credential, no redirects
  const attached = options.attach(async (input, init) => {
    if (input instanceof Request) throw new MandateError('CONFIG_INVALID', 'the attach hook must pass the URL and init through, not a Request')
    const url = input
    if (canonicalUrl(url) !== endpoint) throw new MandateError('AUDIENCE_MISMATCH', 'refusing to send a credential to another URL')
    const headers = new Headers(init?.headers)
    if (!/^dpop \S+$/i.test(headers.get('authorization') ?? '') || !headers.get('dpop')) {
      throw new MandateError('PROOF_MISSING', 'no call credential for this tool call: it must run inside a Mandate-guarded tool call')
    }
    return base(url, { ...init, redirect: 'manual' })
  })

  return async (url, init) => {
    if (!(await toolCallFor(endpoint, audience, url, init))) return base(url, init)
    const res = await refuseRedirect(await attached(url, init), url)
    if (res.status === 401 || res.status === 403) throw await refusalFrom(res, url)
    return res
  }
}

export interface ContextCredentialTransportOptions extends Omit<ContextCredentialFetchOptions, 'serverUrl'> {
  /** Other transport options (reconnection, session id). `fetch` and `authProvider` are owned by Mandate. */
  transport?: Omit<StreamableHTTPClientTransportOptions, 'fetch' | 'authProvider'>
}

/**
 * A Streamable HTTP client transport (one MCP session) whose every `tools/call` carries the credential
 * of the tool call being run, obtained by the caller's framework adapter. See
 * {@link createContextCredentialFetch}. With LangChain:
 *
 * ```ts
 * import { createMandateFetch, mandateMiddleware } from '@mandate/langchain'
 * await client.connect(createContextCredentialTransport(url, { issuer, attach: (next) => createMandateFetch({ fetch: next }) }))
 * const mcpTools = await loadMcpTools('billing', client)
 * createAgent({ model, tools: [...localTools, ...mcpTools], middleware: [mandateMiddleware({ ..., remote: mcpTools.map((t) => t.name) })] })
 * ```
 */
export function createContextCredentialTransport(serverUrl: string | URL, options: ContextCredentialTransportOptions): StreamableHTTPClientTransport {
  const { transport, ...fetchOptions } = options
  const url = new URL(serverUrl)
  return new StreamableHTTPClientTransport(url, { ...transport, fetch: createContextCredentialFetch({ ...fetchOptions, serverUrl: url }) })
}
