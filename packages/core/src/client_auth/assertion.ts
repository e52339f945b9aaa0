import { backend, type PublicKeyHandle } from '../crypto/backend.js'
import { MandateError } from '../errors.js'
import type { Ed25519Key } from '../identity/key.js'
import { asciiBytes, b64uDecode, b64uDecodeText } from '../encoding/base64url.js'
import { DEFAULT_JSON_LIMITS, parseStrictJsonObject } from '../encoding/strict_json.js'
import { hasSmallOrderR, strongKeyHandle } from '../identity/point.js'
import { ACCEPTED_ALGS, EMITTED_ALG, parseCompactJws, signCompactJws, type ParsedJws } from '../jws/compact.js'
import { randomId } from '../mandate/ids.js'
import { checkedNow } from '../mandate/clock.js'
import { hasControlCharacter } from '../encoding/control_chars.js'
import { replayAnswer, type ReplayStore } from '../stores/replay.js'

/** `typ` of an RFC 7523 client assertion (draft-ietf-oauth-rfc7523bis explicit typing). */
export const CLIENT_ASSERTION_TYP = 'client-authentication+jwt'
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
export const MAX_ASSERTION_LIFETIME = 300

/** Create a `private_key_jwt` client assertion: iss = sub = client id, aud = the Authority's issuer. */
export function createClientAssertion(key: Ed25519Key, options: { clientId: string; audience: string; now?: number; lifetime?: number }): string {
  const now = options.now ?? Math.floor(Date.now() / 1000)
  return signCompactJws(
    { alg: EMITTED_ALG, typ: CLIENT_ASSERTION_TYP, kid: key.kid },
    { iss: options.clientId, sub: options.clientId, aud: options.audience, jti: randomId(), iat: now, exp: now + Math.min(options.lifetime ?? 60, MAX_ASSERTION_LIFETIME) },
    key,
  )
}

const MAX_ASSERTION_LENGTH = 4096

/**
 * Claims that only a mandate, a call credential or a hop carries. RFC 7523 assertions need no `typ`
 * (oauth4webapi's stock PrivateKeyJwt sends none), so an untyped JWT is accepted only when its
 * claims are an assertion's and none of these: an untyped mandate-shaped JWT signed by an agent's
 * key is never taken for a client assertion (cross-JWT confusion, RFC 8725 §2.8).
 */
const FOREIGN_CLAIMS = ['cnf', 'act', 'txn', 'authorization_details', 'delegation', 'call', 'credential', 'offline', 'client_id', 'scope', 'htm', 'htu', 'ath'] as const

/**
 * Parse an assertion: a typed one must be typed `client-authentication+jwt` (a mandate's `at+jwt`,
 * a proof's `dpop+jwt`, a hop's `mandate-hop+jwt` or any other `typ` is refused); an untyped one
 * gets the same strict parse (alg allowlist, only `alg`/`kid` headers, strict JSON, 64-byte
 * signature without a small-order R).
 */
