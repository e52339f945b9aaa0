/**
 * The key sets of the external issuers federation rules trust, cached per trust.
 *
 * Remote sets (a `jwksUri`, or the `jwks_uri` of the issuer's OpenID Connect Discovery document)
 * are fetched and cached for `cacheMaxAgeMs`, and fetched again when a token names a `kid` the
 * cache lacks (at most once per `cooldownMs`), so a key the issuer adds is picked up without a
 * restart and a key it removes stops verifying once the cache ages out. Every fetch goes through
 * core's bounded fetch (size cap, one deadline, no redirects); concurrent requests share one fetch.
 *
 * An issuer that cannot be reached is JWKS_UNAVAILABLE (503): the grant fails closed, it never
 * skips the signature. A failed fetch (of the key set or the discovery document) is remembered for
 * `failureCooldownMs`: requests naming that issuer meanwhile are refused at once (the same 503)
 * instead of each waiting on a new outbound fetch. When a refresh fails, the last key set (or
 * discovery document) fetched successfully keeps being used for at most `staleMaxAgeMs` past its
 * normal lifetime, so a short outage of the issuer does not stop every grant.
 *
 * What a remote set may hold is checked the way the rule parser checks inline keys: RSA keys
 * shorter than 2048 bits, symmetric keys, keys of unknown types and keys with private members are
 * left out (a token naming one is `kid`: no usable key), and a key listed twice identically is
 * used once (an identical copy would otherwise make its `kid` ambiguous).
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto'
import { fetchBounded, MandateError, parseStrictJson, isSecureTransportUrl } from '@mandate/core'
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose'
import type { IssuerTrust } from './types.js'
import { PRIVATE_KEY_MEMBERS, publicKeyMembers } from './jwk_members.js'

/** Shortest RSA modulus accepted, bits (NIST SP 800-131A; jose refuses shorter keys for RS and PS algorithms). */
export const MIN_RSA_BITS = 2048

/** Options of {@link IssuerKeys} (all durations in ms). */
export interface IssuerKeysOptions {
  /** How long a fetched key set is used before it is fetched again (default 10 min). */
  cacheMaxAgeMs?: number
  /** Least time between two fetches prompted by an unknown `kid` (default 30 s): a flood of made-up kids costs one fetch per cooldown. */
  cooldownMs?: number
  /** Deadline of one fetch, body included (default 5 s). */
  timeoutMs?: number
  /** Largest discovery document or key set accepted (default 256 KiB). */
  maxBytes?: number
  /** How long a discovery document is used (default 1 h). */
  discoveryMaxAgeMs?: number
  /**
   * After a failed fetch of an issuer's key set or discovery document, how long requests naming it
   * are refused (JWKS_UNAVAILABLE) without a new fetch (default 5 s).
   */
  failureCooldownMs?: number
  /**
   * How long past its normal lifetime (`cacheMaxAgeMs`, `discoveryMaxAgeMs`) the last key set or
   * discovery document fetched successfully is still used while refreshing it fails (default 1 h;
   * 0: never).
   */
  staleMaxAgeMs?: number
  /** Most trusts cached at once (default 512; the least recently used is dropped). */
  maxEntries?: number
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch
  /** ms clock of the caches (default Date.now). */
  now?: () => number
}

interface Discovered {
  /** The last document fetched successfully. */
  good?: { jwksUri: string; at: number }
  /** The last failure, when it is newer than the last success. */
  failure?: { at: number; error: MandateError }
}

/** https, or http on a loopback host (tests, local development) — the same rule as the rule parser's. */
function acceptableUrl(s: unknown): URL | undefined {
  if (typeof s !== 'string' || s.length > 2048) return undefined
  try {
    const u = new URL(s)
    if (u.username || u.password || u.hash) return undefined
    return isSecureTransportUrl(u) ? u : undefined
  } catch {
    return undefined
  }
}

function unavailable(message: string, issuer: string, reason: string, cause?: unknown): MandateError {
  return new MandateError('JWKS_UNAVAILABLE', message, { detail: { issuer: issuer.slice(0, 256), reason }, ...(cause !== undefined ? { cause } : {}) })
}

/** Any failure to obtain keys, as JWKS_UNAVAILABLE. */
function asUnavailable(err: unknown, issuer: string): MandateError {
  if (MandateError.is(err) && err.code === 'JWKS_UNAVAILABLE') return err
  if (err instanceof errors.JWKSTimeout) return unavailable('the issuer\'s JWKS did not answer in time', issuer, 'timeout', err)
  return unavailable('the issuer\'s JWKS could not be used', issuer, MandateError.is(err) ? err.code : err instanceof errors.JOSEError ? err.code : 'jwks', err)
}

