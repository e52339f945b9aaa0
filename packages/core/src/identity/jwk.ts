import { b64uDecode, b64uEncode } from '../encoding/base64url.js'
import { MandateError } from '../errors.js'
import { assertStrongPublicKey } from './point.js'

/** An Ed25519 public key as an OKP JWK (RFC 8037). */
export interface Ed25519PublicJwk {
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
  kid?: string
  alg?: 'EdDSA' | 'Ed25519'
  use?: 'sig'
}

/** An Ed25519 private key as an OKP JWK (RFC 8037). Keep it secret. */
export interface Ed25519PrivateJwk extends Ed25519PublicJwk {
  d: string
}

const PUBLIC_MEMBERS = new Set(['kty', 'crv', 'x', 'kid', 'alg', 'use', 'key_ops', 'ext'])
const PRIVATE_MEMBERS_FORBIDDEN = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth']

/**
 * Validate an untrusted value as an Ed25519 public JWK: exact `kty`/`crv`, 32-byte `x`, no private
 * members, no unknown members that would change meaning, and a strong (large-order, canonical) point.
 * Returns a clean copy containing only the recognised members.
 */
export function parsePublicJwk(value: unknown): Ed25519PublicJwk {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MandateError('KEY_INVALID', 'JWK must be an object')
  }
  const jwk = value as Record<string, unknown>
  for (const m of PRIVATE_MEMBERS_FORBIDDEN) {
    if (Object.hasOwn(jwk, m)) throw new MandateError('KEY_INVALID', 'public JWK must not contain private key members')
  }
  for (const m of Object.keys(jwk)) {
    if (!PUBLIC_MEMBERS.has(m)) throw new MandateError('KEY_INVALID', `unsupported JWK member "${m.slice(0, 32)}"`)
  }
  if (jwk.kty !== 'OKP') throw new MandateError('KEY_INVALID', 'JWK kty must be OKP')
  if (jwk.crv !== 'Ed25519') throw new MandateError('KEY_INVALID', 'JWK crv must be Ed25519')
  if (typeof jwk.x !== 'string') throw new MandateError('KEY_INVALID', 'JWK x must be a string')
  if (jwk.alg !== undefined && jwk.alg !== 'EdDSA' && jwk.alg !== 'Ed25519') throw new MandateError('KEY_INVALID', 'JWK alg must be EdDSA or Ed25519')
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new MandateError('KEY_INVALID', 'JWK use must be sig')
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length === 0 || jwk.kid.length > 128)) {
    throw new MandateError('KEY_INVALID', 'JWK kid must be a non-empty string')
  }
  const raw = b64uDecode(jwk.x, 'KEY_INVALID', 'JWK x')
  assertStrongPublicKey(raw)
  const out: Ed25519PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: jwk.x }
  if (typeof jwk.kid === 'string') out.kid = jwk.kid
  if (jwk.alg === 'EdDSA' || jwk.alg === 'Ed25519') out.alg = jwk.alg
  if (jwk.use === 'sig') out.use = 'sig'
  return out
}

/** Validate an Ed25519 private JWK and check that `d` derives `x`. */
export function parsePrivateJwk(value: unknown, derivePublic: (seed: Uint8Array) => Uint8Array): Ed25519PrivateJwk {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MandateError('KEY_INVALID', 'JWK must be an object')
  }
  const { d, ...rest } = value as Record<string, unknown>
  if (typeof d !== 'string') throw new MandateError('KEY_INVALID', 'private JWK must contain d')
  const pub = parsePublicJwk(rest)
  const seed = b64uDecode(d, 'KEY_INVALID', 'JWK d')
  if (seed.length !== 32) throw new MandateError('KEY_INVALID', 'Ed25519 private key must be 32 bytes')
  if (b64uEncode(derivePublic(seed)) !== pub.x) throw new MandateError('KEY_INVALID', 'JWK d does not match x')
  return { ...pub, d }
}

export function publicJwkFromRaw(raw: Uint8Array): Ed25519PublicJwk {
  assertStrongPublicKey(raw)
  return { kty: 'OKP', crv: 'Ed25519', x: b64uEncode(raw) }
}

export function rawFromPublicJwk(jwk: Ed25519PublicJwk): Uint8Array {
  return b64uDecode(jwk.x, 'KEY_INVALID', 'JWK x')
}
