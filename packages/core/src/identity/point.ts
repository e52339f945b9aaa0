import { ed25519 } from '@noble/curves/ed25519.js'
import { MandateError } from '../errors.js'

/**
 * Refuse Ed25519 public keys that are not a canonically encoded point of large order. OpenSSL
 * imports all 14 small-order encodings, and the identity key verifies (R = identity, S = 0) for every
 * message, so "proof of possession" of such a key proves nothing. Strict decoding (not ZIP-215) also
 * refuses y >= p and x = 0 with the sign bit set.
 */
export function assertStrongPublicKey(raw: Uint8Array): void {
  if (raw.length !== 32) throw new MandateError('KEY_INVALID', 'Ed25519 public key must be 32 bytes')
  let point
  try {
    point = ed25519.Point.fromBytes(raw, false)
  } catch {
    throw new MandateError('KEY_INVALID', 'Ed25519 public key is not a canonical curve point')
  }
  if (point.isSmallOrder()) throw new MandateError('KEY_LOW_ORDER', 'Ed25519 public key has small order')
}

/** Key handles (from any resolver) that passed {@link assertStrongPublicKey}: each is checked once. */
const strongHandles = new WeakSet<object>()

/**
 * The key a resolver answered, if it is a strong Ed25519 public key: 32 bytes that decode to a
 * canonical point of large order (checked once per handle object). A hand-written resolver could
 * answer the identity key — for which R = s·B, S = s verifies every message — or any small-order
 * key; the built-in key sets never do, but every verification path goes through here all the same.
 * KEY_NOT_FOUND for anything that is not a key handle, KEY_INVALID / KEY_LOW_ORDER for a weak key.
 */
export function strongKeyHandle<T extends { raw: Uint8Array }>(key: unknown): T {
  const raw = typeof key === 'object' && key !== null ? (key as { raw?: unknown }).raw : undefined
  if (!(raw instanceof Uint8Array) || raw.length !== 32) throw new MandateError('KEY_NOT_FOUND', 'the key resolver returned no usable key')
  const handle = key as object
  if (!strongHandles.has(handle)) {
    assertStrongPublicKey(raw)
    strongHandles.add(handle)
  }
  return key as T
}

const LOW_ORDER_R = new Set<string>()
for (const hex of [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
]) LOW_ORDER_R.add(hex)

/** True when a signature's R is one of the 14 small-order encodings (strict verification refuses it). */
export function hasSmallOrderR(signature: Uint8Array): boolean {
  // cheap pre-filter: every small-order encoding starts with one of these bytes
  const b = signature[0]
  if (b !== 0x00 && b !== 0x01 && b !== 0x26 && b !== 0xc7 && b !== 0xec && b !== 0xed && b !== 0xee) return false
  let hex = ''
  for (let i = 0; i < 32; i++) hex += (signature[i] as number).toString(16).padStart(2, '0')
  return LOW_ORDER_R.has(hex)
}
