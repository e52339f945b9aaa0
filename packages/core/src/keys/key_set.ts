import { backend, type PublicKeyHandle } from '../crypto/backend.js'
import { MandateError } from '../errors.js'
import { parsePublicJwk, rawFromPublicJwk, type Ed25519PublicJwk } from '../identity/jwk.js'
import { jwkThumbprint } from '../identity/thumbprint.js'
import { parseStrictJsonObject } from '../encoding/strict_json.js'
import { fetchBounded, safeUrl } from '../http/bounded_fetch.js'
import { requireSecureUrl } from '../http/transport_url.js'
import { checkedClock } from '../mandate/clock.js'

/** Largest JWKS document accepted (bytes); a set holds at most 64 keys anyway. */
const MAX_JWKS_BYTES = 256 * 1024

/** A JSON Web Key Set document (RFC 7517 §5). */
export interface JsonWebKeySet {
  keys: readonly unknown[]
}

/** Resolves a `kid` to a verification key of the trusted issuer. */
export interface KeyResolver {
  /**
   * The key for `kid`, or throw (KEY_NOT_FOUND, JWKS_UNAVAILABLE) when it is not trusted now. The
   * guard also calls it on every hit of its mandate cache, to learn whether the key that verified a
   * cached token is still in the set (a rotation that withdrew it evicts the entry): so it must be
   * cheap for a known kid (a map lookup; return synchronously when you can) and must stop returning
   * a key once it is withdrawn. Returning the same handle object for an unchanged key is cheapest;
   * a new handle with the same key bytes is recognised too.
   */
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
export function importJwks(jwks: unknown, maxKeys = MAX_JWKS_KEYS): Map<string, VerificationKey> {
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as JsonWebKeySet).keys)) {
    throw new MandateError('KEY_INVALID', 'JWKS must be an object with a keys array')
  }
  const out = new Map<string, VerificationKey>()
  for (const candidate of (jwks as JsonWebKeySet).keys.slice(0, maxKeys)) {
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

/** After a failed JWKS fetch, how long an old set is served before the next try (ms). */
const FAILED_FETCH_COOLDOWN_MS = 5_000

/** Most keys read from a JWKS someone else serves (a fetched set is bounded work). */
export const MAX_JWKS_KEYS = 64

/** Options of {@link createLocalKeySet}. */
export interface LocalKeySetOptions {
  /**
   * Most keys imported, in order ({@link MAX_JWKS_KEYS} by default). A set you hold yourself and
   * that only grows (an Authority's own current and retired keys) passes `Infinity`: a cap would
   * drop its newest keys once it has rotated that often.
   */
  maxKeys?: number
}

/** A fixed, in-memory key set. */
export function createLocalKeySet(jwks: JsonWebKeySet, options: LocalKeySetOptions = {}): KeyResolver {
  const max = options.maxKeys ?? MAX_JWKS_KEYS
  if (!(max === Infinity || (Number.isSafeInteger(max) && max > 0))) throw new MandateError('CONFIG_INVALID', 'maxKeys must be a positive integer or Infinity')
  const keys = importJwks(jwks, max)
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
  /** Deadline for one fetch, body included (ms). Default 5 000. */
  timeoutMs?: number
  /**
   * Fail closed (JWKS_UNAVAILABLE) when no fetch has succeeded for this long (ms), so a key the
   * issuer withdrew (a stolen key rotated out) is not trusted forever while the issuer is
   * unreachable or the fetch is blocked. Default 3 600 000 (one hour, as createRemoteGuard);
   * `Infinity` keeps known keys for ever.
   */
  maxStalenessMs?: number
  fetch?: typeof fetch
  now?: () => number
  /**
   * WEAKENS SECURITY. Fetch the JWKS over plain `http:` from a host that is not loopback; anyone on
   * the path could then substitute their own keys. Default false: such a URL is CONFIG_INVALID.
   */
  insecureAllowHttp?: boolean
}

/**
 * A JWKS fetched from a URL, cached, refreshed on an unknown `kid` no more often than the cooldown,
 * and on age. A failed refresh keeps the keys already known, for at most `maxStalenessMs`.
 * Concurrent lookups share one in-flight fetch. Reads are bounded (256 KiB, `timeoutMs`).
 */
export function createRemoteKeySet(url: string | URL, options: RemoteKeySetOptions = {}): KeyResolver & { refresh(): Promise<void> } {
  if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'createRemoteKeySet options must be an object')
  const target = requireSecureUrl(url, 'the JWKS URL', { insecureAllowHttp: options.insecureAllowHttp })
  const cooldown = options.cooldownMs ?? 30_000
  const maxAge = options.maxAgeMs ?? 600_000
  const maxStaleness = options.maxStalenessMs ?? 3_600_000
  const timeout = options.timeoutMs ?? 5_000
  for (const [name, v] of [['cooldownMs', cooldown], ['maxAgeMs', maxAge], ['timeoutMs', timeout]] as const) {
    if (!Number.isSafeInteger(v) || v < 0 || (name === 'timeoutMs' && v < 1)) throw new MandateError('CONFIG_INVALID', `${name} must be a ${name === 'timeoutMs' ? 'positive' : 'non-negative'} integer of milliseconds`)
  }
  if (maxStaleness !== Infinity && (!Number.isSafeInteger(maxStaleness) || maxStaleness < 0)) throw new MandateError('CONFIG_INVALID', 'maxStalenessMs must be a non-negative integer of milliseconds')
  const now = checkedClock(options.now, 'createRemoteKeySet now', Date.now)
  let keys = new Map<string, VerificationKey>()
  let fetchedAt = -Infinity
  // the last attempt, successful or not: the cooldown counts from it, so a failing endpoint is not
  // asked again by every request naming an unknown kid (or, once the set is old, by every request)
  let triedAt = -Infinity
  let inflight: Promise<void> | undefined

  async function load(): Promise<void> {
    const res = await fetchBounded(target, { headers: { accept: 'application/jwk-set+json, application/json' } }, {
      fetch: options.fetch, maxBytes: MAX_JWKS_BYTES, timeoutMs: timeout, unreachable: 'JWKS_UNAVAILABLE', invalid: 'JWKS_UNAVAILABLE', what: 'JWKS',
    })
    if (res.status !== 200) throw new MandateError('JWKS_UNAVAILABLE', `JWKS fetch answered HTTP ${res.status}`, { detail: { url: safeUrl(target) } })
    let doc: unknown
    try {
      doc = parseStrictJsonObject(res.text)
    } catch (err) {
      throw new MandateError('JWKS_UNAVAILABLE', 'JWKS document is not valid JSON', { detail: { url: safeUrl(target) }, cause: err })
    }
    try {
      keys = importJwks(doc)
    } catch (err) {
      throw new MandateError('JWKS_UNAVAILABLE', 'JWKS document is not a key set', { detail: { url: safeUrl(target) }, cause: err })
    }
    fetchedAt = now()
  }

  function refresh(): Promise<void> {
    if (!inflight) {
      triedAt = now()
      inflight = load().finally(() => {
        inflight = undefined
      })
    }
    return inflight
  }

  return {
    refresh,
    async resolve(kid) {
      const age = now() - fetchedAt
      // an old set is re-fetched, but after a failed try only once the cooldown has passed (the
      // cached keys keep answering meanwhile, up to maxStalenessMs)
      if (age > maxAge && inflight === undefined && now() - triedAt < Math.min(cooldown, FAILED_FETCH_COOLDOWN_MS)) {
        // the last try failed moments ago: no key at all is an outage, not an unknown kid
        if (keys.size === 0) throw new MandateError('JWKS_UNAVAILABLE', 'the JWKS could not be fetched; retrying shortly', { detail: { url: safeUrl(target) } })
      } else if (age > maxAge) {
        await refresh().catch((err: unknown) => {
          if (keys.size === 0) throw MandateError.is(err) ? err : new MandateError('JWKS_UNAVAILABLE', 'JWKS fetch failed', { cause: err })
        })
      }
      if (now() - fetchedAt > maxStaleness) throw new MandateError('JWKS_UNAVAILABLE', 'the JWKS is stale (the issuer could not be reached); refusing', { detail: { url: safeUrl(target) } })
      let k = keys.get(kid)
      if (!k && now() - fetchedAt >= cooldown && now() - triedAt >= cooldown) {
        await refresh().catch(() => undefined)
        k = keys.get(kid)
      }
      if (!k) throw new MandateError('KEY_NOT_FOUND', 'no trusted key with this kid')
      return k.handle
    },
  }
}
