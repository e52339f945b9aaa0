/**
 * Remembers single-use identifiers (proof `jti`s, call credential `jti`s) until they expire. Guards
 * that share one store (e.g. one Redis or Postgres) share single use across instances.
 */
import { MandateError } from '../errors.js'

export interface ReplayStore {
  /**
   * Mark `key` used until `expiresAt` (seconds), inclusive: the key stays used through that whole
   * second, since verifiers accept a proof or credential in the very second its window ends.
   * Resolve true if it was unused, false if it was already used. Must be atomic across every guard
   * sharing the store.
   */
  use(key: string, expiresAt: number): boolean | Promise<boolean>
}

/**
 * A replay store's answer to `use`: it must be a boolean. Anything else (a string "false", undefined
 * from a store missing its return) is a broken store, refused like an unreachable one, never a first use.
 *
 * @throws MandateError REPLAY_STORE_UNAVAILABLE
 */
export function replayAnswer(answer: unknown): boolean {
  if (typeof answer !== 'boolean') throw new MandateError('REPLAY_STORE_UNAVAILABLE', 'the replay store gave no yes/no answer; single-use credentials are refused')
  return answer
}

export interface MemoryReplayStoreOptions {
  /** Maximum remembered keys. When full, new keys are refused (fail closed) until some expire. */
  maxEntries?: number
  now?: () => number
}

/** Bounded in-memory replay store for one process. */
export class MemoryReplayStore implements ReplayStore {
  readonly #entries = new Map<string, number>()
  readonly #max: number
  readonly #now: () => number
  /** Earliest expiry among the entries kept by the last sweep: sweeping earlier frees nothing. */
  #earliest = -Infinity

  constructor(options: MemoryReplayStoreOptions = {}) {
    this.#max = options.maxEntries ?? 100_000
    // NaN would never compare as full: the store would grow without bound
    if (!Number.isSafeInteger(this.#max) || this.#max < 1) throw new MandateError('CONFIG_INVALID', 'maxEntries must be a positive integer')
    if (options.now !== undefined && typeof options.now !== 'function') throw new MandateError('CONFIG_INVALID', 'MemoryReplayStore now must be a function returning seconds')
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000))
  }

  get size(): number {
    return this.#entries.size
  }

  use(key: string, expiresAt: number): boolean {
    // NaN or undefined would be stored as an entry that is never "still used": the key reusable at once
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) throw new MandateError('CONFIG_INVALID', 'expiresAt must be a finite number of seconds')
    const now = this.#now()
    // a clock answering NaN would make every entry look unused: refuse instead
    if (typeof now !== 'number' || !Number.isFinite(now)) return false
    const seen = this.#entries.get(key)
    // used through its expiry second (inclusive), the second a proof is last accepted in
    if (seen !== undefined && seen >= now) return false
    // a full store of live entries is swept only once something can have expired, so refusing
    // while full costs O(1) rather than a scan of every entry per call
    if (this.#entries.size >= this.#max && now > this.#earliest) this.#sweep(now)
    // still full of live entries: refusing is safer than forgetting one
    if (this.#entries.size >= this.#max) return false
    // an expiry already past is held through the current second, as the shared stores hold it for
    // at least a second: a second use right away is still a replay
    const until = Math.max(expiresAt, now)
    this.#entries.set(key, until)
    if (until < this.#earliest) this.#earliest = until
    return true
  }

  #sweep(now: number): void {
    let earliest = Infinity
    for (const [k, exp] of this.#entries) {
      if (exp < now) this.#entries.delete(k)
      else if (exp < earliest) earliest = exp
    }
    this.#earliest = earliest
  }
}