/** A fresh refusal repeating a remembered failure (during the failure cooldown): the same code, message and reason. */
function repeated(failure: MandateError): MandateError {
  const detail = failure.detail ?? {}
  return new MandateError('JWKS_UNAVAILABLE', failure.message, { detail: { ...detail, cooldown: true } })
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < 0) throw new MandateError('CONFIG_INVALID', `${name} must be a non-negative integer (ms)`)
  return v
}

/** The size in bits of an RSA modulus given as base64url (RFC 7518 §6.3.1.1), 0 when unreadable. */
export function rsaModulusBits(n: unknown): number {
  if (typeof n !== 'string' || n.length === 0 || !/^[A-Za-z0-9_-]+$/.test(n)) return 0
  const bytes = Buffer.from(n, 'base64url')
  let i = 0
  while (i < bytes.length && bytes[i] === 0) i++
  if (i === bytes.length) return 0
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i] as number))
}

/** Whether node:crypto imports the public JWK (EC coordinates on the curve, a known curve, a sane modulus). */
function importable(jwk: Record<string, unknown>): boolean {
  try {
    createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
    return true
  } catch {
    return false
  }
}

/**
 * The keys of a fetched set that may verify anything: public RSA (≥ {@link MIN_RSA_BITS} bits),
 * EC and OKP keys that import, each identical key once (same type, material, `kid`, `alg` and `use`).
 */
export function usableKeys(keys: readonly unknown[]): JWK[] {
  const out: JWK[] = []
  const seen = new Set<string>()
  for (const k of keys) {
    if (typeof k !== 'object' || k === null || Array.isArray(k)) continue
    const jwk = k as Record<string, unknown>
    const own = publicKeyMembers(jwk.kty)
    if (!own) continue
    if (PRIVATE_KEY_MEMBERS.some((m) => jwk[m] !== undefined)) continue
    if (own.some((m) => typeof jwk[m] !== 'string')) continue
    if (jwk.kty === 'RSA' && rsaModulusBits(jwk.n) < MIN_RSA_BITS) continue
    // a key that cannot be imported (EC coordinates off the curve, a bad modulus, an unknown curve)
    // verifies nothing: left out here, a token naming it is refused for its kid, never a server error
    if (!importable(jwk)) continue
    const identity = JSON.stringify([jwk.kty, ...own.map((m) => jwk[m]), jwk.kid ?? null, jwk.alg ?? null, jwk.use ?? null])
    if (seen.has(identity)) continue
    seen.add(identity)
    out.push(jwk as JWK)
  }
  return out
}

interface KeySetTiming {
  cacheMaxAge: number
  cooldown: number
  failureCooldown: number
  stale: number
  now: () => number
}

/**
 * One remote key set: the last set fetched successfully (used for `cacheMaxAge`, then for at most
 * `stale` more while refreshing it fails), the last failure (repeated for `failureCooldown`
 * without a fetch), and the fetch in flight (shared).
 */
class RemoteKeySet {
  #good: { get: JWTVerifyGetKey; at: number } | undefined
  #failure: { at: number; error: MandateError } | undefined
  #attemptAt = Number.NEGATIVE_INFINITY
  #pending: Promise<JWTVerifyGetKey> | undefined

  constructor(private readonly load: () => Promise<JSONWebKeySet>, private readonly issuer: string, private readonly t: KeySetTiming) {}

