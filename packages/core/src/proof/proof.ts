import { backend, type PublicKeyHandle } from '../crypto/backend.js'
import type { JsonObject } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import { parsePublicJwk, rawFromPublicJwk } from '../identity/jwk.js'
import type { Ed25519Key } from '../identity/key.js'
import { jwkThumbprint } from '../identity/thumbprint.js'
import { EMITTED_ALG, parseCompactJws, signCompactJws } from '../jws/compact.js'
import { argumentsDigest, tokenHash } from '../mandate/args_digest.js'
import { randomId } from '../mandate/ids.js'
import { checkedNow } from '../mandate/clock.js'
import { hasControlCharacter } from '../encoding/control_chars.js'
import { replayAnswer, type ReplayStore } from '../stores/replay.js'

/** JWT `typ` of a proof of possession (RFC 9449 DPoP). */
export const PROOF_TYP = 'dpop+jwt'
export const MAX_PROOF_LENGTH = 4096
export const DEFAULT_PROOF_MAX_AGE = 60

export interface CreateProofOptions {
  /** The mandate or call credential the proof accompanies (sets `ath`). */
  accessToken?: string
  /** HTTP: request method and URL (sets `htm`, `htu` without query and fragment). */
  method?: string
  url?: string | URL
  /** Non-HTTP transports: the resource the call is for (sets `aud`). */
  audience?: string
  /** Server-provided nonce (`DPoP-Nonce`). */
  nonce?: string
  /** Binds the proof to one tool call: tool name and the digest of these arguments. */
  tool?: string
  arguments?: unknown
  /** Signing algorithm name in the header: RFC 9864 `Ed25519` by default ({@link EMITTED_ALG}); `EdDSA` for a verifier that knows only RFC 8037's name. */
  alg?: 'EdDSA' | 'Ed25519'
  /** Issue time in seconds (tests). */
  now?: number
}

const UNRESERVED = /[A-Za-z0-9\-._~]/

/**
 * Normalise an `htu` per RFC 9449 §4.3: scheme, host and port, path; no query, no fragment. The
 * WHATWG URL parser already lower-cases scheme and host, drops a default port and resolves dot
 * segments (RFC 3986 §6.2.2.1, §6.2.2.3, §6.2.3); percent-encoding is normalised here (§6.2.2.2):
 * an escaped unreserved character is decoded (`%7E` → `~`) and other escapes get upper-case hex, so
 * two spellings of one path compare equal and nothing else does.
 */
export function normalizeHtu(url: string | URL): string {
  const u = typeof url === 'string' ? new URL(url) : url
  const path = u.pathname.includes('%') ? u.pathname.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const c = String.fromCharCode(Number.parseInt(hex, 16))
    return UNRESERVED.test(c) ? c : `%${hex.toUpperCase()}`
  }) : u.pathname
  return `${u.protocol}//${u.host}${path}`
}

/** Create a proof of possession signed by the agent key. */
export function createProof(key: Ed25519Key, options: CreateProofOptions): string {
  const payload: Record<string, unknown> = { jti: randomId(), iat: options.now ?? Math.floor(Date.now() / 1000) }
  if (options.method !== undefined || options.url !== undefined) {
    if (!options.method || !options.url) throw new MandateError('CONFIG_INVALID', 'method and url go together')
    payload.htm = options.method.toUpperCase()
    payload.htu = normalizeHtu(options.url)
  }
  if (options.audience !== undefined) payload.aud = options.audience
  if (options.accessToken !== undefined) payload.ath = tokenHash(options.accessToken)
  if (options.nonce !== undefined) payload.nonce = options.nonce
  if (options.tool !== undefined) {
    payload.tool = options.tool
    payload.args = argumentsDigest(options.arguments)
  }
  const { kid: _kid, alg: _alg, use: _use, ...jwk } = key.publicJwk
  return signCompactJws({ typ: PROOF_TYP, alg: options.alg ?? EMITTED_ALG, jwk }, payload, key)
}

export interface VerifyProofOptions {
  /** The access token presented with the proof; `ath` must match. */
  accessToken?: string
  /** Its hash (`tokenHash(accessToken)`), when the caller already computed it; takes precedence. */
  accessTokenHash?: string
  /** Expected key thumbprint (`cnf.jkt` of the access token). */
  jkt?: string
  /** HTTP request method and URL; when set, `htm`/`htu` must match. */
  method?: string
  url?: string | URL
  /** Non-HTTP: the resource; when set, `aud` must equal it. */
  audience?: string
  /** When set, the proof must be bound to this tool and argument digest. */
  tool?: string
  argumentsDigest?: string
  /**
   * With `tool`: also accept a proof that carries neither `tool` nor `args` (a plain RFC 9449
   * proof). Only for an access token that itself binds the tool and argument digest (an Authority
   * call credential, which the caller checks against the call): the proof's `ath` then binds it to
   * that call. A proof that carries either claim must still match both.
   */
  toolBindingOptional?: boolean
  /** Nonce check; return false to demand a fresh nonce. */
  nonce?: (nonce: string | undefined) => boolean
  replay?: ReplayStore
  now?: number
  maxAge?: number
  skew?: number
}

