/**
 * The guard's cache of verified audience-level mandates (and verified offline chains). A token that
 * is not bound to one call is presented again and again, each time with a fresh proof; its
 * signature, strict parse and claim shape cannot change, so they are checked once and the result
 * is kept here for the exact presented string: the map is keyed by the string's last 64 characters
 * (the last signature: cheap to hash, unique per signed token), and a hit additionally requires the
 * whole string to be equal, so only the very same bytes hit — a look-alike sharing the signature
 * misses and is verified (and refused) in full. The entry keeps the string's SHA-256, the proof's
 * `ath`, so a hit needs no hashing of the token at all. Everything that CAN change is
 * re-checked by the guard on every hit: time, the issuer key still being trusted, revocation, the
 * proof, tool, arguments and replay.
 *
 * Bounded: at most `maxEntries` entries and about `maxBytes` of tokens and claims, least recently
 * used evicted first. An entry never outlives its token (the guard evicts it at expiry).
 */
import type { PublicKeyHandle } from '../crypto/backend.js'
import { MandateError } from '../errors.js'
import type { MandateClaims } from '../mandate/claims.js'
import type { OfflineHop } from '../attenuation/verify_chain.js'

/** What the guard proved about a presented token, once. */
export interface CachedMandate {
  /** The exact presented string (the cache key). */
  token: string
  /** Its SHA-256, base64url (`tokenHash(token)`): the `ath` its proofs must carry. */
  hash: string
  /** Claims that authorize: the mandate's, or an offline chain's last link. */
  claims: MandateClaims
  /** `kid` of the Authority key that signed the mandate (the chain's root). */
  kid: string
  /** The key it was verified with; a hit re-resolves `kid` and requires the same key. */
  key: PublicKeyHandle
  /** Thumbprint of the key the proof must be signed by. */
  holderJkt: string
  /** Every mandate id to check for revocation: the token (or every link) and every ancestor. */
  revocationIds: string[]
  /** Every actor of the chain (for revocation). */
  actors: string[]
  /** The authorizing link's actor chain, first delegate first (`actorChain(claims.act)`). */
  actorChain: string[]
  /** Its scopes, parsed. */
  scopes: string[]
  /** Earliest `exp` and latest `nbf`/`iat` over every link (one link for a plain mandate). */
  exp: number
  nbf: number
  iat: number
  mode: 'call' | 'audience' | 'mandate' | 'offline'
  offlineHops?: OfflineHop[]
  /**
   * Offline chains: the tool patterns that a `per_call` grant of ANY link (root or hop) marks for
   * this audience. A hop may keep a narrower grant beside the per_call one and drop the per_call
   * grant; the tool still needs the Authority, as it did at the link that marked it.
   */
  chainPerCall?: string[]
}

export interface MandateCacheOptions {
  /** Most entries kept (default 1024). */
  maxEntries?: number
  /** Approximate memory cap over every entry, in bytes (default 16 MiB). */
  maxBytes?: number
}

export const DEFAULT_MANDATE_CACHE_ENTRIES = 1024
export const DEFAULT_MANDATE_CACHE_BYTES = 16 * 1024 * 1024

/**
 * Approximate retained size: the token string plus its parsed claims, which take a few times the
 * payload's text in V8 objects. An estimate, used only to bound memory.
 */
function sizeOf(entry: CachedMandate): number {
  return 512 + entry.token.length * 4 + entry.revocationIds.length * 96 + entry.actors.length * 128
}

/** Map key of a token: its tail (the last link's signature), which V8 hashes in O(64) rather than O(length). */
function keyOf(token: string): string {
  return token.length > 64 ? token.slice(-64) : token
}

/** A bounded LRU of verified tokens, found by the presented string. */
export class MandateCache {
  readonly #entries = new Map<string, { entry: CachedMandate; size: number }>()
  /** The most recently used slot (the map's last), or undefined when unknown. */
  #last: { entry: CachedMandate; size: number } | undefined = undefined
  readonly maxEntries: number
  readonly maxBytes: number
  #bytes = 0

  constructor(options: MandateCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? DEFAULT_MANDATE_CACHE_ENTRIES
    this.maxBytes = options.maxBytes ?? DEFAULT_MANDATE_CACHE_BYTES
    if (!Number.isSafeInteger(this.maxEntries) || this.maxEntries < 1) throw new MandateError('CONFIG_INVALID', 'mandateCache.maxEntries must be a positive integer')
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 1024) throw new MandateError('CONFIG_INVALID', 'mandateCache.maxBytes must be an integer of at least 1024')
  }

  /** Entries held. */
  get size(): number {
    return this.#entries.size
  }

  /** Approximate bytes held. */
  get bytes(): number {
    return this.#bytes
  }

  /** The entry for exactly this token (the same string, not a look-alike), or undefined. */
  get(token: string): CachedMandate | undefined {
    const key = keyOf(token)
    const slot = this.#entries.get(key)
    if (slot === undefined || slot.entry.token !== token) return undefined
    // most recently used last: Map keeps insertion order. Moving the entry that is already last
    // changes nothing but costs a delete and an insert (and the table's rehash churn) per hit.
    if (slot !== this.#last) {
      this.#entries.delete(key)
      this.#entries.set(key, slot)
      this.#last = slot
    }
    return slot.entry
  }

  set(entry: CachedMandate): void {
    const size = sizeOf(entry)
    // one entry larger than the whole budget is not worth evicting everything for
    if (size > this.maxBytes) return
    const key = keyOf(entry.token)
    this.#drop(key)
    while (this.#entries.size >= this.maxEntries || this.#bytes + size > this.maxBytes) {
      const oldest = this.#entries.keys().next()
      if (oldest.done) break
      this.#drop(oldest.value)
    }
    const slot = { entry, size }
    this.#entries.set(key, slot)
    this.#last = slot
    this.#bytes += size
  }

  /** Evict the entry of exactly this token (a look-alike never evicts another token's entry). */
  delete(token: string): void {
    const key = keyOf(token)
    const slot = this.#entries.get(key)
    if (slot !== undefined && slot.entry.token === token) this.#drop(key)
  }

  #drop(key: string): void {
    const slot = this.#entries.get(key)
    if (slot === undefined) return
    this.#entries.delete(key)
    if (slot === this.#last) this.#last = undefined
    this.#bytes -= slot.size
  }

  clear(): void {
    this.#entries.clear()
    this.#last = undefined
    this.#bytes = 0
  }
}
