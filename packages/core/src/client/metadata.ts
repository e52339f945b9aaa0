/**
 * RFC 8414 discovery of the Authority's metadata, shared by the HTTP client and createRemoteGuard:
 * bounded read, exact issuer match, every endpoint member an absolute https URL (http on loopback)
 * or absent.
 */
import { parseStrictJson } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import { fetchBounded, safeUrl } from '../http/bounded_fetch.js'
import { isSecureTransportUrl, requireSecureUrl } from '../http/transport_url.js'

/** The members of the Authority's RFC 8414 metadata the kit relies on. */
export interface AuthorityMetadata {
  issuer: string
  token_endpoint: string
  jwks_uri?: string
  introspection_endpoint?: string
  revocation_endpoint?: string
  revocation_status_endpoint?: string
  approvals_endpoint?: string
  audit_endpoint?: string
}

const ENDPOINTS = ['token_endpoint', 'jwks_uri', 'introspection_endpoint', 'revocation_endpoint', 'revocation_status_endpoint', 'approvals_endpoint', 'audit_endpoint'] as const
const MAX_METADATA_BYTES = 64 * 1024

/** RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path. */
export function metadataUrl(issuer: string): string {
  const u = new URL(issuer)
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
  return `${u.origin}/.well-known/oauth-authorization-server${path}`
}

export interface FetchAuthorityMetadataOptions {
  fetch?: typeof fetch | undefined
  /** Deadline for the request and body (ms). Default 10 000. */
  timeoutMs?: number | undefined
  signal?: AbortSignal | undefined
  /**
   * WEAKENS SECURITY. Accept an `http:` issuer, and `http:` endpoints in its metadata, on hosts
   * that are not loopback. Default false: an http issuer off this machine is CONFIG_INVALID, and
   * metadata advertising an http endpoint off this machine is INVALID_RESPONSE.
   */
  insecureAllowHttp?: boolean | undefined
}

/**
 * Fetch and validate the Authority's metadata. The document's `issuer` must equal `issuer`
 * exactly (RFC 8414 §3.3), or the answer is refused.
 *
 * @throws MandateError AUTHORITY_UNREACHABLE (network), INVALID_RESPONSE (status, size, shape),
 * ISSUER_MISMATCH (another issuer).
 */
export async function fetchAuthorityMetadata(issuer: string, options: FetchAuthorityMetadataOptions = {}): Promise<AuthorityMetadata> {
  const insecureAllowHttp = options.insecureAllowHttp === true
  requireSecureUrl(issuer, 'the issuer', { insecureAllowHttp })
  const url = metadataUrl(issuer)
  const res = await fetchBounded(url, { headers: { accept: 'application/json' } }, {
    fetch: options.fetch, maxBytes: MAX_METADATA_BYTES, timeoutMs: options.timeoutMs ?? 10_000, signal: options.signal,
    unreachable: 'AUTHORITY_UNREACHABLE', invalid: 'INVALID_RESPONSE', what: 'Authority metadata',
  })
  const detail = { url: safeUrl(url), status: res.status }
  if (res.status !== 200) throw new MandateError('INVALID_RESPONSE', `Authority metadata answered HTTP ${res.status}`, { detail })
  let m: unknown
  try {
    // strict, as the JWKS and the revocation status: a repeated `issuer` or `jwks_uri` is refused, not last-wins
    m = parseStrictJson(res.text, { maxDepth: 16, maxArray: 4096, maxMembers: 512 })
  } catch {
    throw new MandateError('INVALID_RESPONSE', 'Authority metadata is not valid JSON', { detail })
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new MandateError('INVALID_RESPONSE', 'Authority metadata is not a JSON object', { detail })
  const doc = m as Record<string, unknown>
  if (doc.issuer !== issuer) throw new MandateError('ISSUER_MISMATCH', 'Authority metadata names another issuer', { detail: { url: safeUrl(url) } })
  const out: Record<string, string> = { issuer }
  for (const name of ENDPOINTS) {
    const v = doc[name]
    if (v === undefined) continue
    if (typeof v !== 'string' || !isHttpUrl(v)) throw new MandateError('INVALID_RESPONSE', `Authority metadata: ${name} must be an absolute http(s) URL`, { detail: { url: safeUrl(url), member: name } })
    // an https issuer must not hand the client or the guard to a cleartext endpoint
    if (!insecureAllowHttp && !isSecureTransportUrl(v)) {
      throw new MandateError('INVALID_RESPONSE', `Authority metadata: ${name} must be an https URL (plain http only on localhost, 127.0.0.1 or [::1])`, { detail: { url: safeUrl(url), member: name } })
    }
    out[name] = v
  }
  if (out.token_endpoint === undefined) throw new MandateError('INVALID_RESPONSE', 'Authority metadata has no token_endpoint', { detail: { url: safeUrl(url) } })
  return out as unknown as AuthorityMetadata
}

function isHttpUrl(v: string): boolean {
  try {
    const u = new URL(v)
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.hash === ''
  } catch {
    return false
  }
}
