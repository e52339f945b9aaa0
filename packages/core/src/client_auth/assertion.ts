import { backend, type PublicKeyHandle } from '../crypto/backend.js'
import { MandateError } from '../errors.js'
import type { Ed25519Key } from '../identity/key.js'
import { parseCompactJws, signCompactJws } from '../jws/compact.js'
import { randomId } from '../mandate/ids.js'
import type { ReplayStore } from '../stores/replay.js'

/** `typ` of an RFC 7523 client assertion (draft-ietf-oauth-rfc7523bis explicit typing). */
export const CLIENT_ASSERTION_TYP = 'client-authentication+jwt'
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
export const MAX_ASSERTION_LIFETIME = 300

/** Create a `private_key_jwt` client assertion: iss = sub = client id, aud = the Authority's issuer. */
export function createClientAssertion(key: Ed25519Key, options: { clientId: string; audience: string; now?: number; lifetime?: number }): string {
  const now = options.now ?? Math.floor(Date.now() / 1000)
  return signCompactJws(
    { alg: 'EdDSA', typ: CLIENT_ASSERTION_TYP, kid: key.kid },
    { iss: options.clientId, sub: options.clientId, aud: options.audience, jti: randomId(), iat: now, exp: now + Math.min(options.lifetime ?? 60, MAX_ASSERTION_LIFETIME) },
    key,
  )
}

export interface VerifyClientAssertionOptions {
  /** Accepted `aud` values (the issuer identifier, and optionally the token endpoint URL). */
  audiences: readonly string[]
  /** Look up the registered key of a client id; throw INVALID_CLIENT for unknown or disabled clients. */
  resolveClientKey(clientId: string): PublicKeyHandle | Promise<PublicKeyHandle>
  replay: ReplayStore
  now?: number
  skew?: number
}

/** Verify a client assertion and return the authenticated client id. Every failure is INVALID_CLIENT. */
export async function verifyClientAssertion(assertion: unknown, options: VerifyClientAssertionOptions): Promise<string> {
  try {
    const jws = parseCompactJws(assertion, { typ: CLIENT_ASSERTION_TYP, maxLength: 4096 })
    const p = jws.payload
    if (typeof p.iss !== 'string' || p.iss !== p.sub) throw new MandateError('INVALID_CLIENT', 'assertion iss and sub must both be the client id')
    const key = await options.resolveClientKey(p.iss)
    if (!backend.verify(key, jws.signingInput, jws.signature)) throw new MandateError('INVALID_CLIENT', 'client assertion signature is invalid')
    const auds = Array.isArray(p.aud) ? p.aud : [p.aud]
    if (!auds.some((a) => typeof a === 'string' && options.audiences.includes(a))) throw new MandateError('INVALID_CLIENT', 'client assertion audience is wrong')
    const now = options.now ?? Math.floor(Date.now() / 1000)
    const skew = options.skew ?? 30
    if (typeof p.exp !== 'number' || now - skew >= p.exp) throw new MandateError('INVALID_CLIENT', 'client assertion has expired')
    if (p.iat !== undefined && (typeof p.iat !== 'number' || p.iat > now + skew)) throw new MandateError('INVALID_CLIENT', 'client assertion iat is in the future')
    if (p.exp - (typeof p.iat === 'number' ? p.iat : now) > MAX_ASSERTION_LIFETIME + skew) throw new MandateError('INVALID_CLIENT', 'client assertion lifetime is too long')
    if (p.nbf !== undefined && (typeof p.nbf !== 'number' || p.nbf > now + skew)) throw new MandateError('INVALID_CLIENT', 'client assertion is not yet valid')
    if (typeof p.jti !== 'string' || p.jti.length < 16 || p.jti.length > 128) throw new MandateError('INVALID_CLIENT', 'client assertion jti is required')
    if (!(await options.replay.use(`assertion:${p.iss}:${p.jti}`, p.exp + skew))) throw new MandateError('INVALID_CLIENT', 'client assertion has already been used')
    return p.iss
  } catch (err) {
    if (MandateError.is(err) && err.code === 'INVALID_CLIENT') throw err
    throw new MandateError('INVALID_CLIENT', 'client authentication failed', { cause: err })
  }
}
