/**
 * Subject tokens the Authority has verified, kept so that an agent presenting the same mandate for
 * call after call (one exchange per tool call) costs one signature verification per mandate, not
 * one per exchange. Only what cannot change is kept: the signature over these exact bytes, the
 * strict parse and the claim shapes. Everything that can change is checked on every exchange as
 * before — the token's times (a hit never outlives it), the signing key still being trusted (its
 * kid must still resolve, to the very same key: a key rotated out or replaced means a full
 * verification, which then refuses), and, in the exchange itself, the stored record, revocation of
 * the token, its ancestors, task and agents, and every agent of the chain being enabled.
 *
 * Keyed by the exact presented string (the map by its last 64 characters — the signature — and a
 * hit also compares the whole string), bounded in entries, least recently used evicted first.
 */
import { checkTimes, MandateError, tokenHash, verifyMandate, type KeyResolver, type MandateClaims, type PublicKeyHandle } from '@mandate/core'

interface Entry {
  readonly token: string
  readonly claims: MandateClaims
  /** base64url(SHA-256(token)): the child's `parent_hash`, computed once. */
  readonly hash: string
  readonly kid: string
  readonly key: PublicKeyHandle
}

/** A verified subject token: its claims and its hash. */
export interface VerifiedSubject {
  readonly claims: MandateClaims
  readonly hash: string
}

export const DEFAULT_SUBJECT_CACHE_ENTRIES = 4096

function deepFreeze(v: unknown): void {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return
  Object.freeze(v)
  for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k])
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const keyOf = (token: string): string => (token.length > 64 ? token.slice(-64) : token)

export class SubjectCache {
  readonly #entries = new Map<string, Entry>()
  readonly maxEntries: number

  /** `maxEntries` 0 turns the cache off: every exchange verifies its subject token in full. */
  constructor(maxEntries: number = DEFAULT_SUBJECT_CACHE_ENTRIES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 0) throw new MandateError('CONFIG_INVALID', 'subjectCache.maxEntries must be a non-negative integer')
    this.maxEntries = maxEntries
  }

  get size(): number {
    return this.#entries.size
  }

  /**
   * verifyMandate's answer for this token (same errors), from the cache while the cached result
   * still holds: `now` within its times, its kid resolving to the key that verified it.
   */
  async verify(token: string, options: { issuer: string; keys: KeyResolver; now: number; skew: number }): Promise<VerifiedSubject> {
    if (this.maxEntries > 0 && typeof token === 'string') {
      const k = keyOf(token)
      const hit = this.#entries.get(k)
      if (hit !== undefined && hit.token === token) {
        let key: PublicKeyHandle | undefined
        try {
          checkTimes(hit.claims, options.now, options.skew)
          key = await options.keys.resolve(hit.kid)
        } catch (err) {
          if (this.#entries.get(k) === hit) this.#entries.delete(k)
          throw err
        }
        if (sameKey(key.raw, hit.key.raw)) {
          // most recently used last (Map keeps insertion order) — only while it is still the entry:
          // misses that ran during the await may have evicted it, and putting it back would
          // grow the map past its bound
          if (this.#entries.get(k) === hit) {
            this.#entries.delete(k)
            this.#entries.set(k, hit)
          }
          return hit
        }
        // another key under the same kid: verify afresh (and refuse, unless it signed these bytes)
        if (this.#entries.get(k) === hit) this.#entries.delete(k)
      }
    }
    const v = await verifyMandate(token, { issuer: options.issuer, keys: options.keys, now: options.now, skew: options.skew })
    const entry: Entry = { token: token as string, claims: v.claims, hash: tokenHash(token as string), kid: v.kid, key: v.key }
    // call and audience credentials are never subject tokens (the exchange refuses them): not worth a slot
    if (this.maxEntries > 0 && !v.claims.call && v.claims.credential === undefined) {
      // shared with every exchange that hits: frozen (the entry and its claims), so no exchange can
      // change what the next one reads
      deepFreeze(entry.claims)
      Object.freeze(entry)
      const k = keyOf(entry.token)
      this.#entries.delete(k)
      while (this.#entries.size >= this.maxEntries) {
        const oldest = this.#entries.keys().next()
        if (oldest.done) break
        this.#entries.delete(oldest.value)
      }
      this.#entries.set(k, entry)
    }
    return entry
  }

  clear(): void {
    this.#entries.clear()
  }
}
