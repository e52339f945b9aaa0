import { DEFAULT_JSON_LIMITS, hasLoneSurrogate, type JsonObject, type JsonValue } from '../encoding/strict_json.js'
import { strongKeyHandle } from '../identity/point.js'
import { backend, type PublicKeyHandle } from '../crypto/backend.js'
import { MandateError } from '../errors.js'
import { badClock, checkedNow, nowSeconds } from './clock.js'
import { b64uEncode } from '../encoding/base64url.js'
import { EMITTED_ALG, parseCompactJws, signEncodedJws, type ParsedJws } from '../jws/compact.js'
import type { Ed25519Key } from '../identity/key.js'
import type { KeyResolver } from '../keys/key_set.js'
import { defaultConstraintRegistry, type ConstraintRegistry } from '../narrowing/constraints.js'
import { audienceList, MANDATE_TYP, MAX_MANDATE_LENGTH, parseMandateClaims, type MandateClaims } from './claims.js'

export { nowSeconds }

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
  /** `kid` of the issuer key that verified the signature. */
  kid: string
  /** That key (a verifier that caches the result re-resolves `kid` and compares). */
  key: PublicKeyHandle
}

export function checkSkew(skew: number | undefined): number {
  const s = skew ?? DEFAULT_SKEW_SECONDS
  if (!Number.isFinite(s) || s < 0 || s > MAX_SKEW_SECONDS) throw new MandateError('CONFIG_INVALID', `skew must be between 0 and ${MAX_SKEW_SECONDS} seconds`)
  return s
}

/**
 * Verify a mandate (or call credential): strict parse, header policy, key by `kid` from the trusted
 * set only, signature, then claims (shape, issuer, audience, time). The signature is checked before
 * any claim is trusted.
 */
export async function verifyMandate(token: unknown, options: VerifyMandateOptions): Promise<VerifiedMandate> {
  const skew = checkSkew(options.skew)
  const jws = parseMandateJws(token)
  const kid = jws.header.kid as string
  const resolved = resolveTrustedKey(options.keys, kid)
  return finishMandate(jws, kid, resolved instanceof Promise ? await resolved : resolved, options, skew)
}

/**
 * The trusted key for `kid` from a caller's resolver, typed whatever the resolver does: its own
 * MandateErrors pass through; anything else it throws is JWKS_UNAVAILABLE and anything that is not
 * a key handle KEY_NOT_FOUND — neither repeating what the resolver said (its message may hold
 * anything). @internal
 */
export function resolveTrustedKey(keys: KeyResolver, kid: string): PublicKeyHandle | Promise<PublicKeyHandle> {
  if (typeof keys !== 'object' || keys === null || typeof keys.resolve !== 'function') throw new MandateError('CONFIG_INVALID', 'keys must be a key resolver (createLocalKeySet, createRemoteKeySet)')
  let resolved: unknown
  try {
    resolved = keys.resolve(kid)
  } catch (err) {
    throw resolverFailed(err)
  }
  // a local key set answers synchronously: no microtask for it
  if (resolved instanceof Promise) return resolved.then(usableKey, (err: unknown) => { throw resolverFailed(err) })
  return usableKey(resolved)
}

function resolverFailed(err: unknown): unknown {
  return MandateError.is(err) ? err : new MandateError('JWKS_UNAVAILABLE', 'the key resolver failed', { cause: err })
}

function usableKey(key: unknown): PublicKeyHandle {
  return strongKeyHandle<PublicKeyHandle>(key)
}

/**
 * The same as {@link verifyMandate} without a microtask when the key resolver answers
 * synchronously (a local key set, a warm remote one): returns the result itself, or a promise
 * when the resolver returned one. For the guard's hot path. @internal
 */
export function verifyMandateFast(token: unknown, options: VerifyMandateOptions): VerifiedMandate | Promise<VerifiedMandate> {
  const skew = checkSkew(options.skew)
  const jws = parseMandateJws(token)
  const kid = jws.header.kid as string
  const resolved = options.keys.resolve(kid)
  if (resolved instanceof Promise) return resolved.then((key) => finishMandate(jws, kid, key, options, skew))
  return finishMandate(jws, kid, resolved, options, skew)
}

function parseMandateJws(token: unknown): ParsedJws {
  return parseCompactJws(token, { typ: MANDATE_TYP, requireKid: true, maxLength: MAX_MANDATE_LENGTH })
}

function finishMandate(jws: ParsedJws, kid: string, key: PublicKeyHandle, options: VerifyMandateOptions, skew: number): VerifiedMandate {
  if (!backend.verify(key, jws.signingInput, jws.signature)) throw new MandateError('SIGNATURE_INVALID', 'mandate signature is invalid')
  const claims = parseMandateClaims(jws.payload, options.registry ?? defaultConstraintRegistry)
  if (claims.iss !== options.issuer) throw new MandateError('ISSUER_MISMATCH', 'mandate was not issued by the expected issuer')
  if (options.audience !== undefined && !audienceList(claims.aud).includes(options.audience)) {
    throw new MandateError('AUDIENCE_MISMATCH', 'mandate is not for this audience')
  }
  checkTimes(claims, checkedNow(options.now), skew)
  return { claims, header: jws.header, kid, key }
}

