import { MandateError } from '../errors.js'
import { backend, type PrivateKeyHandle } from '../crypto/backend.js'
import { b64uDecode, b64uEncode } from '../encoding/base64url.js'
import { didKeyFromRaw } from './did_key.js'
import { parsePrivateJwk, publicJwkFromRaw, type Ed25519PrivateJwk, type Ed25519PublicJwk } from './jwk.js'
import { jwkThumbprint } from './thumbprint.js'
import { EMITTED_ALG } from '../jws/compact.js'
import { ed25519 } from '@noble/curves/ed25519.js'

const SECRET = new WeakMap<Ed25519Key, { handle: PrivateKeyHandle; seed: Uint8Array }>()

/**
 * An Ed25519 key pair: an agent's identity, or the Authority's signing key. The private half is
 * held out of reach of enumeration, `JSON.stringify` and `console.log`; only `sign` uses it and only
 * `exportPrivateJwk` reveals it.
 */
export class Ed25519Key {
  /** Public JWK (RFC 8037) with `kid` set to the thumbprint and `alg` {@link EMITTED_ALG}, the `alg` of what this key signs (jose and oauth4webapi match the two). */
  readonly publicJwk: Ed25519PublicJwk
  /** RFC 7638 thumbprint: the `cnf.jkt` of mandates bound to this key, and its `kid`. */
  readonly jkt: string
  /** `did:key` form of the public key. */
  readonly did: string

  private constructor(seed: Uint8Array, publicRaw: Uint8Array) {
    const pub = publicJwkFromRaw(publicRaw)
    this.jkt = jwkThumbprint(pub)
    this.publicJwk = { ...pub, kid: this.jkt, alg: EMITTED_ALG, use: 'sig' }
    this.did = didKeyFromRaw(publicRaw)
    SECRET.set(this, { handle: backend.importPrivate(seed, publicRaw), seed })
  }

  get kid(): string {
    return this.jkt
  }

  /** Generate a new random key. */
  static generate(): Ed25519Key {
    const { seed, publicRaw } = backend.generate()
    return new Ed25519Key(seed, publicRaw)
  }

  /** Import from an RFC 8037 private JWK; `d` must derive `x`. */
  static fromPrivateJwk(jwk: unknown): Ed25519Key {
    const parsed = parsePrivateJwk(jwk, (seed) => ed25519.getPublicKey(seed))
    return new Ed25519Key(b64uDecode(parsed.d, 'KEY_INVALID'), b64uDecode(parsed.x, 'KEY_INVALID'))
  }

  /** Import from a 32-byte seed (RFC 8032 secret key). */
  static fromSeed(seed: Uint8Array): Ed25519Key {
    return new Ed25519Key(seed.slice(), ed25519.getPublicKey(seed))
  }

  /**
   * True only for a key made by this class (so holding its private half): not for an object that
   * merely has the same `did` and `jkt`, nor one made from the prototype. In-process APIs that take
   * "possession of the key object" as authentication check this.
   */
  static holdsPrivateKey(value: unknown): value is Ed25519Key {
    return typeof value === 'object' && value !== null && SECRET.has(value as Ed25519Key)
  }

  /** Pure Ed25519 signature over `data`. */
  sign(data: Uint8Array): Uint8Array {
    return backend.sign(secret(this).handle, data)
  }

  /** The private JWK. Store it with owner-only permissions; never log it. */
  exportPrivateJwk(): Ed25519PrivateJwk {
    return { kty: 'OKP', crv: 'Ed25519', x: this.publicJwk.x, d: b64uEncode(secret(this).seed) }
  }

  toJSON(): { did: string; jkt: string; publicJwk: Ed25519PublicJwk } {
    return { did: this.did, jkt: this.jkt, publicJwk: this.publicJwk }
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Ed25519Key(${this.did})`
  }
}

function secret(key: Ed25519Key) {
  const s = SECRET.get(key)
  if (!s) throw new MandateError('CONFIG_INVALID', 'not an Ed25519Key')
  return s
}

/** Generate a new agent identity (Ed25519 key pair; `did:key`). */
export function generateAgentKey(): Ed25519Key {
  return Ed25519Key.generate()
}

/** Import an agent identity from its private JWK. */
export function importAgentKey(privateJwk: unknown): Ed25519Key {
  return Ed25519Key.fromPrivateJwk(privateJwk)
}
