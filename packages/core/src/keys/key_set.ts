import { backend, type PublicKeyHandle } from '../crypto/backend.js'
import { MandateError } from '../errors.js'
import { parsePublicJwk, rawFromPublicJwk, type Ed25519PublicJwk } from '../identity/jwk.js'
import { jwkThumbprint } from '../identity/thumbprint.js'

/** A JSON Web Key Set document (RFC 7517 §5). */
export interface JsonWebKeySet {
  keys: readonly unknown[]
}

/** Resolves a `kid` to a verification key of the trusted issuer. */
export interface KeyResolver {
  resolve(kid: string): PublicKeyHandle | Promise<PublicKeyHandle>
}

export interface VerificationKey {
  kid: string
  jwk: Ed25519PublicJwk
  handle: PublicKeyHandle
}

/**
 * Import the usable keys of a JWKS. Keys of other types, with private members, or with weak points
 * are skipped (RFC 7517 §5: ignore what cannot be used) rather than failing the whole set; a key
 * without `kid` is addressed by its thumbprint.
 */
export function importJwks(jwks: unknown): Map<string, VerificationKey> {
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as JsonWebKeySet).keys)) {
    throw new MandateError('KEY_INVALID', 'JWKS must be an object with a keys array')
  }
  const out = new Map<string, VerificationKey>()
  for (const candidate of (jwks as JsonWebKeySet).keys.slice(0, 64)) {
    let jwk: Ed25519PublicJwk
    try {
      jwk = parsePublicJwk(stripIgnorable(candidate))
    } catch {
      continue
    }
    const kid = jwk.kid ?? jwkThumbprint(jwk)
    if (out.has(kid)) continue // an ambiguous kid keeps the first key only
    out.set(kid, { kid, jwk, handle: backend.importPublic(rawFromPublicJwk(jwk)) })
  }
  return out
}

function stripIgnorable(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v
  const { key_ops: _k, ext: _e, ...rest } = v as Record<string, unknown>
  return rest
}

/** A fixed, in-memory key set. */
export function createLocalKeySet(jwks: JsonWebKeySet): KeyResolver {
  const keys = importJwks(jwks)
  return {
    resolve(kid) {
      const k = keys.get(kid)
      if (!k) throw new MandateError('KEY_NOT_FOUND', 'no trusted key with this kid')
      return k.handle
    },
  }
}

export interface RemoteKeySetOptions {
  /** Re-fetch at most this often when an unknown `kid` shows up (ms). Default 30 000. */
  cooldownMs?: number
  /** Re-fetch after this long even when every kid is known (ms). Default 600 000. */
  maxAgeMs?: number
  /** Abort a fetch after this long (ms). Default 5 000. */
  timeoutMs?: number
  fetch?: typeof fetch
  now?: () => number
}

/**
 * A JWKS fetched from a URL, cached, refreshed on an unknown `kid` no more often than the cooldown,
 * and on age. A failed refresh keeps the keys already known.
 */
export function createRemoteKeySet(url: string | URL, options: RemoteKeySetOptions = {}): KeyResolver & { refresh(): Promise<void> } {
  const target = new URL(url)
  const cooldown = options.cooldownMs ?? 30_000
  const maxAge = options.maxAgeMs ?? 600_000
  const timeout = options.timeoutMs ?? 5_000
  const doFetch = options.fetch ?? fetch
  const now = options.now ?? Date.now
  let keys = new Map<string, VerificationKey>()
  let fetchedAt = -Infinity
  let inflight: Promise<void> | undefined

  async function load(): Promise<void> {
    const res = await doFetch(target, { headers: { accept: 'application/jwk-set+json, application/json' }, signal: AbortSignal.timeout(timeout), redirect: 'error' })
    if (!res.ok) throw new MandateError('JWKS_UNAVAILABLE', `JWKS fetch failed with status ${res.status}`)
    const text = await res.text()
    if (text.length > 256 * 1024) throw new MandateError('JWKS_UNAVAILABLE', 'JWKS document too large')
    keys = importJwks(JSON.parse(text))
    fetchedAt = now()
  }

  function refresh(): Promise<void> {
    inflight ??= load().finally(() => {
      inflight = undefined
    })
    return inflight
  }

  return {
    refresh,
    async resolve(kid) {
      const age = now() - fetchedAt
      if (age > maxAge) {
        await refresh().catch((err: unknown) => {
          if (keys.size === 0) throw MandateError.is(err) ? err : new MandateError('JWKS_UNAVAILABLE', 'JWKS fetch failed', { cause: err })
        })
      }
      let k = keys.get(kid)
      if (!k && now() - fetchedAt >= cooldown) {
        await refresh().catch(() => undefined)
        k = keys.get(kid)
      }
      if (!k) throw new MandateError('KEY_NOT_FOUND', 'no trusted key with this kid')
      return k.handle
    },
  }
}
