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
