import type { JsonObject } from '../encoding/strict_json.js'
import { backend } from '../crypto/backend.js'
import { MandateError } from '../errors.js'
import { parseCompactJws, signCompactJws } from '../jws/compact.js'
import type { Ed25519Key } from '../identity/key.js'
import type { KeyResolver } from '../keys/key_set.js'
import { defaultConstraintRegistry, type ConstraintRegistry } from '../narrowing/constraints.js'
import { audienceList, MANDATE_TYP, MAX_MANDATE_LENGTH, parseMandateClaims, type MandateClaims } from './claims.js'

export const MAX_SKEW_SECONDS = 60
export const DEFAULT_SKEW_SECONDS = 30

export interface VerifyMandateOptions {
  /** Exact `iss` to accept. */
  issuer: string
  keys: KeyResolver
  /** When set, `aud` must contain it. */
  audience?: string
  /** Current time in seconds. */
  now?: number
  /** Wall-clock skew allowance in seconds (0..60). */
  skew?: number
  registry?: ConstraintRegistry
}

export interface VerifiedMandate {
  claims: MandateClaims
  header: JsonObject
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

export function checkSkew(skew: number | undefined): number {
  const s = skew ?? DEFAULT_SKEW_SECONDS
  if (!Number.isFinite(s) || s < 0 || s > MAX_SKEW_SECONDS) throw new TypeError(`skew must be between 0 and ${MAX_SKEW_SECONDS} seconds`)
  return s
}

/**
 * Verify a mandate (or call credential): strict parse, header policy, key by `kid` from the trusted
 * set only, signature, then claims (shape, issuer, audience, time). The signature is checked before
 * any claim is trusted.
 */
export async function verifyMandate(token: unknown, options: VerifyMandateOptions): Promise<VerifiedMandate> {
  const skew = checkSkew(options.skew)
  const jws = parseCompactJws(token, { typ: MANDATE_TYP, requireKid: true, maxLength: MAX_MANDATE_LENGTH })
  const key = await options.keys.resolve(jws.header.kid as string)
  if (!backend.verify(key, jws.signingInput, jws.signature)) throw new MandateError('SIGNATURE_INVALID', 'mandate signature is invalid')
  const claims = parseMandateClaims(jws.payload, options.registry ?? defaultConstraintRegistry)
  if (claims.iss !== options.issuer) throw new MandateError('ISSUER_MISMATCH', 'mandate was not issued by the expected issuer')
  if (options.audience !== undefined && !audienceList(claims.aud).includes(options.audience)) {
    throw new MandateError('AUDIENCE_MISMATCH', 'mandate is not for this audience')
  }
  checkTimes(claims, options.now ?? nowSeconds(), skew)
  return { claims, header: jws.header }
}

export function checkTimes(claims: Pick<MandateClaims, 'exp' | 'nbf' | 'iat'>, now: number, skew: number): void {
  if (now - skew >= claims.exp) throw new MandateError('TOKEN_EXPIRED', 'mandate has expired')
  if (claims.nbf > now + skew) throw new MandateError('TOKEN_NOT_YET_VALID', 'mandate is not yet valid')
  if (claims.iat > now + skew) throw new MandateError('TOKEN_NOT_YET_VALID', 'mandate was issued in the future')
}

/** Sign mandate claims with the Authority's key (`typ: at+jwt`, `kid` = key thumbprint). */
export function signMandate(claims: MandateClaims, key: Ed25519Key, registry: ConstraintRegistry = defaultConstraintRegistry): string {
  // never sign something the verifier would refuse
  parseMandateClaims(JSON.parse(JSON.stringify(claims)) as JsonObject, registry)
  const token = signCompactJws({ alg: 'EdDSA', typ: MANDATE_TYP, kid: key.kid }, claims as unknown as Record<string, unknown>, key)
  if (token.length > MAX_MANDATE_LENGTH) throw new MandateError('TOKEN_TOO_LARGE', 'mandate would exceed the size limit')
  return token
}

/** Decode a mandate's header and claims WITHOUT verifying it: for display and debugging only. */
export function decodeMandateUnverified(token: string): { header: JsonObject; payload: JsonObject } {
  const jws = parseCompactJws(token, { typ: MANDATE_TYP, maxLength: MAX_MANDATE_LENGTH })
  return { header: jws.header, payload: jws.payload }
}
