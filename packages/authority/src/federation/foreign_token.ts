/**
 * Full verification of an external token (an ID token, an IdP access token, an ID-JAG or a
 * workload token) under one federation rule. Everything that can be refused without a key is
 * refused first (size, shape, header, `alg`, `typ`, `iss`), so a forged header never reaches key
 * lookup; then the signature (jose `jwtVerify` with exactly the rule's algorithms); then the
 * claims. The `jti` is not spent here: the grant spends it once it has chosen the rule.
 *
 * Refusal reasons (`detail.reason` of FOREIGN_TOKEN_INVALID), in the order they are checked:
 * - `size`: larger than `maxTokenBytes` (default 16 KiB), before anything is parsed
 * - `malformed`: not a compact JWS of strict base64url and strict JSON (duplicate members refused), or a claim of the wrong type
 * - `typ`: the header's `typ` is not one the rule's token kind allows (cross-JWT confusion)
 * - `alg`: the header's `alg` is not one of the rule's algorithms (`none`, HMAC, RS/ES confusion)
 * - `header`: a header member that could choose the key or change processing (`crit`, `jku`, `x5u`, `jwk`, `b64`, `zip`, `enc`)
 * - `issuer`: `iss` is not the rule's issuer, or is this Authority itself
 * - `kid`: no key (or no single key) of the issuer fits the header, or the key it names cannot be
 *   used (an RSA key shorter than 2048 bits)
 * - `signature`: the signature does not verify with the issuer's key (or cannot be verified at all)
 * - `expired`, `not_yet_valid`, `iat` (in the future, or missing where required), `too_old` (older than maxTokenAge)
 * - `exp_too_far`: `exp` more than `maxExpAhead` (default 24 h) ahead of now: no issuer needs it, and
 *   the token's single use would have to be remembered that long
 * - `subject`: `sub` missing, not a string, longer than 255 characters, or with control characters
 * - `audience`: `aud` names none of the accepted audiences (ID-JAG: not exactly this Authority)
 * - `azp`: `azp` present and not an accepted audience; or an ID token with several audiences, one of
 *   them not accepted, and no `azp` (OpenID Connect Core §3.1.3.7)
 * - `jti`: missing where the rule (or ID-JAG) requires it, or malformed
 * - `nonce`: the token's `nonce` differs from the one the client sent (or one side lacks it)
 * - `client_id`: an ID-JAG without `client_id`
 * - `claims`: the rule's claim matchers do not all match
 */
import { b64uDecode, MandateError, parseStrictJson, type JsonValue } from '@mandate/core'
import { errors, jwtVerify } from 'jose'
import type { IssuerKeys } from './issuer_keys.js'
import { matchClaims } from './match.js'
import { INVISIBLE_OR_CONTROL } from '../observability/display_text.js'
import type { FederationRule, VerifiedForeignToken } from './types.js'

/** Default largest external token accepted, in bytes. */
export const MAX_FOREIGN_TOKEN_BYTES = 16 * 1024

/** Default farthest a foreign token's `exp` may be ahead of now, seconds (24 h; skew added). */
export const MAX_FOREIGN_TOKEN_EXP_AHEAD = 24 * 3600

/** Every reason a foreign token can be refused for (see the module comment). */
export const FOREIGN_TOKEN_REASONS = [
  'size', 'malformed', 'typ', 'alg', 'header', 'issuer', 'kid', 'signature', 'expired', 'not_yet_valid', 'iat', 'too_old', 'exp_too_far',
  'subject', 'audience', 'azp', 'jti', 'nonce', 'client_id', 'claims',
] as const
export type ForeignTokenReason = (typeof FOREIGN_TOKEN_REASONS)[number]

/** Options of {@link verifyForeignToken}. */
export interface VerifyForeignTokenOptions {
  /** This Authority's issuer: the default audience, the only ID-JAG audience, and never an accepted `iss`. */
  authorityIssuer: string
  /** This Authority's token endpoint: the other default audience (RFC 7523 §3). */
  tokenEndpoint: string
  /** ms clock */
  now: () => number
  /** Clock skew tolerated on `exp`, `nbf` and `iat`, seconds. */
  skew: number
  keys: IssuerKeys
  /** The `nonce` the client sent in its authentication request (OpenID Connect Core §3.1.3.7). */
  nonce?: string
  /** Largest token accepted, bytes (default {@link MAX_FOREIGN_TOKEN_BYTES}). */
  maxTokenBytes?: number
  /** Farthest `exp` may be ahead of now, seconds (default {@link MAX_FOREIGN_TOKEN_EXP_AHEAD}). */
  maxExpAhead?: number
}

