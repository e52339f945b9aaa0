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
 * multicodecs, wrong lengths, DID URLs (paths, queries, fragments) and small-order keys.
 */
export function publicJwkFromDidKey(did: string): Ed25519PublicJwk {
  if (typeof did !== 'string' || did.length > MAX_DID_LENGTH) throw new MandateError('DID_INVALID', 'invalid did:key')
  const parts = did.split(':')
  let multibase: string
  if (parts.length === 3 && parts[0] === 'did' && parts[1] === 'key') {
    multibase = parts[2] as string
  } else if (parts.length === 4 && parts[0] === 'did' && parts[1] === 'key' && /^[1-9][0-9]{0,3}$/.test(parts[2] as string)) {
    // did:key:<version>:<multibase>; version 1 is the only one defined
    if (parts[2] !== '1') throw new MandateError('DID_INVALID', 'unsupported did:key version')
    multibase = parts[3] as string
  } else {
    throw new MandateError('DID_INVALID', 'not a did:key identifier')
  }
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
