/**
 * The current time every verifier compares with. A `now` (or clock) that is not a finite number
 * would switch every time check off (every comparison with NaN is false), so it is refused.
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