export function checkTimes(claims: Pick<MandateClaims, 'exp' | 'nbf' | 'iat'>, now: number, skew: number): void {
  // every comparison with NaN is false: a clock that answers NaN (or anything not a number) would
  // switch every time check off, so it refuses instead
  if (typeof now !== 'number' || !Number.isFinite(now)) throw badClock()
  if (now - skew >= claims.exp) throw new MandateError('TOKEN_EXPIRED', 'mandate has expired')
  if (claims.nbf > now + skew) throw new MandateError('TOKEN_NOT_YET_VALID', 'mandate is not yet valid')
  if (claims.iat > now + skew) throw new MandateError('TOKEN_NOT_YET_VALID', 'mandate was issued in the future')
}

// The protected header depends only on the kid: encode it once per key.
const headerSegments = new Map<string, string>()

function headerSegment(kid: string): string {
  let h = headerSegments.get(kid)
  if (h === undefined) {
    h = b64uEncode(JSON.stringify({ alg: EMITTED_ALG, typ: MANDATE_TYP, kid }))
    if (headerSegments.size >= 64) headerSegments.clear()
    headerSegments.set(kid, h)
  }
  return h
}

/**
 * A plain copy of JSON data, each value read exactly once, refusing anything whose JSON text would
 * not read back as the same value or that the verifier's strict parser would refuse: only strings,
 * finite numbers, booleans, null, dense plain arrays and plain objects (no toJSON, no accessors),
 * within the default strict-JSON nesting and size limits. A member whose value is undefined is left
 * out, as JSON.stringify does; every claim parser treats it as absent. Validating and signing the
 * copy means that no getter, Proxy or toJSON can make what is checked differ from what is signed.
 */
function jsonSnapshot(v: unknown, depth: number): JsonValue {
  switch (typeof v) {
    case 'string':
      // the verifier's strict parser refuses lone surrogates (JSON.stringify would escape them)
      if (hasLoneSurrogate(v)) throw new MandateError('CLAIM_INVALID', 'mandate claims hold a string with a lone surrogate')
      return v
    case 'boolean':
      return v
    case 'number':
      if (!Number.isFinite(v)) throw new MandateError('CLAIM_INVALID', 'mandate claims hold a non-finite number')
      return v
    case 'object':
      break
    default:
      throw new MandateError('CLAIM_INVALID', 'mandate claims hold a value that is not JSON')
  }
  if (v === null) return null
  if (depth >= DEFAULT_JSON_LIMITS.maxDepth) throw new MandateError('CLAIM_INVALID', 'mandate claims are nested too deeply')
  if (Array.isArray(v)) {
    // plain arrays only: a subclass or a toJSON (own or on a polluted Array.prototype) would serialise as something else
    if (Object.getPrototypeOf(v) !== Array.prototype || Object.hasOwn(v, 'toJSON') || 'toJSON' in Array.prototype) {
      throw new MandateError('CLAIM_INVALID', 'mandate claims hold an array that is not plain JSON')
    }
    const n = v.length
    if (n > DEFAULT_JSON_LIMITS.maxArray) throw new MandateError('CLAIM_INVALID', 'mandate claims hold too long an array')
    const out = new Array<JsonValue>(n)
    for (let i = 0; i < n; i++) {
      const x: unknown = v[i]
      if (x === undefined) throw new MandateError('CLAIM_INVALID', 'mandate claims hold an array with a missing element')
      out[i] = jsonSnapshot(x, depth + 1)
    }
    return out
  }
  const proto = Object.getPrototypeOf(v) as unknown
  // plain objects only; with the prototype pinned, a toJSON can only be an own member (or a polluted Object.prototype)
  if ((proto !== Object.prototype && proto !== null) || Object.hasOwn(v, 'toJSON') || (proto !== null && 'toJSON' in Object.prototype)) {
    throw new MandateError('CLAIM_INVALID', 'mandate claims hold an object that is not plain JSON')
  }
  const keys = Object.keys(v)
  if (keys.length > DEFAULT_JSON_LIMITS.maxMembers) throw new MandateError('CLAIM_INVALID', 'mandate claims hold too many members')
  const out: JsonObject = {}
  for (const k of keys) {
    const x: unknown = (v as Record<string, unknown>)[k]
    if (x === undefined) continue
    if (hasLoneSurrogate(k)) throw new MandateError('CLAIM_INVALID', 'mandate claims hold a member name with a lone surrogate')
    // an own data member even for "__proto__" (plain assignment would set the prototype)
    if (k === '__proto__') Object.defineProperty(out, k, { value: jsonSnapshot(x, depth + 1), enumerable: true, writable: true, configurable: true })
    else out[k] = jsonSnapshot(x, depth + 1)
  }
  return out
}

/** Sign mandate claims with the Authority's key (`typ: at+jwt`, `kid` = key thumbprint). */
export function signMandate(claims: MandateClaims, key: Ed25519Key, registry: ConstraintRegistry = defaultConstraintRegistry): string {
  // never sign something the verifier would refuse, nor anything but what was checked: a plain
  // snapshot of the claims passes the verifier's claim parser, and that snapshot is what is signed
  const plain = jsonSnapshot(claims, 0) as JsonObject
  parseMandateClaims(plain, registry)
  const token = signEncodedJws(headerSegment(key.kid), JSON.stringify(plain), key)
  if (token.length > MAX_MANDATE_LENGTH) throw new MandateError('TOKEN_TOO_LARGE', 'mandate would exceed the size limit')
  return token
}

/** Decode a mandate's header and claims WITHOUT verifying it: for display and debugging only. */
export function decodeMandateUnverified(token: string): { header: JsonObject; payload: JsonObject } {
  const jws = parseCompactJws(token, { typ: MANDATE_TYP, maxLength: MAX_MANDATE_LENGTH })
  return { header: jws.header, payload: jws.payload }
}
