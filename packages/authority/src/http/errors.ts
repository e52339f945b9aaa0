/**
 * The one mapping from MandateError to HTTP answers. Token-endpoint specifics: a subject token that
 * fails verification is `invalid_request` (RFC 8693 §2.2.2), an invalid proof `invalid_dpop_proof`
 * (RFC 9449 §5), a nonce demand `use_dpop_nonce` with `DPoP-Nonce`, an approval need a 400
 * `authorization_pending` (the registered code for a pending human decision: OpenID CIBA §11,
 * RFC 8628 §3.5) with Mandate's detail in extension members (`mandate_code: APPROVAL_REQUIRED`,
 * `approval_id`, `approval_uri`, `expires_in`). `mandate_code` always keeps the precise code.
 * Unknown errors become a bare `server_error`: no message, no stack.
 */
import { MandateError } from '@mandate/core'

export const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' } as const

export interface ErrorAnswer {
  status: number
  body: Record<string, string | number>
  headers: Record<string, string>
}

function safe(err: unknown): MandateError {
  return MandateError.is(err) ? err : new MandateError('INTERNAL', 'internal error')
}

function bare(e: MandateError): ErrorAnswer {
  if (e.status >= 500) return { status: e.status, body: { error: e.oauthError, error_description: 'the server could not complete the request', mandate_code: e.code }, headers: { ...NO_STORE } }
  return { status: e.status, body: e.toOAuthBody(), headers: { ...NO_STORE } }
}

/** An error at the token endpoint. */
export function tokenErrorAnswer(err: unknown, ctx: { approvalsUrl: string; nowSec: number; dpopNonce?: string }): ErrorAnswer {
  const e = safe(err)
  const headers: Record<string, string> = { ...NO_STORE }
  const body = (error: string, status: number): ErrorAnswer => ({ status, body: { error, error_description: e.message, mandate_code: e.code }, headers })
  switch (e.code) {
    case 'APPROVAL_REQUIRED': {
      const id = String(e.detail?.approval_id ?? '')
      const exp = Number(e.detail?.expires_at ?? ctx.nowSec)
      return {
        status: 400,
        headers,
        body: { error: 'authorization_pending', error_description: e.message, mandate_code: e.code, approval_id: id, approval_uri: `${ctx.approvalsUrl}/${encodeURIComponent(id)}`, expires_in: Math.max(0, exp - ctx.nowSec) },
      }
    }
    case 'NONCE_REQUIRED':
      if (ctx.dpopNonce) headers['DPoP-Nonce'] = ctx.dpopNonce
      return body('use_dpop_nonce', 400)
    case 'APPROVAL_EXPIRED':
      return body('invalid_grant', 400)
    case 'NOT_FOUND':
      return body('invalid_request', 400)
    case 'FOREIGN_TOKEN_INVALID': {
      // which check the external token failed (a fixed vocabulary, never a claim value): an extension member
      const reason = e.detail?.reason
      return { status: 400, headers, body: { error: 'invalid_grant', error_description: e.message, mandate_code: e.code, ...(typeof reason === 'string' && /^[a-z_]{1,32}$/.test(reason) ? { reason } : {}) } }
    }
    default:
      break
  }
  // an invalid DPoP proof, whichever check refused it (RFC 9449 §5); its mandate_code stays precise
  if (e.oauthError === 'invalid_dpop_proof' || (e.detail?.dpop === true && e.status < 500)) return body('invalid_dpop_proof', 400)
  if (e.oauthError === 'invalid_token' || e.oauthError === 'insufficient_scope') return body('invalid_request', 400)
  return bare(e)
}

/**
 * An error at a form-authenticated OAuth endpoint (introspection RFC 7662 §2.3, revocation
 * RFC 7009 §2.2.1): the RFC 6749 §5.2 JSON body, `invalid_client` as a 401. The client
 * authenticated in the body (private_key_jwt), so there is no HTTP authentication scheme to
 * challenge: `WWW-Authenticate` is sent only when the client used one (`usedScheme`, the scheme of
 * its Authorization header), naming that scheme as RFC 6749 §5.2 requires.
 */
export function formErrorAnswer(err: unknown, usedScheme?: string): ErrorAnswer {
  const e = safe(err)
  if (e.oauthError === 'invalid_client' && e.status === 401) {
    const challenge = invalidClientChallenge(usedScheme)
    return { status: 401, body: e.toOAuthBody(), headers: { ...NO_STORE, ...(challenge ? { 'WWW-Authenticate': challenge } : {}) } }
  }
  return bare(e)
}

/** RFC 6749 §5.2: the `WWW-Authenticate` of a 401 invalid_client to a client that used HTTP authentication scheme `usedScheme`. */
export function invalidClientChallenge(usedScheme: string | undefined): string | undefined {
  return usedScheme !== undefined && /^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,31}$/.test(usedScheme) ? `${usedScheme} error="invalid_client"` : undefined
}

/** An error at a JSON endpoint authenticated by `Authorization: MandateAssertion` (so a 401 challenges that scheme). */
export function jsonErrorAnswer(err: unknown): ErrorAnswer {
  const e = safe(err)
  if (e.oauthError === 'invalid_client' && e.status === 401) {
    // a request that sent no credential at all gets a bare challenge, without an error code (RFC 6750 §3.1)
    const challenge = e.detail?.credentials === 'absent' ? 'MandateAssertion' : 'MandateAssertion error="invalid_client"'
    return { status: 401, body: e.toOAuthBody(), headers: { ...NO_STORE, 'WWW-Authenticate': challenge } }
  }
  return bare(e)
}

/** No route has this path (RFC 9110 §15.5.5): the standard body, `mandate_code: NOT_FOUND`. */
export function notFoundAnswer(): ErrorAnswer {
  return bare(new MandateError('NOT_FOUND', 'no such endpoint'))
}

/** The path exists but not with this method (RFC 9110 §15.5.6): 405 with `Allow` naming the methods it has. */
export function methodNotAllowedAnswer(allow: readonly string[]): ErrorAnswer {
  const a = bare(new MandateError('METHOD_NOT_ALLOWED', `this endpoint allows ${allow.join(', ')} only`))
  return { ...a, headers: { ...a.headers, Allow: allow.join(', ') } }
}
