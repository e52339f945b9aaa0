/**
 * DPoP nonces (RFC 9449 §8/§9) that every instance sharing a secret issues and accepts alike, with
 * no shared state and no round trip per request: the nonce of time window `w` is
 * HMAC-SHA256(secret, context ‖ w), so any instance computes the same value for the same window.
 * The current and the previous window are accepted (a nonce lives one to two periods), and the next
 * one within `skewSeconds` of its start, so instances whose clocks differ slightly still accept each
 * other's nonces. Unpredictable without the secret, so a client cannot pre-generate proofs for
 * windows to come — the property a server nonce exists for.
 */
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { b64uEncode } from '../encoding/base64url.js'
import { MandateError } from '../errors.js'
import type { NonceSource } from './nonce.js'

/** A secret of at least 32 bytes: raw bytes, or a string (its UTF-8 bytes, e.g. 44 base64 characters). */
export type NonceSecret = string | Uint8Array

export interface SharedNonceSourceOptions {
  /**
   * The shared secret, or a list for rotation without downtime: the first issues nonces, every one
   * is accepted. Every instance must be given the same secret(s).
   */
  secret: NonceSecret | readonly NonceSecret[]
  /** Window length in seconds (1..3600). Default 60. */
  rotateEverySeconds?: number
  /** How early the next window's nonce is accepted, for clock differences between instances (0..30 s). Default 5. */
  skewSeconds?: number
  /**
   * Domain separation: servers with different contexts never accept each other's nonces (e.g. the
   * Authority's token endpoint vs a guard's audience) although they share a secret. Default ''.
   */
  context?: string
  /** Clock in ms (tests). */
  now?: () => number
}

const encoder = new TextEncoder()
const MIN_SECRET_BYTES = 32

function secretBytes(s: unknown): Uint8Array {
  const bytes = typeof s === 'string' ? encoder.encode(s) : s instanceof Uint8Array ? s : undefined
  if (!bytes) throw new MandateError('CONFIG_INVALID', 'nonce secret must be a string or bytes')
  if (bytes.length < MIN_SECRET_BYTES) throw new MandateError('CONFIG_INVALID', `nonce secret must be at least ${MIN_SECRET_BYTES} bytes`)
  return Uint8Array.from(bytes)
}

/**
 * A {@link NonceSource} shared by every instance configured with the same secret: pass it to
 * `createAuthority({ requireDpopNonce: source })` and to `createGuard({ nonce: source })`.
 *
 * @example
 * const nonce = createSharedNonceSource({ secret: process.env.MANDATE_DPOP_NONCE_SECRET! })
 */
export function createSharedNonceSource(options: SharedNonceSourceOptions): NonceSource {
  if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'createSharedNonceSource needs { secret }')
  const list = Array.isArray(options.secret) ? (options.secret as readonly NonceSecret[]) : [options.secret as NonceSecret]
  if (list.length === 0 || list.length > 8) throw new MandateError('CONFIG_INVALID', 'give 1..8 nonce secrets')
  const secrets = list.map(secretBytes)
  const period = options.rotateEverySeconds ?? 60
  if (!Number.isSafeInteger(period) || period < 1 || period > 3600) throw new MandateError('CONFIG_INVALID', 'rotateEverySeconds must be an integer 1..3600')
  const skew = options.skewSeconds ?? 5
  if (!Number.isFinite(skew) || skew < 0 || skew > 30) throw new MandateError('CONFIG_INVALID', 'skewSeconds must be 0..30')
  const context = options.context ?? ''
  if (typeof context !== 'string' || context.length > 512) throw new MandateError('CONFIG_INVALID', 'context must be a string of at most 512 characters')
  const now = options.now ?? Date.now

  // nonces of recent windows, so a check costs a map lookup rather than HMACs
  const cache = new Map<number, string[]>()
  const noncesOf = (w: number): string[] => {
    let n = cache.get(w)
    if (!n) {
      const input = encoder.encode(`mandate-dpop-nonce/1\u0000${context}\u0000${w}`)
      n = secrets.map((s) => b64uEncode(hmac(sha256, s, input).subarray(0, 18)))
      if (cache.size >= 8) cache.delete(cache.keys().next().value as number)
      cache.set(w, n)
    }
    return n
  }
  const windowAt = (sec: number) => Math.floor(sec / period)

  return {
    current() {
      return noncesOf(windowAt(now() / 1000))[0] as string
    },
    check(nonce) {
      if (typeof nonce !== 'string' || nonce.length !== 24) return false
      const sec = now() / 1000
      const w = windowAt(sec)
      if (noncesOf(w).includes(nonce) || noncesOf(w - 1).includes(nonce)) return true
      // an instance whose clock runs a little ahead may already hand out the next window's nonce
      return windowAt(sec + skew) > w && noncesOf(w + 1).includes(nonce)
    },
  }
}
