/**
 * Import a hop's public key once: the point check (small order, canonical encoding), the RFC 7638
 * thumbprint, the did:key and the crypto handle depend only on `x`, so they are cached per `x`.
 */
import { backend, type PublicKeyHandle } from '../crypto/backend.js'
import { b64uDecode } from '../encoding/base64url.js'
import { base58 } from '@scure/base'
import { assertStrongPublicKey } from '../identity/point.js'
import { jwkThumbprint } from '../identity/thumbprint.js'
import type { HopJwk } from './format.js'

export interface HopKey {
  handle: PublicKeyHandle
  jkt: string
  did: string
}

const cache = new Map<string, HopKey>()
const CACHE_MAX = 1024

/**
 * The imported key, thumbprint and did:key of a hop jwk. The thumbprint is compared with
 * `expectedJkt` (the previous link's `cnf.jkt`) before any point arithmetic, so a hop signed by a
 * stranger costs one SHA-256 to refuse: returns undefined then. KEY_INVALID / KEY_LOW_ORDER for a
 * bad point.
 *
 * `strongDid`: a did:key whose key is known to have passed assertStrongPublicKey (the previous
 * link's `client_id`, which parseMandateClaims' chain rules decode and point-check). When the jwk
 * is exactly that key, its point check is not repeated; any other key is checked as always.
 */
export function importHopKey(jwk: HopJwk, expectedJkt: string, strongDid?: string): HopKey | undefined {
  const hit = cache.get(jwk.x)
  if (hit) return hit.jkt === expectedJkt ? hit : undefined
  if (jwkThumbprint(jwk) !== expectedJkt) return undefined
  const raw = b64uDecode(jwk.x, 'KEY_INVALID', 'JWK x')
  const did = raw.length === 32 ? didKeyOfCheckedRaw(raw) : undefined
  // the very key of a did:key already point-checked (a parsed link's client_id: the chain rules
  // decode it and check its point) needs no second decompression, which costs about one verify
  if (did === undefined || did !== strongDid) assertStrongPublicKey(raw)
  const key: HopKey = { handle: backend.importPublic(raw), jkt: expectedJkt, did: did as string }
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string)
  cache.set(jwk.x, key)
  return key
}

/**
 * `did:key:z…` of a key that already passed assertStrongPublicKey: the same string as
 * identity/did_key's didKeyFromRaw, without its second point check (a point decompression costs
 * about one signature verification, and a fresh hop key would pay it twice).
 */
export function didKeyOfCheckedRaw(raw: Uint8Array): string {
  const bytes = new Uint8Array(34)
  bytes[0] = 0xed // multicodec ed25519-pub (varint 0xed 0x01)
  bytes[1] = 0x01
  bytes.set(raw, 2)
  return `did:key:z${base58.encode(bytes)}`
}
