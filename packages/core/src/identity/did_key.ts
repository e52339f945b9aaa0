import { base58 } from '@scure/base'
import { MandateError } from '../errors.js'
import { publicJwkFromRaw, rawFromPublicJwk, type Ed25519PublicJwk } from './jwk.js'
import { assertStrongPublicKey } from './point.js'

const ED25519_PUB_MULTICODEC = [0xed, 0x01] as const
const MAX_DID_LENGTH = 128

/** Encode an Ed25519 public key as `did:key:z6Mk…` (W3C CCG did:key, multicodec 0xed). */
export function didKeyFromPublicJwk(jwk: Ed25519PublicJwk): string {
  return didKeyFromRaw(rawFromPublicJwk(jwk))
}

export function didKeyFromRaw(raw: Uint8Array): string {
  assertStrongPublicKey(raw)
  const bytes = new Uint8Array(34)
  bytes.set(ED25519_PUB_MULTICODEC, 0)
  bytes.set(raw, 2)
  return `did:key:z${base58.encode(bytes)}`
}

/**
 * Decode a `did:key` for an Ed25519 key. Refuses other methods, other multibase encodings, other
 * multicodecs, wrong lengths, DID URLs (paths, queries, fragments), small-order keys, and every
 * spelling but the canonical `did:key:z6Mk…`: identifiers are compared as strings (revocation,
 * registration, the no-repeated-actor rule), so one key must have exactly one accepted spelling —
 * the versioned form `did:key:1:z6Mk…` of the same key is refused, not read as a second name.
 */
export function publicJwkFromDidKey(did: string): Ed25519PublicJwk {
  if (typeof did !== 'string' || did.length > MAX_DID_LENGTH) throw new MandateError('DID_INVALID', 'invalid did:key')
  const parts = did.split(':')
  if (parts.length !== 3 || parts[0] !== 'did' || parts[1] !== 'key') {
    throw new MandateError('DID_INVALID', parts.length === 4 && parts[0] === 'did' && parts[1] === 'key' ? 'only the canonical did:key:z… form is accepted (no version segment)' : 'not a did:key identifier')
  }
  const multibase = parts[2] as string
  if (!multibase.startsWith('z')) throw new MandateError('DID_INVALID', 'did:key must use base58btc (z) multibase')
  let bytes: Uint8Array
  try {
    bytes = base58.decode(multibase.slice(1))
  } catch {
    throw new MandateError('DID_INVALID', 'did:key is not valid base58btc')
  }
  if (bytes[0] !== ED25519_PUB_MULTICODEC[0] || bytes[1] !== ED25519_PUB_MULTICODEC[1]) {
    throw new MandateError('DID_INVALID', 'did:key is not an Ed25519 public key')
  }
  if (bytes.length !== 34) throw new MandateError('DID_INVALID', 'invalid public key length in did:key')
  // base58 has one spelling per byte string once the leading byte is 0xed (no leading zeros): the
  // re-encoding check keeps that true whatever the decoder tolerates
  if (base58.encode(bytes) !== multibase.slice(1)) throw new MandateError('DID_INVALID', 'did:key is not in canonical form')
  const raw = bytes.slice(2)
  try {
    assertStrongPublicKey(raw)
  } catch (err) {
    throw new MandateError('DID_INVALID', 'did:key does not hold a valid Ed25519 public key', { cause: err })
  }
  return publicJwkFromRaw(raw)
}

/** True for a syntactically valid Ed25519 did:key (checks the point too). */
export function isDidKey(value: unknown): value is string {
  if (typeof value !== 'string') return false
  try {
    publicJwkFromDidKey(value)
    return true
  } catch {
    return false
  }
}
