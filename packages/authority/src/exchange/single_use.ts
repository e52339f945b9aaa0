/**
 * Single-use state of the Authority: the `jti`s of client assertions and DPoP proofs, remembered
 * until they expire. Only requests that could succeed are recorded here (the principal is
 * registered, enabled and unrevoked and its signature verified; see client_auth.ts), so strangers
 * cannot take a place in it. Entries are evicted by expiry (per-second buckets: O(1) amortised),
 * so memory is bounded by the assertion lifetime times the authenticated rate, and each principal
 * has its own budget: one busy or hostile registered principal exhausts only its own.
 */
import { MandateError, type ReplayStore } from '@mandate/core'

export interface SingleUseLimits {
  /** Live entries one principal may hold (its assertions and proofs until they expire). Default 250,000. */
  perPrincipal?: number
  /** Live entries in total (a memory ceiling; ~250 bytes each). Default 1,000,000. */
  maxEntries?: number
}

/** Where the Authority records single use, attributed to the authenticated principal. */
export interface SingleUse {
  /** true: first use (now recorded until `expiresAt`, seconds); false: already used. May throw CAPACITY_EXCEEDED. */
  use(principal: string, key: string, expiresAt: number): boolean | Promise<boolean>
}

/** A caller-supplied ReplayStore (e.g. shared across instances): single use only, its own bounds. */
export function replayStoreSingleUse(store: ReplayStore): SingleUse {
  return { use: (_principal, key, expiresAt) => store.use(key, expiresAt) }
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < 1) throw new MandateError('CONFIG_INVALID', `singleUse.${name} must be a positive integer`)
  return v
}

/** The default in-memory single-use store of one Authority process. */
export class MemorySingleUse implements SingleUse {
  readonly #entries = new Map<string, { exp: number; owner: string }>()
  /** expiry second → keys expiring then */
  readonly #buckets = new Map<number, string[]>()
  readonly #counts = new Map<string, number>()
  readonly #perPrincipal: number
  readonly #max: number
  readonly #now: () => number
  /** every bucket before this second has been evicted */
  #evictedBefore: number

  constructor(limits: SingleUseLimits = {}, now: () => number = () => Math.floor(Date.now() / 1000)) {
    this.#perPrincipal = positive(limits.perPrincipal, 250_000, 'perPrincipal')
    this.#max = positive(limits.maxEntries, 1_000_000, 'maxEntries')
    this.#now = now
    this.#evictedBefore = now()
  }

  /** Live entries (for tests and metrics). */
  get size(): number {
    this.#evict(this.#now())
    return this.#entries.size
  }

  use(principal: string, key: string, expiresAt: number): boolean {
    const now = this.#now()
    this.#evict(now)
    const seen = this.#entries.get(key)
    // an entry lives through its expiry second (a use in that very second is still a replay)
    if (seen !== undefined && seen.exp >= now) return false
    if (seen !== undefined) this.#forget(key, seen)
    if (!Number.isFinite(expiresAt) || expiresAt < now) return true // already outside every verifier's window
    if ((this.#counts.get(principal) ?? 0) >= this.#perPrincipal) {
      throw new MandateError('CAPACITY_EXCEEDED', 'this principal has too many live client assertions and proofs; retry when some expire')
    }
    if (this.#entries.size >= this.#max) throw new MandateError('CAPACITY_EXCEEDED', 'the single-use store of the Authority is full; retry shortly')
    const exp = Math.floor(expiresAt)
    this.#entries.set(key, { exp, owner: principal })
    this.#counts.set(principal, (this.#counts.get(principal) ?? 0) + 1)
    const bucket = this.#buckets.get(exp)
    if (bucket) bucket.push(key)
    else this.#buckets.set(exp, [key])
    return true
  }

  #forget(key: string, e: { exp: number; owner: string }): void {
    this.#entries.delete(key)
    const n = (this.#counts.get(e.owner) ?? 1) - 1
    if (n <= 0) this.#counts.delete(e.owner)
    else this.#counts.set(e.owner, n)
  }

  /** Drop every bucket whose second is before `now`. */
  #evict(now: number): void {
    if (now <= this.#evictedBefore) return
    const drop = (second: number) => {
      for (const key of this.#buckets.get(second) ?? []) {
        const e = this.#entries.get(key)
        // the key may have been used again later with another expiry: only its own bucket drops it
        if (e && e.exp === second) this.#forget(key, e)
      }
      this.#buckets.delete(second)
    }
    if (now - this.#evictedBefore <= this.#buckets.size) {
      for (let s = this.#evictedBefore; s < now; s++) if (this.#buckets.has(s)) drop(s)
    } else {
      // a long idle gap: walk the buckets instead of every second
      for (const s of [...this.#buckets.keys()]) if (s < now) drop(s)
    }
    this.#evictedBefore = now
  }
}
