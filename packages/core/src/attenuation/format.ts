/**
 * The wire form of an offline attenuation chain (docs/protocol.md, "Offline attenuation"): the
 * Authority-signed root mandate (an RFC 9068 `at+jwt`), then one holder-signed hop JWT per
 * attenuation, joined by `~`. `~` is not a base64url character, so a plain RFC 9068 resource
 * server sees one string that is not a compact JWS and refuses it instead of reading only the root.
 */
import { backend } from '../crypto/backend.js'
import { b64uEncode } from '../encoding/base64url.js'
import { MandateError } from '../errors.js'
import { parseCompactJws, type ParsedJws } from '../jws/compact.js'
import { MANDATE_TYP, MAX_MANDATE_LENGTH, MAX_OFFLINE_HOPS } from '../mandate/claims.js'

/** JWT `typ` of a holder-signed hop. */
export const HOP_TYP = 'mandate-hop+jwt'
/** Separator between the root and each hop in a presented chain. */
export const CHAIN_SEPARATOR = '~'
/** Most hops a presented chain may carry (whatever the root allows). */
export const MAX_CHAIN_HOPS = MAX_OFFLINE_HOPS
/** Longest presented chain, in characters (root + hops + separators). */
export const MAX_CHAIN_LENGTH = 64 * 1024

/** The Ed25519 public key a hop is signed with: exactly these members. */
export interface HopJwk {
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
}

/**
 * Length of a hop's `jti`: 256 bits of base64url (43 characters). The Authority mints 128-bit ids
 * (22 characters), so a holder, who picks its hop's id, can never pick one of the Authority's: a hop
 * cannot take a credential's single use or make a revocation of its id land on another mandate.
 */
export const HOP_JTI_LENGTH = 43
const HOP_JTI = /^[A-Za-z0-9_-]{43}$/

/** Is this a valid hop `jti` (exactly {@link HOP_JTI_LENGTH} base64url characters)? */
export function isHopJti(jti: unknown): jti is string {
  return typeof jti === 'string' && HOP_JTI.test(jti)
}

/** A fresh hop `jti`: 256 random bits, base64url. */
export function randomHopId(): string {
  return b64uEncode(backend.randomBytes(32))
}

/** One strictly parsed link: its compact serialization and parsed JWS. */
export interface ChainLink {
  token: string
  jws: ParsedJws
}

/** A strictly parsed chain: nothing about it is verified yet. */
export interface ParsedChain {
  root: ChainLink
  hops: (ChainLink & { jwk: HopJwk })[]
}

/** Does this presented credential carry offline hops? A cheap routing test, not a validation. */
export function isOfflineChain(presented: unknown): presented is string {
  return typeof presented === 'string' && presented.includes(CHAIN_SEPARATOR)
}

/** ATTENUATION_INVALID naming the hop (0 = the chain as a whole or its root) and the rule. */
export function chainError(hop: number, rule: string, message: string, cause?: unknown): MandateError {
  const detail: Record<string, string | number> = { hop, rule }
  if (MandateError.is(cause)) detail.cause_code = cause.code
  return new MandateError('ATTENUATION_INVALID', message, { detail, cause })
}

/**
 * Split and size-cap a presented chain before any parsing: a string of at most 64 KiB, a root and
 * 1..8 hops, no empty part (so no leading, trailing or doubled `~`), each part within the mandate
 * size limit.
 */
export function splitChain(presented: unknown): string[] {
  if (typeof presented !== 'string') throw chainError(0, 'syntax', 'an offline chain must be a string')
  if (presented.length > MAX_CHAIN_LENGTH) {
    throw new MandateError('ATTENUATION_INVALID', 'the offline chain exceeds the size limit', { detail: { hop: 0, rule: 'size', limit: MAX_CHAIN_LENGTH } })
  }
  const parts = presented.split(CHAIN_SEPARATOR)
  if (parts.length < 2) throw chainError(0, 'no-hops', 'an offline chain has a root and at least one hop')
  if (parts.length - 1 > MAX_CHAIN_HOPS) {
    throw new MandateError('ATTENUATION_INVALID', `an offline chain has at most ${MAX_CHAIN_HOPS} hops`, { detail: { hop: 0, rule: 'hop-count', limit: MAX_CHAIN_HOPS } })
  }
  parts.forEach((p, i) => {
    if (p.length === 0) throw chainError(i, 'syntax', 'an offline chain has an empty part')
    if (p.length > MAX_MANDATE_LENGTH) throw chainError(i, 'size', 'a link of the offline chain exceeds the size limit')
  })
  return parts
}

/** Strictly parse the root: an ordinary mandate, so its own error codes are kept. */
export function parseRootLink(token: string): ChainLink {
  return { token, jws: parseCompactJws(token, { typ: MANDATE_TYP, requireKid: true, maxLength: MAX_MANDATE_LENGTH }) }
}

/**
 * Strictly parse hop `index` (1-based): compact JWS, strict JSON, `typ` exactly `mandate-hop+jwt`,
 * `alg` EdDSA/Ed25519, the only key header a public `jwk` of exactly `kty`, `crv`, `x` (no `kid`,
 * `jku`, `x5u`, `x5c`, `crit`, …). The key itself is validated when it is imported.
 */
export function parseHopLink(token: string, index: number): ChainLink & { jwk: HopJwk } {
  let jws: ParsedJws
  try {
    jws = parseCompactJws(token, { typ: HOP_TYP, allowJwk: true, maxLength: MAX_MANDATE_LENGTH })
  } catch (err) {
    throw chainError(index, 'hop-jws', 'a hop is not a valid hop JWS', err)
  }
  const h = jws.header
  // exact: a hop is this library's own format, so no case or application/ variants
  if (h.typ !== HOP_TYP) throw chainError(index, 'hop-typ', `a hop's typ must be exactly ${HOP_TYP}`)
  if (h.kid !== undefined) throw chainError(index, 'hop-header', 'a hop names its key by jwk only, never kid')
  const jwk = h.jwk
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw chainError(index, 'hop-key', 'a hop must carry its public jwk')
  const names = Object.keys(jwk)
  if (names.length !== 3 || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') {
    throw chainError(index, 'hop-key', 'a hop jwk has exactly kty OKP, crv Ed25519 and x')
  }
  return { token, jws, jwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x } }
}

/** Split and strictly parse every link of a chain (no signature work). */
export function parseChain(presented: unknown): ParsedChain {
  const parts = splitChain(presented)
  const root = parseRootLink(parts[0] as string)
  const hops = parts.slice(1).map((p, i) => parseHopLink(p, i + 1))
  return { root, hops }
}