function parseAssertion(assertion: unknown): ParsedJws {
  if (typeof assertion !== 'string') throw new MandateError('TOKEN_MALFORMED', 'client assertion must be a string')
  if (assertion.length > MAX_ASSERTION_LENGTH) throw new MandateError('TOKEN_TOO_LARGE', 'client assertion exceeds the size limit')
  const d1 = assertion.indexOf('.')
  const d2 = d1 === -1 ? -1 : assertion.indexOf('.', d1 + 1)
  if (d1 <= 0 || d2 === -1 || d2 === d1 + 1 || assertion.indexOf('.', d2 + 1) !== -1) throw new MandateError('TOKEN_MALFORMED', 'client assertion is not a compact JWS')
  const header = parseStrictJsonObject(b64uDecodeText(assertion.slice(0, d1), 'TOKEN_MALFORMED', 'header', 'INVALID_UTF8'), DEFAULT_JSON_LIMITS)
  if (header.typ !== undefined) return parseCompactJws(assertion, { typ: CLIENT_ASSERTION_TYP, maxLength: MAX_ASSERTION_LENGTH })
  for (const name of Object.keys(header)) if (name !== 'alg' && name !== 'kid') throw new MandateError('HEADER_NOT_ALLOWED', `header "${name.slice(0, 32)}" is not allowed`)
  if (typeof header.alg !== 'string' || !ACCEPTED_ALGS.has(header.alg)) throw new MandateError('ALG_NOT_ALLOWED', 'alg must be EdDSA or Ed25519')
  if (header.kid !== undefined && (typeof header.kid !== 'string' || header.kid.length === 0 || header.kid.length > 128)) throw new MandateError('TOKEN_MALFORMED', 'kid must be a short string')
  const payload = parseStrictJsonObject(b64uDecodeText(assertion.slice(d1 + 1, d2), 'TOKEN_MALFORMED', 'payload', 'INVALID_UTF8'), DEFAULT_JSON_LIMITS)
  const signature = b64uDecode(assertion.slice(d2 + 1), 'TOKEN_MALFORMED', 'signature')
  if (signature.length !== 64 || hasSmallOrderR(signature)) throw new MandateError('SIGNATURE_INVALID', 'client assertion signature is invalid')
  return { header, payload, signingInput: asciiBytes(assertion.slice(0, d2)), signature }
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

/**
 * Verify a client assertion and return the authenticated client id. Every failure is INVALID_CLIENT.
 * `typ` is optional (RFC 7523 §3 does not require it); when present it must be
 * `client-authentication+jwt`. Typed or not, the claims must be an assertion's: iss = sub, an
 * accepted `aud`, a short `exp`, a `jti`, and none of a mandate's, a call credential's or a proof's claims.
 */
export async function verifyClientAssertion(assertion: unknown, options: VerifyClientAssertionOptions): Promise<string> {
  try {
    const jws = parseAssertion(assertion)
    const p = jws.payload
    for (const c of FOREIGN_CLAIMS) if (p[c] !== undefined) throw new MandateError('INVALID_CLIENT', `a client assertion does not carry "${c}" (this JWT is not a client assertion)`)
    if (typeof p.iss !== 'string' || p.iss !== p.sub) throw new MandateError('INVALID_CLIENT', 'assertion iss and sub must both be the client id')
    // a hand-written resolver answering a weak key (identity, small order) must not make any signature verify
    const key = strongKeyHandle<PublicKeyHandle>(await options.resolveClientKey(p.iss))
    if (!backend.verify(key, jws.signingInput, jws.signature)) throw new MandateError('INVALID_CLIENT', 'client assertion signature is invalid')
    const auds = Array.isArray(p.aud) ? p.aud : [p.aud]
    // every value ours (draft-ietf-oauth-rfc7523bis: an assertion also addressed to another server
    // could have been minted for it and replayed here), and at least one
    if (auds.length === 0 || !auds.every((a) => typeof a === 'string' && options.audiences.includes(a))) throw new MandateError('INVALID_CLIENT', 'client assertion audience is wrong')
    const now = checkedNow(options.now)
    const skew = options.skew ?? 30
    if (typeof p.exp !== 'number' || now - skew >= p.exp) throw new MandateError('INVALID_CLIENT', 'client assertion has expired')
    if (p.iat !== undefined && (typeof p.iat !== 'number' || p.iat > now + skew)) throw new MandateError('INVALID_CLIENT', 'client assertion iat is in the future')
    if (p.exp - (typeof p.iat === 'number' ? p.iat : now) > MAX_ASSERTION_LIFETIME + skew) throw new MandateError('INVALID_CLIENT', 'client assertion lifetime is too long')
    if (p.nbf !== undefined && (typeof p.nbf !== 'number' || p.nbf > now + skew)) throw new MandateError('INVALID_CLIENT', 'client assertion is not yet valid')
    if (typeof p.jti !== 'string' || p.jti.length < 16 || p.jti.length > 128) throw new MandateError('INVALID_CLIENT', 'client assertion jti is required')
    // the jti becomes a replay-store key (Redis, a Postgres text column): no control characters
    if (hasControlCharacter(p.jti)) throw new MandateError('INVALID_CLIENT', 'client assertion jti must not contain control characters')
    if (!replayAnswer(await options.replay.use(`assertion:${p.iss}:${p.jti}`, p.exp + skew))) throw new MandateError('INVALID_CLIENT', 'client assertion has already been used')
    return p.iss
  } catch (err) {
    if (MandateError.is(err) && (err.code === 'INVALID_CLIENT' || err.code === 'CONFIG_INVALID')) throw err
    throw new MandateError('INVALID_CLIENT', 'client authentication failed', { cause: err })
  }
}
