/**
 * The current time every verifier compares with. A `now` (or clock) that is not a finite number
 * would switch every time check off (every comparison with NaN is false), so it is refused — a
 * given time at once, a given clock at each reading (a stale key set or revocation list would
 * otherwise look fresh for ever).
 */
import { MandateError } from '../errors.js'

/** Seconds since the epoch. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000)
}

/** CONFIG_INVALID for a current time that is not a finite number (a broken clock option). */
export function badClock(): MandateError {
  return new MandateError('CONFIG_INVALID', 'the current time (now / clock) must be a finite number')
}

/** `now` as given, or the wall clock; CONFIG_INVALID when a given one is not a finite number. */
export function checkedNow(now: unknown): number {
  if (now === undefined) return nowSeconds()
  if (typeof now !== 'number' || !Number.isFinite(now)) throw badClock()
  return now
}

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
