import { MandateError } from '@mandate/core'
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
}

const MAX_METADATA_BYTES = 64 * 1024

/**
 * Fetch and validate a server's protected resource metadata (RFC 9728): `resource` must equal the
 * URL that was called, `authorization_servers` must name the expected issuer, and the resource must
 * accept DPoP-bound tokens signed with EdDSA.
 *
 * @throws MandateError `INVALID_REQUEST` (metadata missing or malformed), `AUDIENCE_MISMATCH`
 *   (resource differs from the URL), `ISSUER_MISMATCH` (another authorization server).
 */
export async function discoverProtectedResource(serverUrl: string | URL, options: DiscoverOptions): Promise<ProtectedResourceMetadata> {
  const metadataUrl = protectedResourceMetadataUrl(serverUrl)
  const f = options.fetch ?? fetch
  let res: Response
  try {
    res = await f(metadataUrl, { method: 'GET', headers: { accept: 'application/json' }, redirect: 'error', ...(options.signal ? { signal: options.signal } : {}) })
  } catch (err) {
    throw new MandateError('INVALID_REQUEST', 'protected resource metadata is unreachable', { cause: err })
  }
  if (res.status !== 200) {
    await res.body?.cancel()
    throw new MandateError('INVALID_REQUEST', `protected resource metadata answered HTTP ${res.status}`)
  }
  const text = await res.text()
  if (text.length > MAX_METADATA_BYTES) throw new MandateError('INVALID_REQUEST', 'protected resource metadata is too large')
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw new MandateError('INVALID_REQUEST', 'protected resource metadata is not JSON')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new MandateError('INVALID_REQUEST', 'protected resource metadata must be an object')
  const prm = doc as ProtectedResourceMetadata
  if (typeof prm.resource !== 'string') throw new MandateError('INVALID_REQUEST', 'protected resource metadata has no resource')
  let same: boolean
  try {
    same = prm.resource === canonical(prm.resource) && canonical(prm.resource) === canonical(serverUrl)
  } catch {
    same = false
  }
  if (!same) throw new MandateError('AUDIENCE_MISMATCH', 'protected resource metadata names another resource')
  const servers = prm.authorization_servers
  if (!Array.isArray(servers) || !servers.every((s) => typeof s === 'string')) {
    throw new MandateError('INVALID_REQUEST', 'protected resource metadata has no authorization_servers')
  }
  if (!servers.includes(options.issuer)) throw new MandateError('ISSUER_MISMATCH', 'the resource does not trust this Authority')
  const algs = prm.dpop_signing_alg_values_supported
  if (algs !== undefined && (!Array.isArray(algs) || !algs.some((a) => a === 'EdDSA' || a === 'Ed25519'))) {
    throw new MandateError('ALG_NOT_ALLOWED', 'the resource does not accept EdDSA proofs')
  }
  return prm
}
