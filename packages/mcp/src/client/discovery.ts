import { fetchBounded, MandateError, safeUrl } from '@mandate/core'
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js'

/** RFC 9728 protected resource metadata, the members Mandate relies on. */
export interface ProtectedResourceMetadata {
  resource: string
  authorization_servers?: string[]
  jwks_uri?: string
  scopes_supported?: string[]
  bearer_methods_supported?: string[]
  dpop_signing_alg_values_supported?: string[]
  dpop_bound_access_tokens_required?: boolean
  resource_name?: string
  [member: string]: unknown
}

/** RFC 9728 §3.1: `/.well-known/oauth-protected-resource` inserted between the host and the path. */
export function protectedResourceMetadataUrl(resource: string | URL): URL {
  const u = new URL(resource)
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
  return new URL(`/.well-known/oauth-protected-resource${path}`, u.origin)
}

/** The resource identifier as compared (RFC 9728 §3.3): no fragment, no query. */
function canonical(url: string | URL): string {
  const u = new URL(url)
  return `${u.origin}${u.pathname}`
}

export interface DiscoverOptions {
  fetch?: FetchLike
  /** The Authority's issuer; it must be listed in `authorization_servers`. */
  issuer: string
  signal?: AbortSignal
  /** Deadline for the whole answer, headers and body (default 10 000 ms). */
  timeoutMs?: number
}

const MAX_METADATA_BYTES = 64 * 1024
const DEFAULT_TIMEOUT_MS = 10_000

/**
 * Fetch and validate a server's protected resource metadata (RFC 9728): `resource` must equal the
 * URL that was called, `authorization_servers` must name the expected issuer, and the resource must
 * accept DPoP-bound tokens signed with EdDSA. The answer is read within 64 KiB and `timeoutMs`
 * while it streams in; redirects are refused.
 *
 * @throws MandateError `RESOURCE_NOT_PROTECTED` (the server serves no metadata: a 4xx answer, e.g.
 *   an unguarded MCP server's 404 — no credential is sent to it), `INVALID_RESPONSE` (unreachable,
 *   too slow, too large, a 5xx, or not valid metadata; `detail.url` names the URL),
 *   `AUDIENCE_MISMATCH` (resource differs from the URL), `ISSUER_MISMATCH` (another authorization
 *   server), `ALG_NOT_ALLOWED`.
 */
export async function discoverProtectedResource(serverUrl: string | URL, options: DiscoverOptions): Promise<ProtectedResourceMetadata> {
  const metadataUrl = protectedResourceMetadataUrl(serverUrl)
  const where = safeUrl(serverUrl)
  const res = await fetchBounded(
    metadataUrl,
    { method: 'GET', headers: { accept: 'application/json' } },
    {
      fetch: (options.fetch ?? fetch) as typeof fetch,
      maxBytes: MAX_METADATA_BYTES,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      signal: options.signal,
      unreachable: 'INVALID_RESPONSE',
      invalid: 'INVALID_RESPONSE',
      what: 'protected resource metadata',
    },
  )
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
    throw new MandateError('RESOURCE_NOT_PROTECTED', `the server at ${where} does not advertise Mandate protection (no protected resource metadata: HTTP ${res.status}), so no credential was sent to it`, {
      detail: { url: where, status: res.status },
    })
  }
  if (res.status !== 200) {
    throw new MandateError('INVALID_RESPONSE', `protected resource metadata answered HTTP ${res.status}`, { detail: { url: safeUrl(metadataUrl), status: res.status } })
  }
  const invalid = (message: string) => new MandateError('INVALID_RESPONSE', message, { detail: { url: safeUrl(metadataUrl) } })
  let doc: unknown
  try {
    doc = JSON.parse(res.text)
  } catch {
    throw invalid('protected resource metadata is not JSON')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('protected resource metadata must be an object')
  const prm = doc as ProtectedResourceMetadata
  if (typeof prm.resource !== 'string') throw invalid('protected resource metadata has no resource')
  let same: boolean
  try {
    same = prm.resource === canonical(prm.resource) && canonical(prm.resource) === canonical(serverUrl)
  } catch {
    same = false
  }
  if (!same) throw new MandateError('AUDIENCE_MISMATCH', 'protected resource metadata names another resource')
  const servers = prm.authorization_servers
  if (!Array.isArray(servers) || !servers.every((s) => typeof s === 'string')) {
    throw invalid('protected resource metadata has no authorization_servers')
  }
  if (!servers.includes(options.issuer)) throw new MandateError('ISSUER_MISMATCH', 'the resource does not trust this Authority')
  const algs = prm.dpop_signing_alg_values_supported
  if (algs !== undefined && (!Array.isArray(algs) || !algs.some((a) => a === 'EdDSA' || a === 'Ed25519'))) {
    throw new MandateError('ALG_NOT_ALLOWED', 'the resource does not accept EdDSA proofs')
  }
  return prm
}
