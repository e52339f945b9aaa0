/**
 * Single-use state of the Authority: the `jti`s of client assertions and DPoP proofs, remembered
 * until they expire. Only requests that could succeed are recorded here (the principal is
 * registered, enabled and unrevoked and its signature verified; see client_auth.ts), so strangers
 * cannot take a place in it. Entries are evicted by expiry (per-second buckets: O(1) amortised),
 * so memory is bounded by the assertion lifetime times the authenticated rate, and each principal
 * has its own budget: one busy or hostile registered principal exhausts only its own.
 */
import { cryptoBackend, MandateError, type ReplayStore, replayAnswer } from '@mandate/core'

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

/**
 * A caller-supplied ReplayStore (e.g. Redis or Postgres shared by every Authority instance) for
 * single use, behind this instance's per-principal budget: a shared store has no notion of who
 * wrote a key, so without the budget one registered client could fill it at its signing rate.
 * Each instance counts the live entries it recorded per principal (counts only, no keys), so a
 * principal holds at most `perPrincipal` × instances entries in the shared store.
 * Fail closed: a store that throws anything but a MandateError, or answers anything but a boolean,
 * is REPLAY_STORE_UNAVAILABLE (HTTP 503), never a first use.
 */
export function replayStoreSingleUse(store: ReplayStore, limits: Pick<SingleUseLimits, 'perPrincipal'> = {}, now: () => number = () => Math.floor(Date.now() / 1000)): SingleUse {
  const budget = new PrincipalBudget(positive(limits.perPrincipal, 250_000, 'perPrincipal'), now)
  return {
    async use(principal, key, expiresAt) {
      budget.check(principal)
      let answer: unknown
      try {
        answer = await store.use(key, expiresAt)
      } catch (err) {
        if (MandateError.is(err)) throw err
        throw new MandateError('REPLAY_STORE_UNAVAILABLE', 'the replay store failed; single-use credentials are refused', { cause: err })
      }
      const fresh = replayAnswer(answer)
      if (fresh) budget.add(principal, expiresAt)
      return fresh
    },
  }
}

/** Live-entry counts per principal, released when their expiry second passes (per-second buckets). */
class PrincipalBudget {
  readonly #counts = new Map<string, number>()
  readonly #buckets = new Map<number, string[]>()
  #evictedBefore: number

  constructor(readonly max: number, readonly now: () => number) {
    this.#evictedBefore = now()
  }

  check(principal: string): void {
    this.#evict(this.now())
    if ((this.#counts.get(principal) ?? 0) >= this.max) {
      throw new MandateError('CAPACITY_EXCEEDED', 'this principal has too many live client assertions and proofs; retry when some expire')
    }
  }

  add(principal: string, expiresAt: number): void {
    if (!Number.isFinite(expiresAt) || expiresAt < this.now()) return
    const exp = Math.floor(expiresAt)
    this.#counts.set(principal, (this.#counts.get(principal) ?? 0) + 1)
    const b = this.#buckets.get(exp)
    if (b) b.push(principal)
    else this.#buckets.set(exp, [principal])
  }

  #evict(now: number): void {
    if (now <= this.#evictedBefore) return
    for (const [second, owners] of this.#buckets) {
      if (second >= now) continue
      for (const o of owners) {
        const n = (this.#counts.get(o) ?? 1) - 1
        if (n <= 0) this.#counts.delete(o)
        else this.#counts.set(o, n)
      }
      this.#buckets.delete(second)
    }
    this.#evictedBefore = now
  }
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || v < 1) throw new MandateError('CONFIG_INVALID', `singleUse.${name} must be a positive integer`)
  return v
}

/**
 * The default in-memory single-use store of one Authority process.
 *
 * Compact by design, since it holds every assertion and proof of the last ~90 s (at 1,000 exchanges/s
 * that is ~180,000 entries): an entry is a 16-byte digest of its key (a one-byte string) mapped to
 * its expiry second (a small integer, no object), plus one slot in the bucket of that second, which
 * also names the owner. About 90 bytes an entry instead of ~260 (measured) with the key text and an
 * object per entry. A digest collision could only make a fresh key look used (a refusal, never a
 * replay accepted), at odds of 2^-64 per pair.
 */
export class MemorySingleUse implements SingleUse {
  /** digest of the key → expiry second */
  readonly #entries = new Map<string, number>()
  /** expiry second → the digests expiring then, and their owners (parallel arrays) */
  readonly #buckets = new Map<number, { keys: string[]; owners: string[] }>()
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
    const id = digestOf(key)
    const seen = this.#entries.get(id)
    // an entry lives through its expiry second (a use in that very second is still a replay)
    if (seen !== undefined && seen >= now) return false
    if (seen !== undefined) this.#forget(id, seen)
    // never a first use by default: an expiry that is not a number is a caller's bug, refused
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) throw new MandateError('CONFIG_INVALID', 'expiresAt must be a finite number of seconds')
    if (expiresAt < now) return true // already outside every verifier's window (its time check refused it first)
    if ((this.#counts.get(principal) ?? 0) >= this.#perPrincipal) {
      throw new MandateError('CAPACITY_EXCEEDED', 'this principal has too many live client assertions and proofs; retry when some expire')
    }
    if (this.#entries.size >= this.#max) throw new MandateError('CAPACITY_EXCEEDED', 'the single-use store of the Authority is full; retry shortly')
    const exp = Math.floor(expiresAt)
    this.#entries.set(id, exp)
    this.#counts.set(principal, (this.#counts.get(principal) ?? 0) + 1)
    const bucket = this.#buckets.get(exp)
    if (bucket) {
      bucket.keys.push(id)
      bucket.owners.push(principal)
    } else this.#buckets.set(exp, { keys: [id], owners: [principal] })
    return true
  }

  /** Forget a live entry out of turn (its bucket keeps a stale slot, skipped when it is evicted). */
  #forget(id: string, exp: number): void {
    const b = this.#buckets.get(exp)
    const i = b ? b.keys.lastIndexOf(id) : -1
    this.#entries.delete(id)
    if (b && i >= 0) {
      this.#uncount(b.owners[i] as string)
      b.keys[i] = ''
    }
  }

  #uncount(owner: string): void {
    const n = (this.#counts.get(owner) ?? 1) - 1
    if (n <= 0) this.#counts.delete(owner)
    else this.#counts.set(owner, n)
  }

  /** Drop every bucket whose second is before `now`. */
  #evict(now: number): void {
    if (now <= this.#evictedBefore) return
    const drop = (second: number) => {
      const b = this.#buckets.get(second)
      if (b) {
        for (let i = 0; i < b.keys.length; i++) {
          const id = b.keys[i] as string
          // the key may have been used again later with another expiry: only its own bucket drops it
          if (id !== '' && this.#entries.get(id) === second) {
            this.#entries.delete(id)
            this.#uncount(b.owners[i] as string)
          }
        }
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

const keyEncoder = new TextEncoder()

/** The first 16 bytes of SHA-256(key), as a 16-character one-byte string. */
function digestOf(key: string): string {
  const d = cryptoBackend.sha256(keyEncoder.encode(key))
  return String.fromCharCode(d[0]!, d[1]!, d[2]!, d[3]!, d[4]!, d[5]!, d[6]!, d[7]!, d[8]!, d[9]!, d[10]!, d[11]!, d[12]!, d[13]!, d[14]!, d[15]!)
}
