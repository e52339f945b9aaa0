/**
 * A caller-supplied clock, checked. Every staleness, expiry and cooldown comparison is on its
 * readings, and NaN compares false with everything: a clock answering NaN would make a stale key
 * set or revocation list look fresh forever. So the option must be a function, and a reading that is
 * not a finite number is refused (CONFIG_INVALID) where it is taken, failing the check that needed it.
 */
import { MandateError } from '../errors.js'

/**
 * `now` as a clock whose every reading is a finite number, or `fallback` when `now` is undefined.
 *
 * @throws MandateError CONFIG_INVALID when `now` is not a function (here), or when a reading is not
 * a finite number (at that reading).
 */
export function checkedClock(now: unknown, what: string, fallback: () => number): () => number {
  if (now === undefined) return fallback
  if (typeof now !== 'function') throw new MandateError('CONFIG_INVALID', `${what} must be a function returning a number`)
  const read = now as () => unknown
  return () => {
    const t = read()
    if (typeof t !== 'number' || !Number.isFinite(t)) throw new MandateError('CONFIG_INVALID', `${what} returned something other than a finite number`)
    return t
  }
}
