import { asciiBytes, b64uDecode, b64uDecodeText, b64uEncode, utf8Encode } from '../encoding/base64url.js'
import { DEFAULT_JSON_LIMITS, parseStrictJsonObject, type JsonObject, type JsonValue, type StrictJsonLimits } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import type { Ed25519Key } from '../identity/key.js'
import { hasSmallOrderR } from '../identity/point.js'

/** Algorithms accepted for every token kind: EdDSA (RFC 8037) and its fully specified name (RFC 9864). */
export const ACCEPTED_ALGS: ReadonlySet<string> = new Set(['EdDSA', 'Ed25519'])

/**
 * The `alg` Mandate writes into every JWS it signs (mandates, call and audience credentials, client
 * assertions, DPoP proofs, offline hops, audit checkpoints) and into the `alg` member of the public
 * JWKs it publishes (the Authority's JWKS, agent keys): RFC 9864's fully specified `Ed25519`, which
 * deprecates the polymorphic `EdDSA`. One value for both on purpose: jose and oauth4webapi select a
 * JWKS key only when its `alg`, if present, equals the JWS header's, so a JWK saying `EdDSA` would
 * make them refuse an `Ed25519` token (and the other way round). Verification still accepts both
 * names ({@link ACCEPTED_ALGS}), so tokens from earlier releases and third-party `EdDSA` proofs work.
 */
export const EMITTED_ALG = 'Ed25519' as const

/** Header members each token kind may carry. Key-carrying and key-URL headers are never allowed, except a proof's own `jwk`. */
const BASE_HEADER_MEMBERS = new Set(['alg', 'typ', 'kid'])

export interface CompactJwsPolicy {
  /** Expected `typ`, compared case-insensitively, with or without the `application/` prefix. */
  typ: string
  /** Allow an embedded public `jwk` header (DPoP proofs only). */
  allowJwk?: boolean
  /** Require a `kid` header (tokens signed by a key set). */
  requireKid?: boolean
  /** Maximum length of the compact serialization, in characters. */
  maxLength: number
  limits?: StrictJsonLimits
}

export interface ParsedJws {
  header: JsonObject
  payload: JsonObject
  /** ASCII bytes of `BASE64URL(header) '.' BASE64URL(payload)`. */
  signingInput: Uint8Array
  signature: Uint8Array
}

/**
 * Strictly parse a compact JWS before any signature work: size cap, exactly three base64url
 * segments, valid UTF-8, strict JSON (no duplicate members, bounded depth), allowlisted `alg`,
 * explicit `typ`, no unknown or key-carrying headers, no `crit`, a 64-byte signature whose R is
 * not a small-order point.
 */
export function parseCompactJws(token: unknown, policy: CompactJwsPolicy): ParsedJws {
  if (typeof token !== 'string') throw new MandateError('TOKEN_MALFORMED', 'token must be a string')
  if (token.length > policy.maxLength) throw new MandateError('TOKEN_TOO_LARGE', 'token exceeds the size limit', { detail: { limit: policy.maxLength } })
  const d1 = token.indexOf('.')
  const d2 = d1 === -1 ? -1 : token.indexOf('.', d1 + 1)
  if (d1 <= 0 || d2 === -1 || token.indexOf('.', d2 + 1) !== -1 || d2 === d1 + 1) {
    throw new MandateError('TOKEN_MALFORMED', 'token is not a compact JWS')
  }
  const limits = policy.limits ?? DEFAULT_JSON_LIMITS
  const header = parseHeader(token.slice(0, d1), limits, policy)
  const payload = parseStrictJsonObject(b64uDecodeText(token.slice(d1 + 1, d2), 'TOKEN_MALFORMED', 'payload', 'INVALID_UTF8'), limits)
  const signature = decodeSignature(token.slice(d2 + 1))
  if (signature.length !== 64) throw new MandateError('SIGNATURE_INVALID', 'Ed25519 signature must be 64 bytes')
  if (hasSmallOrderR(signature)) throw new MandateError('SIGNATURE_INVALID', 'signature uses a small-order R')
  // both segments decoded strictly above (or the header matched a cached, once-decoded segment), so the
  // signing input is base64url ASCII: one byte per character
  return { header, payload, signingInput: asciiBytes(token.slice(0, d2)), signature }
}

// An Ed25519 signature is 64 bytes: exactly 86 base64url characters, the last carrying 2 bits and
// 4 zero bits (so one of A, Q, g, w). Checked that way, the canonical form needs no re-encoding;
// anything else takes the general strict decoder (and its errors).
const SIGNATURE_B64U = /^[A-Za-z0-9_-]{85}[AQgw]$/
const NodeBuffer = (globalThis as { Buffer?: { from(s: string, enc: 'base64url'): Uint8Array } }).Buffer

