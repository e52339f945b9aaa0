import { MandateError } from '../errors.js'
import { checkedClock } from '../mandate/clock.js'
import { randomId } from '../mandate/ids.js'

/** Server-provided DPoP nonces (RFC 9449 §8/§9): the current one, and whether a presented one is fresh. */
export interface NonceSource {
  current(): string
  check(nonce: string | undefined): boolean
}

/** Rotating random nonces: the current and the previous one are accepted. */
export function createNonceSource(options: { rotateEverySeconds?: number; now?: () => number } = {}): NonceSource {
  const every = options.rotateEverySeconds ?? 60
  // NaN or a negative period would rotate never or on every check
  if (typeof every !== 'number' || !Number.isFinite(every) || every <= 0) throw new MandateError('CONFIG_INVALID', 'rotateEverySeconds must be a positive number')
  const period = every * 1000
  const now = checkedClock(options.now, 'createNonceSource now', Date.now)
  let current = randomId()
  let previous = current
  let rotatedAt = now()
  const rotate = () => {
    if (now() - rotatedAt >= period) {
      previous = current
      current = randomId()
      rotatedAt = now()
    }
  }
  return {
    current() {
      rotate()
      return current
    },
    check(nonce) {
      rotate()
      return nonce !== undefined && (nonce === current || nonce === previous)
    },
  }
}