/** A refusal as data (select.ts explains every rule with it). */
export interface ForeignTokenRefusal {
  reason: ForeignTokenReason
  /** Safe, human-readable reasons (claims: one per claim that does not match). */
  reasons: string[]
}

// header members that would let the token pick its own key, or change how it is processed
const FORBIDDEN_HEADER = ['crit', 'jku', 'x5u', 'jwk', 'b64', 'zip', 'enc']
const B64URL = /^[A-Za-z0-9_-]+$/

class Refused extends Error {
  constructor(readonly reason: ForeignTokenReason, readonly reasons: string[]) {
    super(reasons[0])
  }
}

function refuse(reason: ForeignTokenReason, message: string): never {
  throw new Refused(reason, [message])
}

/** RFC 7515 §4.1.9: `typ` compares case-insensitively and may omit the `application/` prefix. */
function normalizeTyp(typ: string): string {
  const t = typ.toLowerCase()
  return t.startsWith('application/') ? t.slice('application/'.length) : t
}

/** The `typ` values each token kind may carry (undefined: the member may be absent). */
function typAllowed(kind: FederationRule['token'], typ: string | undefined): boolean {
  if (kind === 'id_jag') return typ !== undefined && normalizeTyp(typ) === 'oauth-id-jag+jwt'
  if (typ === undefined) return true
  const t = normalizeTyp(typ)
  // the JWT-SVID spec allows typ JWT or JOSE
  return t === 'jwt' || (kind === 'access_token' && t === 'at+jwt') || (kind === 'workload' && t === 'jose')
}

