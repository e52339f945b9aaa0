/**
 * The client side of the cached call mode: one audience credential per (mandate, audience),
 * obtained from the Authority once, reused for every call to that audience with a fresh proof per
 * call, and replaced shortly before it expires. Both framework adapters use this one cache, so the
 * refresh, sharing and per-call rules are the same everywhere.
 */
import { MandateError } from '../errors.js'
import { tokenHash } from '../mandate/args_digest.js'
import { parseMandateClaims, type MandateClaims, type ToolGrant } from '../mandate/claims.js'
import { decodeMandateUnverified } from '../mandate/verify.js'
import { decodeOfflineChainUnverified } from '../attenuation/decode.js'
import { toolMatches } from '../narrowing/tools.js'
import type { AuthorityClient, IssuedToken } from './authority_client.js'

/** Options of {@link createAudienceCredentialCache}. */
export interface AudienceCredentialCacheOptions {
  /** The holder's Authority client; it must implement `audienceCredential`. */
  client: AuthorityClient
  /** Lifetime to request, in seconds (default: the Authority's, at most 900). */
  expiresIn?: number
  /**
   * Start replacing a credential this many seconds before it expires (default 60, never more than
   * half its lifetime). Calls meanwhile keep using the current one, so no call waits for the
   * Authority while the credential is still good.
   */
  refreshAheadSeconds?: number
  /**
   * Never present a credential with less than this many seconds left (default 5): a call then waits
   * for the replacement instead of risking expiry in transit.
   */
  minRemainingSeconds?: number
  /** Scopes to request (default: the mandate's). */
  scopes?: readonly string[]
  /** Distinct (mandate, audience) pairs remembered at once (default 256; the oldest is dropped). */
  maxEntries?: number
  /** Milliseconds since the epoch (default Date.now). */
  clock?: () => number
}

/** An audience credential as the cache hands it out. The token is a secret: never log it or show it to a model. */
export interface CachedAudienceCredential {
  readonly token: string
  /** Seconds since the epoch. */
  readonly expiresAt: number
  /** Its claims, as issued (not verified here: the guard verifies every call). */
  readonly claims: MandateClaims
  /**
   * True when `tool` must be called with a per-call credential from the Authority instead: a grant
   * that could authorize it at this audience is marked `per_call`, or a guard already refused it
   * with `CALL_CREDENTIAL_REQUIRED` (see {@link AudienceCredentialCache.markPerCall}).
   */
  requiresPerCall(tool: string): boolean
}

/** See {@link createAudienceCredentialCache}. */
export interface AudienceCredentialCache {
  /**
   * The credential for `mandate` at `audience`: the cached one while it is good; otherwise one
   * exchange at the Authority, shared by every call that arrives meanwhile.
   *
   * @throws MandateError whatever the Authority refused with. `UNSUPPORTED_TOKEN_TYPE` means the
   *   client or the Authority does not issue audience credentials (remembered for 5 minutes, so the
   *   Authority is not asked on every call).
   */
  get(mandate: string, audience: string): Promise<CachedAudienceCredential>
  /**
   * Remember that a guard refused `tool` at `audience` with an audience credential because it needs
   * an Authority-minted call credential: later calls of that tool go per-call at once.
   */
  markPerCall(mandate: string, audience: string, tool: string): void
  /** Forget the credential for (mandate, audience), e.g. after a guard refused it as revoked or expired. */
  invalidate(mandate: string, audience: string): void
  /** How many exchanges this cache made (for tests and metrics). */
  readonly exchanges: number
}

interface Entry {
  current?: CachedAudienceCredential & { refreshAt: number; usableUntil: number }
  inflight?: Promise<CachedAudienceCredential>
  /** Tools a guard refused with CALL_CREDENTIAL_REQUIRED; kept across refreshes. */
  readonly perCall: Set<string>
}

const DISABLED_FOR_MS = 300_000
/** The claims of the last link of an offline chain, unverified (the guard verifies the whole chain). */
function lastLinkClaims(presented: string): MandateClaims {
  const { root, hops } = decodeOfflineChainUnverified(presented)
  return parseMandateClaims((hops[hops.length - 1] ?? root).payload)
}
const MAX_LIFETIME = 900

