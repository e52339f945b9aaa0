import { MandateError } from '../errors.js'

export interface ChallengeOptions {
  /** RFC 9728 protected resource metadata URL, advertised to clients. */
  resourceMetadata?: string
  realm?: string
  /** Required scopes, sent with insufficient_scope. */
  scope?: string
}

function quote(v: string): string {
  // RFC 9110 quoted-string: printable ASCII only, escape quote and backslash
  return `"${v.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, (c) => `\\${c}`)}"`
}

/**
 * The HTTP answer a resource server sends for a refusal (RFC 6750 §3, RFC 9449 §7.1 and §9):
 * status, a `WWW-Authenticate: DPoP …` challenge, and `DPoP-Nonce` when a nonce is demanded. A
 * refusal of a request without credentials (`detail.credentials: 'absent'`, as the guard marks it)
 * carries no `error` parameter (RFC 6750 §3.1).
 */
export function challengeFor(err: unknown, options: ChallengeOptions = {}): { status: number; headers: Record<string, string>; body: { error: string; error_description: string } } {
  const e = MandateError.is(err) ? err : new MandateError('INTERNAL', 'internal error')
  const params: string[] = []
  if (options.realm) params.push(`realm=${quote(options.realm)}`)
  // RFC 6750 §3.1: a request that lacks any authentication (or used a scheme this server does not
  // support) gets a challenge without an error code, so a client simply authenticates
  const absent = e.detail?.credentials === 'absent'
  if ((e.status === 401 || e.status === 403) && !absent) {
    params.push(`error=${quote(e.oauthError)}`, `error_description=${quote(e.message)}`)
  }
  if (e.status === 403 && options.scope) params.push(`scope=${quote(options.scope)}`)
  if (options.resourceMetadata) params.push(`resource_metadata=${quote(options.resourceMetadata)}`)
  params.push('algs="EdDSA Ed25519"')
  const headers: Record<string, string> = { 'WWW-Authenticate': `DPoP ${params.join(', ')}`, 'Cache-Control': 'no-store' }
  const nonce = e.detail?.dpop_nonce
  if (typeof nonce === 'string') headers['DPoP-Nonce'] = nonce
  const status = e.status === 401 || e.status === 403 ? e.status : e.status >= 500 ? e.status : 400
  return { status, headers, body: { error: e.oauthError, error_description: e.message } }
}