export interface VerifiedProof {
  jkt: string
  jti: string
  iat: number
  payload: JsonObject
}

const keyCache = new Map<string, { handle: PublicKeyHandle; jkt: string }>()
const KEY_CACHE_MAX = 1024
const PROOF_JWK_MEMBERS = new Set(['kty', 'crv', 'x', 'kid', 'alg', 'use'])

/**
 * Validate and import a proof's public JWK, returning its thumbprint. The point check and the
 * thumbprint depend only on `x`, so they are cached per `x`; the member check runs every time so a
 * cached key never lets an unexpected member through.
 */
function proofKey(jwk: JsonObject, expectedJkt: string | undefined): { handle: PublicKeyHandle; jkt: string } {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new MandateError('PROOF_INVALID', 'proof key must be an Ed25519 OKP JWK')
  for (const m in jwk) {
    if (!PROOF_JWK_MEMBERS.has(m)) {
      throw new MandateError('PROOF_INVALID', m === 'd' ? 'proof jwk must not contain a private key' : 'proof jwk has an unsupported member')
    }
  }
  const x = jwk.x
  let entry = keyCache.get(x)
  if (!entry) {
    // thumbprint first: a key that is not the bound one is refused before any point arithmetic
    const jkt = jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x } as { kty: string })
    if (expectedJkt !== undefined && jkt !== expectedJkt) throw new MandateError('PROOF_BINDING_MISMATCH', 'proof key does not match the token binding')
    let handle: PublicKeyHandle
    try {
      handle = backend.importPublic(rawFromPublicJwk(parsePublicJwk(jwk)))
    } catch (err) {
      throw new MandateError('PROOF_INVALID', 'proof key is not acceptable', { cause: err })
    }
    entry = { handle, jkt }
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string)
    keyCache.set(x, entry)
  } else if (jwk.kid !== undefined || jwk.alg !== undefined || jwk.use !== undefined) {
    // optional members are validated by parsePublicJwk on a miss; re-check them cheaply on a hit
    parseOptionalMembers(jwk)
  }
  return entry
}

function parseOptionalMembers(jwk: JsonObject): void {
  if (jwk.alg !== undefined && jwk.alg !== 'EdDSA' && jwk.alg !== 'Ed25519') throw new MandateError('PROOF_INVALID', 'proof key is not acceptable')
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new MandateError('PROOF_INVALID', 'proof key is not acceptable')
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length === 0 || jwk.kid.length > 128)) throw new MandateError('PROOF_INVALID', 'proof key is not acceptable')
}

/**
 * Verify a proof (RFC 9449 §4.3 plus the tool-call binding): strict parse, `typ` dpop+jwt,
 * allowlisted alg, public-only `jwk` whose thumbprint must equal the expected `jkt` (checked before
 * the key is imported; point check and thumbprint cached per `x`), a strong key, the signature, `iat` freshness, `htm`/`htu` or `aud`, `ath`,
 * `nonce`, tool and argument digest, and finally single use of its `jti`.
 */
export async function verifyProof(proof: unknown, options: VerifyProofOptions): Promise<VerifiedProof> {
  const verified = checkProof(proof, options)
  if (options.replay) {
    const fresh = await options.replay.use(`proof:${verified.jkt}:${verified.jti}`, verified.iat + (options.maxAge ?? DEFAULT_PROOF_MAX_AGE) + (options.skew ?? 5))
    if (!replayAnswer(fresh)) throw new MandateError('PROOF_REPLAYED', 'proof has already been used')
  }
  return verified
}

/**
 * Everything {@link verifyProof} checks except single use (`options.replay` is ignored): for a
 * caller that records the `jti` itself, last, after its own checks (the guard). Synchronous.
 * @internal
 */
