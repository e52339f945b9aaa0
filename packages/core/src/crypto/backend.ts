/**
 * The one internal seam for cryptography. On Node (and runtimes that expose `node:crypto` through
 * `process.getBuiltinModule`) it uses OpenSSL, which is several times faster than pure JS; anywhere
 * else it uses the audited pure-JS @noble implementations, so the package runs on any
 * web-standard runtime. Point validation (small order, canonical encoding) always uses @noble,
 * because OpenSSL accepts keys that RFC 8032 strict decoding must refuse.
 */
import type * as NodeCrypto from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js'
import { bytesToNumberLE, concatBytes } from '@noble/curves/utils.js'
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js'
import { b64uDecode, b64uEncode, utf8Encode } from '../encoding/base64url.js'

/** An imported public key, opaque to callers. */
export interface PublicKeyHandle {
  readonly raw: Uint8Array
  readonly native: unknown
}
/** An imported private key, opaque to callers. */
export interface PrivateKeyHandle {
  readonly publicRaw: Uint8Array
  readonly native: unknown
}

export interface CryptoBackend {
  readonly name: 'node' | 'noble'
  importPublic(raw: Uint8Array): PublicKeyHandle
  importPrivate(seed: Uint8Array, publicRaw: Uint8Array): PrivateKeyHandle
  generate(): { seed: Uint8Array; publicRaw: Uint8Array }
  sign(key: PrivateKeyHandle, data: Uint8Array): Uint8Array
  verify(key: PublicKeyHandle, data: Uint8Array, signature: Uint8Array): boolean
  sha256(data: Uint8Array): Uint8Array
  /** base64url(SHA-256(UTF-8(text))): token hashes (`ath`, `parent_hash`, cache keys) in one step. */
  sha256Base64url(text: string): string
  randomBytes(n: number): Uint8Array
}

type GetBuiltin = (id: string) => unknown
const getBuiltin: GetBuiltin | undefined = (globalThis as { process?: { getBuiltinModule?: GetBuiltin } }).process?.getBuiltinModule

function nodeBackend(c: typeof NodeCrypto): CryptoBackend {
  const b64 = b64uEncode
  // crypto.hash (Node ≥ 20.12) is a one-shot digest without the Hash object's setup cost
  const oneShotHash = (c as { hash?: (alg: string, data: Uint8Array | string, enc: 'buffer' | 'base64url') => Buffer | string }).hash
  return {
    name: 'node',
    importPublic(raw) {
      const native = c.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64(raw) }, format: 'jwk' })
      return { raw, native }
    },
    importPrivate(seed, publicRaw) {
      const native = c.createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64(publicRaw), d: b64(seed) }, format: 'jwk' })
      return { publicRaw, native }
    },
    generate() {
      const { privateKey } = c.generateKeyPairSync('ed25519')
      const jwk = privateKey.export({ format: 'jwk' }) as { x: string; d: string }
      return { seed: b64uDecode(jwk.d), publicRaw: b64uDecode(jwk.x) }
    },
    sign(key, data) {
      return new Uint8Array(c.sign(null, data, key.native as NodeCrypto.KeyObject))
    },
    verify(key, data, signature) {
      return c.verify(null, data, key.native as NodeCrypto.KeyObject, signature)
    },
    sha256: oneShotHash
      ? (data) => {
          const out = oneShotHash('sha256', data, 'buffer') as Buffer
          return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
        }
      : (data) => new Uint8Array(c.createHash('sha256').update(data).digest()),
    // hashing the string directly skips a UTF-8 Buffer and a base64url pass in JS (~3x faster)
    sha256Base64url: oneShotHash
      ? (text) => oneShotHash('sha256', text, 'base64url') as string
      : (text) => c.createHash('sha256').update(text, 'utf8').digest('base64url'),
    randomBytes(n) {
      return new Uint8Array(c.randomBytes(n))
    },
  }
}

function nobleBackend(): CryptoBackend {
  return {
    name: 'noble',
    importPublic: (raw) => ({ raw, native: raw }),
    importPrivate: (seed, publicRaw) => ({ publicRaw, native: seed }),
    generate() {
      const seed = nobleRandomBytes(32)
      return { seed, publicRaw: ed25519.getPublicKey(seed) }
    },
    sign: (key, data) => ed25519.sign(data, key.native as Uint8Array),
    verify: (key, data, signature) => cofactorlessVerify(key.raw, data, signature),
    sha256: (data) => nobleSha256(data),
    sha256Base64url: (text) => b64uEncode(nobleSha256(utf8Encode(text))),
    randomBytes: (n) => nobleRandomBytes(n),
  }
}

const Point = ed25519.Point
const L = Point.Fn.ORDER

/**
 * RFC 8032 §5.1.7 verification with the cofactorless equation [S]B = R + [k]A, strict (canonical)
 * decoding of A and R, and S < L: the acceptance set of OpenSSL (ref10). noble's own `verify` is
 * cofactored and would accept signatures with a low-order residue that Node refuses, so the two
 * backends would disagree (C2SP CCTV `low_order_residue`).
 */
function cofactorlessVerify(publicRaw: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || publicRaw.length !== 32) return false
  try {
    const A = Point.fromBytes(publicRaw, false)
    const rBytes = signature.subarray(0, 32)
    const R = Point.fromBytes(rBytes, false)
    const s = bytesToNumberLE(signature.subarray(32))
    if (s >= L) return false
    const k = bytesToNumberLE(nobleSha512(concatBytes(rBytes, publicRaw, data))) % L
    return Point.BASE.multiplyUnsafe(s).equals(R.add(A.multiplyUnsafe(k)))
  } catch {
    return false
  }
}

const nodeCrypto = getBuiltin?.('node:crypto') as typeof NodeCrypto | undefined

/** The backend in use. */
export const backend: CryptoBackend = nodeCrypto ? nodeBackend(nodeCrypto) : nobleBackend()

/** Both backends, for tests that check they agree. */
export function availableBackends(): CryptoBackend[] {
  return nodeCrypto ? [nodeBackend(nodeCrypto), nobleBackend()] : [nobleBackend()]
}
