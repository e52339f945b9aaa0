/**
 * The key sets of the external issuers federation rules trust, cached per trust.
 *
 * Remote sets (a `jwksUri`, or the `jwks_uri` of the issuer's OpenID Connect Discovery document)
 * are jose remote JWK sets: cached for `cacheMaxAgeMs`, and fetched again when a token names a
 * `kid` the cache lacks (at most once per `cooldownMs`), so a key the issuer adds is picked up
 * without a restart and a key it removes stops verifying once the cache ages out. Every fetch goes
 * through core's bounded fetch (size cap, one deadline, no redirects). An issuer that cannot be
 * reached is JWKS_UNAVAILABLE (503): the grant fails closed, it never skips the signature.
 */
import { fetchBounded, MandateError, parseStrictJson } from '@mandate/core'
import { createLocalJWKSet, createRemoteJWKSet, customFetch, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'
import type { IssuerTrust } from './types.js'

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
  /** Most trusts cached at once (default 512; the least recently used is dropped). */
  maxEntries?: number
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch
  /** ms clock for the discovery cache (default Date.now; jose's own cache uses Date.now). */
  now?: () => number
}

interface Discovered {
  jwksUri: string
  at: number
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** https, or http on a loopback host (tests, local development) — the same rule as the rule parser's. */
function acceptableUrl(s: unknown): URL | undefined {
  if (typeof s !== 'string' || s.length > 2048) return undefined
  try {
    const u = new URL(s)
    if (u.username || u.password || u.hash) return undefined
    return u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname)) ? u : undefined
  } catch {
    return undefined
  }
}

function unavailable(message: string, issuer: string, reason: string, cause?: unknown): MandateError {
  return new MandateError('JWKS_UNAVAILABLE', message, { detail: { issuer: issuer.slice(0, 256), reason }, ...(cause !== undefined ? { cause } : {}) })
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < 0) throw new MandateError('CONFIG_INVALID', `${name} must be a non-negative integer (ms)`)
  return v
}

/**
 * Key resolvers for the issuers of federation rules, one per distinct trust (issuer and key
 * source), shared by every rule naming the same trust.
 */
export class IssuerKeys {
  readonly #cacheMaxAge: number
  readonly #cooldown: number
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
    this.#cacheMaxAge = positive(options.cacheMaxAgeMs, 600_000, 'cacheMaxAgeMs')
    this.#cooldown = positive(options.cooldownMs, 30_000, 'cooldownMs')
    this.#timeout = positive(options.timeoutMs, 5_000, 'timeoutMs')
    this.#maxBytes = positive(options.maxBytes, 256 * 1024, 'maxBytes')
    this.#discoveryMaxAge = positive(options.discoveryMaxAgeMs, 3_600_000, 'discoveryMaxAgeMs')
    this.#maxEntries = positive(options.maxEntries, 512, 'maxEntries')
    this.#fetch = options.fetch
    this.#now = options.now ?? Date.now
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

  /** The `jwks_uri` of the issuer's discovery document (cached; a failed fetch is not cached). */
  async discover(issuer: string): Promise<string> {
    const hit = this.#discovered.get(issuer)
    if (hit && this.#now() - hit.at < this.#discoveryMaxAge) return hit.jwksUri
    // concurrent grants naming one issuer share one fetch
    const pending = this.#pending.get(issuer)
    if (pending) return pending
    const p = this.#fetchDiscovery(issuer).finally(() => this.#pending.delete(issuer))
    this.#pending.set(issuer, p)
    return p
  }

  async #fetchDiscovery(issuer: string): Promise<string> {
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
    this.#discovered.set(issuer, { jwksUri: jwks.href, at: this.#now() })
    while (this.#discovered.size > this.#maxEntries) this.#discovered.delete(this.#discovered.keys().next().value as string)
    return jwks.href
  }

  #make(trust: IssuerTrust): JWTVerifyGetKey {
    if (trust.jwks) {
      const local = createLocalJWKSet(trust.jwks as unknown as JSONWebKeySet)
      return guarded(trust.issuer, (h, t) => local(h, t))
    }
    if (trust.jwksUri) {
      const remote = this.#remote(trust.jwksUri, trust.issuer)
      return guarded(trust.issuer, (h, t) => remote(h, t))
    }
    // discovery: the set follows the document's jwks_uri (a changed jwks_uri gets a new set)
    let current: { uri: string; set: JWTVerifyGetKey } | undefined
    return guarded(trust.issuer, async (h, t) => {
      const uri = await this.discover(trust.issuer)
      if (!current || current.uri !== uri) current = { uri, set: this.#remote(uri, trust.issuer) }
      return current.set(h, t)
    })
  }

  #remote(uri: string, issuer: string): JWTVerifyGetKey {
    const bounded = async (url: string | URL | Request): Promise<Response> => {
      const res = await fetchBounded(String(url instanceof Request ? url.url : url), { method: 'GET', headers: { accept: 'application/jwk-set+json, application/json' } }, {
        ...(this.#fetch ? { fetch: this.#fetch } : {}), maxBytes: this.#maxBytes, timeoutMs: this.#timeout,
        unreachable: 'JWKS_UNAVAILABLE', invalid: 'JWKS_UNAVAILABLE', what: 'JWKS',
      })
      if (res.status !== 200) throw unavailable(`the issuer's JWKS answered ${res.status}`, issuer, 'jwks_status')
      return new Response(res.text, { status: 200, headers: { 'content-type': 'application/json' } })
    }
    return createRemoteJWKSet(new URL(uri), {
      cacheMaxAge: this.#cacheMaxAge, cooldownDuration: this.#cooldown, timeoutDuration: this.#timeout,
      [customFetch]: bounded,
    }) as JWTVerifyGetKey
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
      if (MandateError.is(err)) throw err
      if (err instanceof errors.JWKSTimeout) throw unavailable('the issuer\'s JWKS did not answer in time', issuer, 'timeout', err)
      throw unavailable('the issuer\'s JWKS could not be used', issuer, err instanceof errors.JOSEError ? err.code : 'jwks', err)
    }
  }
}