export function checkProof(proof: unknown, options: VerifyProofOptions): VerifiedProof {
  const jws = parseCompactJws(proof, { typ: PROOF_TYP, allowJwk: true, maxLength: MAX_PROOF_LENGTH })
  const jwk = jws.header.jwk
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) throw new MandateError('PROOF_INVALID', 'proof jwk must be an object')
  const { handle: key, jkt } = proofKey(jwk, options.jkt)
  if (options.jkt !== undefined && jkt !== options.jkt) throw new MandateError('PROOF_BINDING_MISMATCH', 'proof key does not match the token binding')
  if (!backend.verify(key, jws.signingInput, jws.signature)) throw new MandateError('PROOF_INVALID', 'proof signature is invalid')

  const p = jws.payload
  // NaN would make the iat window check pass whatever the proof says
  const now = checkedNow(options.now)
  const skew = options.skew ?? 5
  const maxAge = options.maxAge ?? DEFAULT_PROOF_MAX_AGE
  // NaN (say from Number(process.env.X)) would switch the age window off, and the replay entry's
  // expiry with it: the same year-old proof would pass again and again
  if (typeof skew !== 'number' || !Number.isFinite(skew) || skew < 0 || skew > 60) throw new MandateError('CONFIG_INVALID', 'skew must be 0..60 seconds')
  if (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0 || maxAge > 300) throw new MandateError('CONFIG_INVALID', 'maxAge must be 1..300 seconds')
  if (typeof p.jti !== 'string' || p.jti.length < 16 || p.jti.length > 128) throw new MandateError('PROOF_INVALID', 'proof jti must be a random string of at least 96 bits')
  // the jti becomes a key in the replay store (Redis, a Postgres text column): no control characters
  if (hasControlCharacter(p.jti)) throw new MandateError('PROOF_INVALID', 'proof jti must not contain control characters')
  if (typeof p.iat !== 'number' || !Number.isFinite(p.iat)) throw new MandateError('PROOF_INVALID', 'proof iat is required')
  if (p.iat > now + skew || p.iat < now - maxAge - skew) throw new MandateError('PROOF_STALE', 'proof iat is outside the acceptable window')
  // RFC 9449 defines neither, but a proof is a JWT (RFC 7519 §4.1.4, §4.1.5): when present, they are
  // numbers and they hold — an expired or not-yet-valid proof is refused like any JWT
  if (p.exp !== undefined) {
    if (typeof p.exp !== 'number' || !Number.isFinite(p.exp)) throw new MandateError('PROOF_INVALID', 'proof exp must be a number')
    if (p.exp <= now - skew) throw new MandateError('PROOF_STALE', 'proof has expired (exp)')
  }
  if (p.nbf !== undefined) {
    if (typeof p.nbf !== 'number' || !Number.isFinite(p.nbf)) throw new MandateError('PROOF_INVALID', 'proof nbf must be a number')
    if (p.nbf > now + skew) throw new MandateError('PROOF_STALE', 'proof is not yet valid (nbf)')
  }

  if (options.method !== undefined || options.url !== undefined) {
    if (typeof p.htm !== 'string' || p.htm !== options.method) throw new MandateError('PROOF_INVALID', 'proof htm does not match the request method')
    let htu: string
    try {
      const u = new URL(p.htu as string)
      // a request URI never carries userinfo (RFC 9110 §4.2.4): an htu with it names another URI
      if (u.username !== '' || u.password !== '') throw new Error('userinfo')
      htu = normalizeHtu(u)
    } catch {
      throw new MandateError('PROOF_INVALID', 'proof htu is not a URL without userinfo')
    }
    if (typeof p.htu !== 'string' || htu !== normalizeHtu(options.url as string | URL)) throw new MandateError('PROOF_INVALID', 'proof htu does not match the request URL')
  }
  if (options.audience !== undefined && p.aud !== options.audience) throw new MandateError('PROOF_INVALID', 'proof aud does not match this resource')
  if (options.accessTokenHash !== undefined || options.accessToken !== undefined) {
    if (p.ath !== (options.accessTokenHash ?? tokenHash(options.accessToken as string))) throw new MandateError('PROOF_INVALID', 'proof ath does not match the access token')
  } else if (p.ath !== undefined && typeof p.ath !== 'string') {
    throw new MandateError('PROOF_INVALID', 'proof ath must be a string')
  }
  if (options.nonce && !options.nonce(typeof p.nonce === 'string' ? p.nonce : undefined)) {
    throw new MandateError('NONCE_REQUIRED', 'a fresh DPoP nonce is required')
  }
  const plain = p.tool === undefined && p.args === undefined
  if (options.tool !== undefined && !(plain && options.toolBindingOptional === true)) {
    if (p.tool !== options.tool) throw new MandateError('PROOF_INVALID', 'proof is not bound to this tool')
    if (p.args !== options.argumentsDigest) throw new MandateError('ARGUMENTS_MISMATCH', 'proof is not bound to these arguments')
  }
  return { jkt, jti: p.jti, iat: p.iat, payload: p }
}
