/**
 * The one internal seam for cryptography. On Node (and runtimes that expose `node:crypto` through
 * `process.getBuiltinModule`) it uses OpenSSL, which is several times faster than pure JS; anywhere
 * else it uses the audited pure-JS @noble implementations, so the package runs on any
 * web-standard runtime. Point validation (small order, canonical encoding) always uses @noble,
 * because OpenSSL accepts keys that RFC 8032 strict decoding must refuse.
 */
import type * as NodeCrypto from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import { randomBytes as nobleRandomBytes } from '@noble/hashes/utils.js'
import { b64uDecode, b64uEncode } from '../encoding/base64url.js'

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
  randomBytes(n: number): Uint8Array
}

type GetBuiltin = (id: string) => unknown
const getBuiltin: GetBuiltin | undefined = (globalThis as { process?: { getBuiltinModule?: GetBuiltin } }).process?.getBuiltinModule

function nodeBackend(c: typeof NodeCrypto): CryptoBackend {
  const b64 = b64uEncode
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
    sha256(data) {
      return new Uint8Array(c.createHash('sha256').update(data).digest())
    },
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
    verify(key, data, signature) {
      try {
        // zip215: false gives RFC 8032 strict decoding, matching OpenSSL's acceptance set
        return ed25519.verify(signature, data, key.raw, { zip215: false })
      } catch {
        return false
      }
    },
    sha256: (data) => nobleSha256(data),
    randomBytes: (n) => nobleRandomBytes(n),
  }
}

const nodeCrypto = getBuiltin?.('node:crypto') as typeof NodeCrypto | undefined

/** The backend in use. */
export const backend: CryptoBackend = nodeCrypto ? nodeBackend(nodeCrypto) : nobleBackend()

/** Both backends, for tests that check they agree. */
export function availableBackends(): CryptoBackend[] {
  return nodeCrypto ? [nodeBackend(nodeCrypto), nobleBackend()] : [nobleBackend()]
}