function decodeJson(part: string, what: string): Record<string, JsonValue> {
  let value: JsonValue
  try {
    value = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(b64uDecode(part, 'TOKEN_MALFORMED', what)))
  } catch {
    refuse('malformed', `the token ${what} is not strict base64url JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse('malformed', `the token ${what} is not a JSON object`)
  return value
}

/** The three parts of a compact JWS, bounded; header and payload strictly decoded (unverified). */
export function splitForeignToken(token: unknown, maxBytes = MAX_FOREIGN_TOKEN_BYTES): { header: Record<string, JsonValue>; payload: Record<string, JsonValue> } {
  if (typeof token !== 'string') refuse('malformed', 'the token must be a string')
  // characters >= bytes for the ASCII a JWS is made of; anything else is malformed below anyway
  if (token.length > maxBytes || Buffer.byteLength(token, 'utf8') > maxBytes) refuse('size', `the token is larger than ${maxBytes} bytes`)
  const parts = token.split('.')
  // an empty signature is syntactically a JWS (`alg: none`): let the header check refuse it as `alg`
  const [h, p, sig] = parts as [string, string, string]
  if (parts.length !== 3 || !B64URL.test(h) || !B64URL.test(p) || (sig !== '' && !B64URL.test(sig))) refuse('malformed', 'the token is not a compact JWS (three base64url parts)')
  return { header: decodeJson(h, 'header'), payload: decodeJson(p, 'payload') }
}

const isStr = (v: JsonValue | undefined): v is string => typeof v === 'string'
const isNum = (v: JsonValue | undefined): v is number => typeof v === 'number' && Number.isFinite(v)

function checkHeader(header: Record<string, JsonValue>, rule: FederationRule): { alg: string; kid?: string; typ?: string } {
  const { alg, kid, typ } = header
  if (typ !== undefined && !isStr(typ)) refuse('malformed', 'the token header typ is not a string')
  if (!typAllowed(rule.token, typ)) refuse('typ', `a ${rule.token} token may not have typ ${typ === undefined ? '(absent)' : JSON.stringify(typ.slice(0, 40))}`)
  if (!isStr(alg) || !(rule.trust.algorithms as readonly string[]).includes(alg)) refuse('alg', `alg ${isStr(alg) ? alg.slice(0, 20) : '(none)'} is not allowed by the rule`)
  for (const m of FORBIDDEN_HEADER) if (Object.prototype.hasOwnProperty.call(header, m)) refuse('header', `the token header must not carry ${m}`)
  if (kid !== undefined && (!isStr(kid) || kid.length === 0 || kid.length > 256)) refuse('malformed', 'the token header kid is not a short string')
  return { alg, ...(kid !== undefined ? { kid } : {}), ...(typ !== undefined ? { typ } : {}) }
}

/** Turn a jose failure into a reason; anything that is not the token's fault propagates. */
function fromJose(err: unknown): never {
  if (MandateError.is(err)) throw err
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) refuse('kid', 'no single key of the issuer matches the token header')
  if (err instanceof errors.JWSSignatureVerificationFailed) refuse('signature', 'the token signature does not verify')
  if (err instanceof errors.JWTExpired) refuse('expired', 'the token has expired')
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') refuse('not_yet_valid', 'the token is not valid yet')
    if (err.claim === 'iat') refuse('iat', 'the token iat is invalid')
    refuse('malformed', `the token claim ${err.claim.slice(0, 40)} is invalid`)
  }
  if (err instanceof errors.JOSEAlgNotAllowed) refuse('alg', 'the token alg is not allowed by the rule')
  if (err instanceof errors.JOSENotSupported) refuse('alg', 'the token uses an unsupported algorithm or key')
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) refuse('malformed', 'the token is not a valid JWS')
  // jose refuses a key it will not verify with (an RSA modulus under 2048 bits, a key of the wrong
  // type) with a TypeError: the issuer's key named by the token cannot be used
  if (err instanceof TypeError) refuse('kid', 'the issuer\'s key for this token cannot be used')
  // whatever else verification throws, the token is not verified: a refusal, never a 500
  refuse('signature', 'the token signature could not be verified')
}

function audiences(v: JsonValue | undefined): string[] | undefined {
  if (isStr(v)) return [v]
  if (Array.isArray(v) && v.length > 0 && v.length <= 64 && v.every(isStr)) return v as string[]
  return undefined
}

function checkClaims(c: Record<string, JsonValue>, rule: FederationRule, opts: VerifyForeignTokenOptions): void {
  const now = Math.floor(opts.now() / 1000)
  const skew = opts.skew
  const jag = rule.token === 'id_jag'
  if (!isNum(c.exp)) refuse('expired', 'the token has no exp')
  // a security event token (RFC 8417: OIDC back-channel logout, CAEP) is signed by the same keys and
  // may carry an ID token's claims, but it asserts an event, not a login
  if (c.events !== undefined) refuse('typ', 'a security event token (events claim) is not an identity assertion')
  if (c.exp <= now - skew) refuse('expired', 'the token has expired')
  const ahead = opts.maxExpAhead ?? MAX_FOREIGN_TOKEN_EXP_AHEAD
  if (c.exp > now + skew + ahead) refuse('exp_too_far', `the token exp is more than ${ahead} s ahead`)
  if (c.nbf !== undefined && (!isNum(c.nbf) || c.nbf > now + skew)) refuse('not_yet_valid', 'the token is not valid yet')
  if (c.iat !== undefined && !isNum(c.iat)) refuse('iat', 'the token iat is not a number')
  // OpenID Connect Core §2: an ID token always has iat
  if (c.iat === undefined && (jag || rule.token === 'id_token' || rule.maxTokenAge !== undefined)) refuse('iat', 'the token has no iat')
  if (isNum(c.iat) && c.iat > now + skew) refuse('iat', 'the token was issued in the future')
  if (rule.maxTokenAge !== undefined && isNum(c.iat) && now - c.iat > rule.maxTokenAge + skew) refuse('too_old', `the token is older than ${rule.maxTokenAge} s`)
  if (!isStr(c.sub) || c.sub.length === 0 || c.sub.length > 255 || INVISIBLE_OR_CONTROL.test(c.sub)) refuse('subject', 'the token sub is missing, longer than 255 characters or has control, format or invisible characters')
  const accepted = jag ? [opts.authorityIssuer] : rule.audiences ?? [opts.authorityIssuer, opts.tokenEndpoint]
  const aud = audiences(c.aud)
  if (!aud) refuse('audience', 'the token aud is missing or malformed')
  // ID-JAG §3: the audience is the issuer of this authorization server, alone
  if (jag ? aud.length !== 1 || aud[0] !== opts.authorityIssuer : !aud.some((a) => accepted.includes(a))) refuse('audience', 'the token is not for this Authority')
  if (c.azp !== undefined && (!isStr(c.azp) || !accepted.includes(c.azp))) refuse('azp', 'the token azp is not an accepted audience')
  // OpenID Connect Core §3.1.3.7: an ID token with audiences the client does not trust names, in
  // azp, the party it was issued to — which must then be one this rule accepts (checked above)
  if (rule.token === 'id_token' && c.azp === undefined && aud.some((a) => !accepted.includes(a))) refuse('azp', 'the token has audiences this rule does not accept and no azp')
  if (c.jti !== undefined && (!isStr(c.jti) || c.jti.length === 0 || c.jti.length > 256)) refuse('jti', 'the token jti is not a string of 1..256 characters')
  if (c.jti === undefined && (jag || rule.requireJti === true)) refuse('jti', 'the token has no jti')
  if (c.nonce !== undefined || opts.nonce !== undefined) {
    if (!isStr(c.nonce) || c.nonce !== opts.nonce) refuse('nonce', c.nonce === undefined ? 'the token has no nonce' : 'the token nonce does not match')
  }
  if (jag && (!isStr(c.client_id) || c.client_id.length === 0 || c.client_id.length > 2048)) refuse('client_id', 'the ID-JAG has no client_id')
  const mismatches = matchClaims(rule.claims, c)
  if (mismatches.length > 0) throw new Refused('claims', mismatches)
}

/**
 * Until when (seconds since the epoch) a verified token could still be accepted under its rule:
 * its `exp`, or `iat + maxTokenAge` when sooner, plus the skew — how long its single use must be
 * remembered, and never longer than `maxExpAhead` (plus the skew) from `nowSec`.
 */
export function acceptedUntil(v: VerifiedForeignToken, nowSec: number, skew: number, maxExpAhead = MAX_FOREIGN_TOKEN_EXP_AHEAD): number {
  const exp = isNum(v.claims.exp) ? v.claims.exp : nowSec + maxExpAhead
  const iat = v.claims.iat
  const byAge = v.rule.maxTokenAge !== undefined && isNum(iat) ? iat + v.rule.maxTokenAge : Number.POSITIVE_INFINITY
  return Math.ceil(Math.min(exp, byAge, nowSec + maxExpAhead)) + skew
}

/**
 * Check `token` under `rule`; the result, or the refusal as data. Errors that are not the
 * token's fault (JWKS_UNAVAILABLE) are thrown.
 */
export async function checkForeignToken(token: string, rule: FederationRule, opts: VerifyForeignTokenOptions): Promise<{ verified: VerifiedForeignToken } | { refused: ForeignTokenRefusal }> {
  try {
    const { header, payload } = splitForeignToken(token, opts.maxTokenBytes ?? MAX_FOREIGN_TOKEN_BYTES)
    const h = checkHeader(header, rule)
    if (payload.iss !== rule.trust.issuer) refuse('issuer', 'the token iss is not the rule\'s issuer')
    // the Authority never federates itself: its own tokens are not external identities
    if (payload.iss === opts.authorityIssuer) refuse('issuer', 'the token was issued by this Authority')
    try {
      // time is checked below with the Authority's clock; jose checks types and the signature
      await jwtVerify(token, opts.keys.resolver(rule.trust), {
        algorithms: [...rule.trust.algorithms], issuer: rule.trust.issuer,
        currentDate: new Date(opts.now()), clockTolerance: opts.skew,
      })
    } catch (err) {
      fromJose(err)
    }
    checkClaims(payload, rule, opts)
    return { verified: { rule, header: h, claims: payload } }
  } catch (err) {
    if (err instanceof Refused) return { refused: { reason: err.reason, reasons: err.reasons } }
    throw err
  }
}

/**
 * Verify an external token under one federation rule (module comment: the checks and their
 * reasons). Does not spend the token's `jti`.
 *
 * @throws MandateError `FOREIGN_TOKEN_INVALID` with `detail.reason` (a {@link ForeignTokenReason})
 * and `detail.rule`; `JWKS_UNAVAILABLE` when the issuer's keys cannot be obtained.
 */
export async function verifyForeignToken(token: string, rule: FederationRule, opts: VerifyForeignTokenOptions): Promise<VerifiedForeignToken> {
  const r = await checkForeignToken(token, rule, opts)
  if ('verified' in r) return r.verified
  throw new MandateError('FOREIGN_TOKEN_INVALID', `the token was refused: ${(r.refused.reasons[0] ?? r.refused.reason).slice(0, 200)}`, { detail: { reason: r.refused.reason, rule: rule.id } })
}