function decodeSignature(text: string): Uint8Array {
  if (NodeBuffer !== undefined && text.length === 86 && SIGNATURE_B64U.test(text)) {
    const b = NodeBuffer.from(text, 'base64url')
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  }
  return b64uDecode(text, 'TOKEN_MALFORMED', 'signature')
}

// Headers repeat (one per signing key and kind), so their strict parse is cached by exact segment
// text. The policy checks still run on every token; cached objects are frozen so no caller can
// change what the next token sees.
// The policy check is a pure function of the header and three policy fields, so a cached header
// also remembers the last policy it passed: the same call site (same typ, jwk and kid rules) skips
// the re-check; any other policy runs it.
interface CachedHeader {
  header: JsonObject
  typ: string | undefined
  allowJwk: boolean | undefined
  requireKid: boolean | undefined
}
const headerCache = new Map<string, CachedHeader>()
const HEADER_CACHE_MAX = 256
const HEADER_CACHE_SEGMENT_MAX = 1024

function parseHeader(segment: string, limits: StrictJsonLimits, policy: CompactJwsPolicy): JsonObject {
  const cacheable = limits === DEFAULT_JSON_LIMITS && segment.length <= HEADER_CACHE_SEGMENT_MAX
  const hit = cacheable ? headerCache.get(segment) : undefined
  if (hit) {
    if (hit.typ !== policy.typ || hit.allowJwk !== policy.allowJwk || hit.requireKid !== policy.requireKid) {
      checkHeader(hit.header, policy)
      hit.typ = policy.typ
      hit.allowJwk = policy.allowJwk
      hit.requireKid = policy.requireKid
    }
    return hit.header
  }
  const header = parseStrictJsonObject(b64uDecodeText(segment, 'TOKEN_MALFORMED', 'header', 'INVALID_UTF8'), limits)
  checkHeader(header, policy)
  if (cacheable) {
    deepFreeze(header)
    if (headerCache.size >= HEADER_CACHE_MAX) headerCache.delete(headerCache.keys().next().value as string)
    headerCache.set(segment, { header, typ: policy.typ, allowJwk: policy.allowJwk, requireKid: policy.requireKid })
  }
  return header
}

function deepFreeze(v: JsonValue): void {
  if (typeof v !== 'object' || v === null) return
  Object.freeze(v)
  for (const k of Object.keys(v)) deepFreeze((v as Record<string, JsonValue>)[k] as JsonValue)
}

function checkHeader(header: JsonObject, policy: CompactJwsPolicy): void {
  for (const name of Object.keys(header)) {
    if (BASE_HEADER_MEMBERS.has(name)) continue
    if (name === 'jwk' && policy.allowJwk) continue
    if (name === 'crit') throw new MandateError('CRIT_UNSUPPORTED', 'crit header is not supported')
    throw new MandateError('HEADER_NOT_ALLOWED', `header "${name.slice(0, 32)}" is not allowed`)
  }
  if (typeof header.alg !== 'string' || !ACCEPTED_ALGS.has(header.alg)) {
    throw new MandateError('ALG_NOT_ALLOWED', 'alg must be EdDSA or Ed25519')
  }
  if (typeof header.typ !== 'string' || !typMatches(header.typ, policy.typ)) {
    throw new MandateError('TYP_MISMATCH', `typ must be ${policy.typ}`)
  }
  if (header.kid !== undefined && (typeof header.kid !== 'string' || header.kid.length === 0 || header.kid.length > 128)) {
    throw new MandateError('TOKEN_MALFORMED', 'kid must be a short string')
  }
  if (policy.requireKid && header.kid === undefined) throw new MandateError('KEY_NOT_FOUND', 'kid header is required')
  if (policy.allowJwk && header.jwk === undefined) throw new MandateError('PROOF_INVALID', 'proof must carry its public jwk')
}

/** RFC 8725 §3.11 / RFC 9068 §4: compare media types case-insensitively, `application/` optional. */
export function typMatches(actual: string, expected: string): boolean {
  if (actual === expected) return true
  const a = actual.toLowerCase()
  const e = expected.toLowerCase()
  return a === e || a === `application/${e}`
}

/** Sign a compact JWS with Ed25519 (the header's `alg` is the caller's; Mandate's own signers use {@link EMITTED_ALG}). */
export function signCompactJws(header: Record<string, unknown>, payload: Record<string, unknown>, key: Ed25519Key): string {
  return signEncodedJws(b64uEncode(JSON.stringify(header)), JSON.stringify(payload), key)
}

/** The same, from an already encoded header segment and the payload's JSON text. */
export function signEncodedJws(headerSegment: string, payloadJson: string, key: Ed25519Key): string {
  const input = `${headerSegment}.${b64uEncode(payloadJson)}`
  return `${input}.${b64uEncode(key.sign(utf8Encode(input)))}`
}
