/**
 * Holder-side offline attenuation: derive a narrower mandate from the last link of a chain (or from
 * an Authority-signed mandate), sign it with the holder's own key, and append it. No Authority
 * round trip; the guard re-derives and checks every hop (verifyOfflineChain).
 */
import { b64uEncode, utf8Encode } from '../encoding/base64url.js'
import { EMITTED_ALG } from '../jws/compact.js'
import type { JsonObject } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import { Ed25519Key } from '../identity/key.js'
import { lifetimeCaps, type LifetimeCaps } from '../mandate/chain_rules.js'
import { MAX_MANDATE_LENGTH, parseMandateClaims, type MandateClaims } from '../mandate/claims.js'
import { nowSeconds } from '../mandate/verify.js'
import { defaultConstraintRegistry, type ConstraintRegistry } from '../narrowing/constraints.js'
import { narrowMandate, type NarrowingRequest } from '../narrowing/narrow.js'
import { CHAIN_SEPARATOR, HOP_JTI_LENGTH, HOP_TYP, isHopJti, MAX_CHAIN_HOPS, MAX_CHAIN_LENGTH, parseHopLink, parseRootLink, randomHopId, splitChain } from './format.js'

export interface AttenuateOptions {
  /** Current time in seconds (never earlier than the last link's `iat` is used). */
  now?: number
  /** `jti` of the new hop: 43 base64url characters ({@link randomHopId}, 256 random bits, by default). */
  jti?: string
  registry?: ConstraintRegistry
  /** The narrowing caps; use the guards' caps (defaults: the guard defaults). */
  caps?: Partial<LifetimeCaps>
}

// the protected header depends only on the holder's key: encode it once per key
const headers = new Map<string, string>()

function hopHeader(holder: Ed25519Key): string {
  let h = headers.get(holder.publicJwk.x)
  if (h === undefined) {
    h = b64uEncode(JSON.stringify({ alg: EMITTED_ALG, typ: HOP_TYP, jwk: { kty: 'OKP', crv: 'Ed25519', x: holder.publicJwk.x } }))
    if (headers.size >= 64) headers.clear()
    headers.set(holder.publicJwk.x, h)
  }
  return h
}

/**
 * Append a holder-signed hop to `presented` (an Authority-signed mandate, or a chain ending in a
 * link bound to `holder`): the hop's claims are narrowMandate(last link, request, { offlineHop:
 * true }) — the Authority's own narrowing — so a delegation names the next holder's key, a `call`
 * hop binds one call, an `audience` hop one audience. Returns `<presented>~<hop>`.
 *
 * The chain's signatures are not checked here (the holder received them); the guard checks all.
 *
 * @throws MandateError ATTENUATION_NOT_ALLOWED when the last link allows no (further) offline hop or
 *   `holder` is not the key it is bound to; the NARROWING_* code of the rule a request breaks;
 *   TOKEN_TOO_LARGE when the chain would exceed the size limit.
 */
export function attenuateMandate(presented: string, holder: Ed25519Key, request: NarrowingRequest, opts: AttenuateOptions = {}): string {
  if (!Ed25519Key.holdsPrivateKey(holder)) throw new MandateError('CONFIG_INVALID', 'the holder must be an Ed25519Key with its private key')
  if (typeof presented !== 'string') throw new MandateError('TOKEN_MALFORMED', 'the mandate must be a string')
  const parts = presented.includes(CHAIN_SEPARATOR) ? splitChain(presented) : [presented]
  const lastToken = parts[parts.length - 1] as string
  const link = parts.length === 1 ? parseRootLink(lastToken) : parseHopLink(lastToken, parts.length - 1)
  const registry = opts.registry ?? defaultConstraintRegistry
  const last = parseMandateClaims(link.jws.payload, registry)
  if (!last.offline || last.call || last.credential !== undefined) {
    throw new MandateError('ATTENUATION_NOT_ALLOWED', 'the mandate does not allow (further) offline attenuation')
  }
  if (parts.length - 1 >= MAX_CHAIN_HOPS) throw new MandateError('ATTENUATION_NOT_ALLOWED', `a chain has at most ${MAX_CHAIN_HOPS} offline hops`)
  if (holder.jkt !== last.cnf.jkt || holder.did !== last.client_id) {
    throw new MandateError('ATTENUATION_NOT_ALLOWED', 'only the key the mandate is bound to can attenuate it')
  }
  if (opts.jti !== undefined && !isHopJti(opts.jti)) throw new MandateError('ATTENUATION_NOT_ALLOWED', `a hop jti is exactly ${HOP_JTI_LENGTH} base64url characters (randomHopId)`)
  const caps = lifetimeCaps(opts.caps)
  // a hop is issued while its parent is valid: a holder clock behind the Authority's cannot predate it
  const now = Math.max(opts.now ?? nowSeconds(), last.iat)
  const claims = narrowMandate(last, request, {
    issuer: last.iss, now, jti: opts.jti ?? randomHopId(), parentToken: lastToken,
    caller: { id: holder.did, jkt: holder.jkt }, offlineHop: true,
    maxMandateLifetime: caps.mandate, maxCallLifetime: caps.call, maxAudienceLifetime: caps.audience, registry,
  })
  const hop = signHop(claims, holder, registry)
  const out = `${presented}${CHAIN_SEPARATOR}${hop}`
  if (out.length > MAX_CHAIN_LENGTH) throw new MandateError('TOKEN_TOO_LARGE', 'the offline chain would exceed the size limit', { detail: { limit: MAX_CHAIN_LENGTH } })
  return out
}

/** Sign hop claims: serialise once, check that exact text parses as valid claims, sign that text. */
function signHop(claims: MandateClaims, holder: Ed25519Key, registry: ConstraintRegistry): string {
  const json = JSON.stringify(claims)
  parseMandateClaims(JSON.parse(json) as JsonObject, registry)
  const input = `${hopHeader(holder)}.${b64uEncode(json)}`
  const token = `${input}.${b64uEncode(holder.sign(utf8Encode(input)))}`
  if (token.length > MAX_MANDATE_LENGTH) throw new MandateError('TOKEN_TOO_LARGE', 'the hop would exceed the size limit')
  return token
}