/**
 * True when a grant of `claims` that could authorize `tool` at `audience` demands a per-call
 * credential (`per_call: true`). Conservative: one such grant is enough, even if another grant
 * without the mark covers the tool too (a per-call credential is accepted wherever the call is).
 */
export function grantRequiresPerCall(claims: Pick<MandateClaims, 'authorization_details'>, audience: string, tool: string): boolean {
  for (const g of claims.authorization_details) {
    if (g.locations && !g.locations.includes(audience)) continue
    if (!g.tools.some((p) => toolMatches(p, tool))) continue
    if ((g as ToolGrant & { per_call?: unknown }).per_call === true) return true
  }
  return false
}

/**
 * Create the cache the cached call mode uses. Fail closed: a credential the Authority answered that
 * is not for this audience, not an audience credential, or already (nearly) expired is refused
 * (`INVALID_RESPONSE`), never used.
 */
export function createAudienceCredentialCache(options: AudienceCredentialCacheOptions): AudienceCredentialCache {
  const client = options.client
  if (!client || typeof client.issuer !== 'string') throw new MandateError('CONFIG_INVALID', 'client must be an AuthorityClient')
  const expiresIn = options.expiresIn
  if (expiresIn !== undefined && (!Number.isSafeInteger(expiresIn) || expiresIn <= 0 || expiresIn > MAX_LIFETIME)) {
    throw new MandateError('CONFIG_INVALID', `expiresIn must be 1..${MAX_LIFETIME} seconds`)
  }
  const ahead = seconds(options.refreshAheadSeconds, 60, 'refreshAheadSeconds')
  const minRemaining = seconds(options.minRemainingSeconds, 5, 'minRemainingSeconds')
  const maxEntries = options.maxEntries ?? 256
  if (!Number.isSafeInteger(maxEntries) || maxEntries <= 0) throw new MandateError('CONFIG_INVALID', 'maxEntries must be a positive integer')
  const scopes = options.scopes ? [...options.scopes] : undefined
  const clock = options.clock ?? Date.now
  const entries = new Map<string, Entry>()
  let disabledUntil = 0
  let exchanges = 0

  // keyed by the mandate's hash: the map never holds a second copy of a mandate
  const keyOf = (mandate: string, audience: string) => `${tokenHash(mandate)} ${audience}`

  function entryFor(key: string): Entry {
    let e = entries.get(key)
    if (e) {
      // most recently used last, so the oldest is the first one dropped
      entries.delete(key)
      entries.set(key, e)
      return e
    }
    e = { perCall: new Set() }
    entries.set(key, e)
    if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string)
    return e
  }

  function unsupported(): MandateError {
    return new MandateError('UNSUPPORTED_TOKEN_TYPE', 'the Authority does not issue audience credentials to this client (cached call mode unavailable)')
  }

  async function exchange(entry: Entry, mandate: string, audience: string): Promise<CachedAudienceCredential> {
    if (clock() < disabledUntil) throw unsupported()
    const ask = client.audienceCredential
    if (typeof ask !== 'function') {
      disabledUntil = clock() + DISABLED_FOR_MS
      throw unsupported()
    }
    exchanges++
    let issued: IssuedToken
    try {
      issued = await ask.call(client, {
        mandate, audience, ...(scopes ? { scopes: [...scopes] } : {}), ...(expiresIn !== undefined ? { expiresIn } : {}),
      })
    } catch (err) {
      if (MandateError.is(err) && err.code === 'UNSUPPORTED_TOKEN_TYPE') disabledUntil = clock() + DISABLED_FOR_MS
      throw err
    }
    const made = accept(issued, audience, entry)
    entry.current = made
    return made
  }

  function accept(issued: IssuedToken, audience: string, entry: Entry): CachedAudienceCredential & { refreshAt: number; usableUntil: number } {
    if (typeof issued?.token !== 'string' || issued.token.length === 0) throw new MandateError('INVALID_RESPONSE', 'the Authority returned no audience credential')
    let claims: MandateClaims
    try {
      claims = parseMandateClaims(decodeMandateUnverified(issued.token).payload)
    } catch (err) {
      throw new MandateError('INVALID_RESPONSE', 'the Authority returned an audience credential that is not a mandate', { cause: err })
    }
    const raw = claims as MandateClaims & { credential?: unknown }
    // a call credential is single use: reusing one would make every later call a replay
    if (raw.credential !== 'audience' || claims.call !== undefined) throw new MandateError('INVALID_RESPONSE', 'the Authority returned something other than an audience credential')
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
    if (aud.length !== 1 || aud[0] !== audience) throw new MandateError('INVALID_RESPONSE', 'the Authority returned an audience credential for another audience')
    const now = clock() / 1000
    const lifetime = claims.exp - claims.iat
    // a short-lived credential keeps at least three quarters of its life usable
    const usableUntil = claims.exp - Math.min(minRemaining, Math.floor(lifetime / 4))
    if (!(lifetime > 0) || usableUntil <= now) throw new MandateError('INVALID_RESPONSE', 'the Authority returned an audience credential that is (nearly) expired')
    const refreshAt = Math.max(claims.iat, claims.exp - Math.min(ahead, Math.floor(lifetime / 2)))
    return Object.freeze({
      token: issued.token,
      expiresAt: claims.exp,
      claims,
      refreshAt,
      usableUntil,
      requiresPerCall: (tool: string) => entry.perCall.has(tool) || grantRequiresPerCall(claims, audience, tool),
    })
  }

  function chainCredential(presented: string, audience: string, entry: Entry): CachedAudienceCredential & { refreshAt: number; usableUntil: number } {
    let claims: MandateClaims
    try {
      claims = lastLinkClaims(presented)
    } catch (err) {
      throw new MandateError('INVALID_GRANT', 'the offline mandate chain cannot be read', { cause: err })
    }
    const usableUntil = claims.exp - minRemaining
    if (usableUntil <= clock() / 1000) throw new MandateError('TOKEN_EXPIRED', 'the offline mandate chain has expired')
    return Object.freeze({
      token: presented, expiresAt: claims.exp, claims, refreshAt: Infinity, usableUntil,
      requiresPerCall: (tool: string) => entry.perCall.has(tool) || grantRequiresPerCall(claims, audience, tool),
    })
  }

  function refresh(entry: Entry, mandate: string, audience: string): Promise<CachedAudienceCredential> {
    if (!entry.inflight) {
      const p = exchange(entry, mandate, audience)
      entry.inflight = p
      const done = () => {
        if (entry.inflight === p) entry.inflight = undefined
      }
      p.then(done, (err: unknown) => {
        done()
        // a refusal that is about the task (revoked, expired, policy) ends the cached credential too;
        // an unreachable Authority does not: the credential still good is what keeps agents working
        if (!(MandateError.is(err) && (err.code === 'AUTHORITY_UNREACHABLE' || err.code === 'CAPACITY_EXCEEDED' || err.code === 'STORE_UNAVAILABLE'))) entry.current = undefined
      })
    }
    return entry.inflight
  }

  return {
    get exchanges() {
      return exchanges
    },
    async get(mandate, audience) {
      if (typeof mandate !== 'string' || mandate.length === 0) throw new MandateError('INVALID_GRANT', 'no mandate is available for this agent')
      const entry = entryFor(keyOf(mandate, audience))
      const now = clock() / 1000
      // an offline chain is already what a cached credential is: reused as is, no Authority involved
      if (mandate.includes('~')) {
        const chain = (entry.current ??= chainCredential(mandate, audience, entry))
        if (now >= chain.usableUntil) throw new MandateError('TOKEN_EXPIRED', 'the offline mandate chain has expired')
        return chain
      }
      const cur = entry.current
      if (cur && now < cur.usableUntil) {
        if (now >= cur.refreshAt) refresh(entry, mandate, audience).catch(() => undefined)
        return cur
      }
      return refresh(entry, mandate, audience)
    },
    markPerCall(mandate, audience, tool) {
      const e = entries.get(keyOf(mandate, audience))
      if (e && e.perCall.size < 1024) e.perCall.add(tool)
    },
    invalidate(mandate, audience) {
      const e = entries.get(keyOf(mandate, audience))
      if (e) e.current = undefined
    },
  }
}

function seconds(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < 0 || v > MAX_LIFETIME) throw new MandateError('CONFIG_INVALID', `${name} must be 0..${MAX_LIFETIME} seconds`)
  return v
}