  async get(header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> {
    const now = this.t.now()
    const good = this.#good
    if (good && now - good.at < this.t.cacheMaxAge) {
      try {
        return await good.get(header, token)
      } catch (err) {
        // a kid the set lacks may have been rotated in: fetch again, at most once per cooldown
        if (!(err instanceof errors.JWKSNoMatchingKey) || now - this.#attemptAt < this.t.cooldown) throw err
        const fresh = await this.#refresh()
        return fresh(header, token)
      }
    }
    return (await this.#current(now))(header, token)
  }

  /** The set to use when there is none or it has aged out: a new one, or the stale one while the issuer fails. */
  async #current(now: number): Promise<JWTVerifyGetKey> {
    const stale = this.#good && now - this.#good.at < this.t.cacheMaxAge + this.t.stale ? this.#good.get : undefined
    const failure = this.#failure
    if (failure && now - failure.at < this.t.failureCooldown) {
      if (stale) return stale
      throw repeated(failure.error)
    }
    try {
      return await this.#refresh()
    } catch (err) {
      if (stale) return stale
      throw err
    }
  }

  #refresh(): Promise<JWTVerifyGetKey> {
    if (this.#pending) return this.#pending
    this.#attemptAt = this.t.now()
    const p = (async () => {
      try {
        const set = await this.load()
        const get = createLocalJWKSet(set)
        this.#good = { get, at: this.t.now() }
        this.#failure = undefined
        return get
      } catch (err) {
        const error = asUnavailable(err, this.issuer)
        this.#failure = { at: this.t.now(), error }
        throw error
      }
    })().finally(() => {
      this.#pending = undefined
    })
    this.#pending = p
    return p
  }
}

/**
 * Key resolvers for the issuers of federation rules, one per distinct trust (issuer and key
 * source), shared by every rule naming the same trust.
 */
export class IssuerKeys {
  readonly #timing: KeySetTiming
  readonly #timeout: number
  readonly #maxBytes: number
  readonly #discoveryMaxAge: number
  readonly #maxEntries: number
  readonly #fetch: typeof fetch | undefined
  readonly #now: () => number
  readonly #resolvers = new Map<string, JWTVerifyGetKey>()
  readonly #discovered = new Map<string, Discovered>()
  readonly #pending = new Map<string, Promise<string>>()

  constructor(options: IssuerKeysOptions = {}) {
    this.#now = options.now ?? Date.now
    this.#timing = {
      cacheMaxAge: positive(options.cacheMaxAgeMs, 600_000, 'cacheMaxAgeMs'),
      cooldown: positive(options.cooldownMs, 30_000, 'cooldownMs'),
      failureCooldown: positive(options.failureCooldownMs, 5_000, 'failureCooldownMs'),
      stale: positive(options.staleMaxAgeMs, 3_600_000, 'staleMaxAgeMs'),
      now: this.#now,
    }
    this.#timeout = positive(options.timeoutMs, 5_000, 'timeoutMs')
    this.#maxBytes = positive(options.maxBytes, 256 * 1024, 'maxBytes')
    this.#discoveryMaxAge = positive(options.discoveryMaxAgeMs, 3_600_000, 'discoveryMaxAgeMs')
    this.#maxEntries = positive(options.maxEntries, 512, 'maxEntries')
    this.#fetch = options.fetch
  }

  /**
   * The key resolver for `trust`, for jose `jwtVerify`. It throws jose's JWKSNoMatchingKey /
   * JWKSMultipleMatchingKeys when the token's header names no (or no single) key — the token's
   * fault — and MandateError `JWKS_UNAVAILABLE` when the keys cannot be obtained.
   */
  resolver(trust: IssuerTrust): JWTVerifyGetKey {
    const key = JSON.stringify([trust.issuer, trust.discovery ?? false, trust.jwksUri ?? null, trust.jwks ?? null])
    const hit = this.#resolvers.get(key)
    if (hit) {
      // refresh its place: the map's order is the eviction order
      this.#resolvers.delete(key)
      this.#resolvers.set(key, hit)
      return hit
    }
    const made = this.#make(trust)
    this.#resolvers.set(key, made)
    while (this.#resolvers.size > this.#maxEntries) this.#resolvers.delete(this.#resolvers.keys().next().value as string)
    return made
  }

  /**
   * The `jwks_uri` of the issuer's discovery document: cached for `discoveryMaxAgeMs`; a failure
   * is repeated without a fetch for `failureCooldownMs`; while a refresh fails, the last document
   * is used for at most `staleMaxAgeMs` more.
   */
  async discover(issuer: string): Promise<string> {
    const now = this.#now()
    const entry = this.#discovered.get(issuer)
    const good = entry?.good
    if (good && now - good.at < this.#discoveryMaxAge) return good.jwksUri
    const stale = good && now - good.at < this.#discoveryMaxAge + this.#timing.stale ? good.jwksUri : undefined
    const failure = entry?.failure
    if (failure && now - failure.at < this.#timing.failureCooldown) {
      if (stale !== undefined) return stale
      throw repeated(failure.error)
    }
    // concurrent grants naming one issuer share one fetch
    let p = this.#pending.get(issuer)
    if (!p) {
      p = this.#fetchDiscovery(issuer).finally(() => this.#pending.delete(issuer))
      this.#pending.set(issuer, p)
    }
    try {
      return await p
    } catch (err) {
      if (stale !== undefined) return stale
      throw err
    }
  }

  #remember(issuer: string, entry: Discovered): void {
    this.#discovered.delete(issuer)
    this.#discovered.set(issuer, entry)
    while (this.#discovered.size > this.#maxEntries) this.#discovered.delete(this.#discovered.keys().next().value as string)
  }

  async #fetchDiscovery(issuer: string): Promise<string> {
    try {
      const jwksUri = await this.#readDiscovery(issuer)
      this.#remember(issuer, { good: { jwksUri, at: this.#now() } })
      return jwksUri
    } catch (err) {
      const error = asUnavailable(err, issuer)
      const good = this.#discovered.get(issuer)?.good
      this.#remember(issuer, { ...(good ? { good } : {}), failure: { at: this.#now(), error } })
      throw error
    }
  }

  async #readDiscovery(issuer: string): Promise<string> {
    // OpenID Connect Discovery 1.0 §4: strip a trailing "/" from the issuer, append the well-known path
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
    const res = await fetchBounded(url, { method: 'GET', headers: { accept: 'application/json' } }, {
      ...(this.#fetch ? { fetch: this.#fetch } : {}), maxBytes: this.#maxBytes, timeoutMs: this.#timeout,
      unreachable: 'JWKS_UNAVAILABLE', invalid: 'JWKS_UNAVAILABLE', what: 'OpenID configuration',
    })
    if (res.status !== 200) throw unavailable(`the OpenID configuration of the issuer answered ${res.status}`, issuer, 'discovery_status')
    let doc: unknown
    try {
      doc = parseStrictJson(res.text)
    } catch (err) {
      throw unavailable('the OpenID configuration of the issuer is not a JSON object', issuer, 'discovery_json', err)
    }
    const d = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>) : {}
    // §4.3: the issuer in the document must be exactly the one its URL was made from (mix-up defence)
    if (d.issuer !== issuer) throw unavailable('the OpenID configuration names another issuer', issuer, 'discovery_issuer')
    const jwks = acceptableUrl(d.jwks_uri)
    if (!jwks) throw unavailable('the OpenID configuration has no usable jwks_uri (https, or http on loopback)', issuer, 'discovery_jwks_uri')
    return jwks.href
  }

  #make(trust: IssuerTrust): JWTVerifyGetKey {
    if (trust.jwks) {
      // the rule parser already refused what usableKeys leaves out; filtered again all the same
      const local = createLocalJWKSet({ keys: usableKeys(trust.jwks.keys) })
      return guarded(trust.issuer, (h, t) => local(h, t))
    }
    if (trust.jwksUri) {
      const remote = this.#remote(trust.jwksUri, trust.issuer)
      return guarded(trust.issuer, (h, t) => remote.get(h, t))
    }
    // discovery: the set follows the document's jwks_uri (a changed jwks_uri gets a new set)
    let current: { uri: string; set: RemoteKeySet } | undefined
    return guarded(trust.issuer, async (h, t) => {
      const uri = await this.discover(trust.issuer)
      if (!current || current.uri !== uri) current = { uri, set: this.#remote(uri, trust.issuer) }
      return current.set.get(h, t)
    })
  }

  #remote(uri: string, issuer: string): RemoteKeySet {
    const load = async (): Promise<JSONWebKeySet> => {
      const res = await fetchBounded(uri, { method: 'GET', headers: { accept: 'application/jwk-set+json, application/json' } }, {
        ...(this.#fetch ? { fetch: this.#fetch } : {}), maxBytes: this.#maxBytes, timeoutMs: this.#timeout,
        unreachable: 'JWKS_UNAVAILABLE', invalid: 'JWKS_UNAVAILABLE', what: 'JWKS',
      })
      if (res.status !== 200) throw unavailable(`the issuer's JWKS answered ${res.status}`, issuer, 'jwks_status')
      let doc: unknown
      try {
        doc = parseStrictJson(res.text)
      } catch (err) {
        throw unavailable('the issuer\'s JWKS is not strict JSON', issuer, 'jwks_json', err)
      }
      const keys = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>).keys : undefined
      if (!Array.isArray(keys)) throw unavailable('the issuer\'s JWKS is not a JSON Web Key Set ({ "keys": [...] })', issuer, 'jwks_invalid')
      return { keys: usableKeys(keys) }
    }
    return new RemoteKeySet(load, issuer, this.#timing)
  }
}

/**
 * Keep jose's "no such key" errors (the token's fault, reported as `kid`) and turn every other
 * failure to obtain keys into JWKS_UNAVAILABLE, so nothing but a key-set problem reads as one.
 */
function guarded(issuer: string, get: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await get(header, token)
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err
      throw asUnavailable(err, issuer)
    }
  }
}
