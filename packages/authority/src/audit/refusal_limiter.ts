import { MandateError } from '@mandate/core'
/**
 * Bounds the audit records that refusals of unauthenticated requests can write. Without a bound,
 * anyone who can reach the token endpoint could grow the log by one record per request (with
 * SQLite FULL, one fsync each). A token bucket: refusals over it are not written but counted, and
 * the count rides on the next refusal record that is (`suppressed`). Refusals of authenticated
 * principals are attributable and always written.
 */
export class RefusalAuditLimiter {
  #tokens: number
  #last: number
  #suppressed = 0

  constructor(
    readonly burst: number,
    readonly perSecond: number,
    private readonly now: () => number,
  ) {
    if (!Number.isFinite(burst) || burst < 1 || !Number.isFinite(perSecond) || perSecond < 0) throw new MandateError('CONFIG_INVALID', 'refusal audit limits must be finite, burst >= 1, perSecond >= 0')
    this.#tokens = burst
    this.#last = now()
  }

  /** undefined: do not write this record; otherwise how many were suppressed since the last one written. */
  take(): number | undefined {
    const t = this.now()
    // a clock that steps back refills nothing
    this.#tokens = Math.min(this.burst, this.#tokens + (Math.max(0, t - this.#last) / 1000) * this.perSecond)
    this.#last = Math.max(this.#last, t)
    if (this.#tokens < 1) {
      this.#suppressed++
      return undefined
    }
    this.#tokens -= 1
    const suppressed = this.#suppressed
    this.#suppressed = 0
    return suppressed
  }
}

/**
 * A token bucket per key (an agent's did), for records an authenticated principal can write at its
 * own rate. Bounded: past `maxKeys` the least recently used bucket is dropped (a dropped key starts
 * again with a full burst, which bounds memory, not the rate of any one key between evictions).
 */
export class PerKeyLimiter {
  readonly #buckets = new Map<string, RefusalAuditLimiter>()

  constructor(
    readonly burst: number,
    readonly perSecond: number,
    private readonly now: () => number,
    readonly maxKeys = 10_000,
  ) {}

  /** true: write this record (a token was taken); false: over the limit. */
  take(key: string): boolean {
    let bucket = this.#buckets.get(key)
    if (bucket) this.#buckets.delete(key)
    else {
      bucket = new RefusalAuditLimiter(this.burst, this.perSecond, this.now)
      if (this.#buckets.size >= this.maxKeys) this.#buckets.delete(this.#buckets.keys().next().value as string)
    }
    this.#buckets.set(key, bucket)
    return bucket.take() !== undefined
  }
}
