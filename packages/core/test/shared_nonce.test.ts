// Shared DPoP nonces: stateless HMAC(secret, window), accepted by every instance sharing the secret.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createNonceSource, createSharedNonceSource, MandateError } from '@mandate/core'

const SECRET = 'k'.repeat(32)

function clock(start = 1_800_000_000_000) {
  let t = start
  return { now: () => t, set: (ms: number) => void (t = ms), advance: (ms: number) => void (t += ms) }
}

describe('createSharedNonceSource', () => {
  it('two instances with one secret accept each other’s nonces (random per-process nonces do not)', () => {
    const c = clock()
    const a = createSharedNonceSource({ secret: SECRET, now: c.now })
    const b = createSharedNonceSource({ secret: SECRET, now: c.now })
    expect(a.current()).toBe(b.current())
    expect(b.check(a.current())).toBe(true)
    expect(a.check(b.current())).toBe(true)
    // the per-process source this replaces: instance B refuses A's nonce
    const pa = createNonceSource({ now: c.now })
    const pb = createNonceSource({ now: c.now })
    expect(pb.check(pa.current())).toBe(false)
  })

  it('accepts the current and the previous window, not older; the next only within the skew', () => {
    const c = clock(1_800_000_000_000 - (1_800_000_000_000 % 60_000)) // start of a window
    const s = createSharedNonceSource({ secret: SECRET, rotateEverySeconds: 60, skewSeconds: 5, now: c.now })
    const n0 = s.current()
    c.advance(59_000)
    expect(s.current()).toBe(n0)
    c.advance(1_000) // next window
    const n1 = s.current()
    expect(n1).not.toBe(n0)
    expect(s.check(n0)).toBe(true) // previous
    c.advance(60_000)
    expect(s.check(n0)).toBe(false) // two windows old
    expect(s.check(n1)).toBe(true)
    // an instance whose clock runs ahead already issues the next window's nonce
    const ahead = createSharedNonceSource({ secret: SECRET, rotateEverySeconds: 60, now: () => c.now() + 60_000 })
    c.advance(56_000) // 4 s before the next window
    expect(s.check(ahead.current())).toBe(true)
    c.advance(-2_000) // 6 s before: beyond the skew
    expect(s.check(ahead.current())).toBe(false)
  })

  it('a different secret or context refuses; a rotation list accepts the old secret and issues with the new', () => {
    const c = clock()
    const old = createSharedNonceSource({ secret: SECRET, now: c.now })
    expect(createSharedNonceSource({ secret: 'z'.repeat(32), now: c.now }).check(old.current())).toBe(false)
    expect(createSharedNonceSource({ secret: SECRET, context: 'guard:https://tools.example', now: c.now }).check(old.current())).toBe(false)
    const rotating = createSharedNonceSource({ secret: ['n'.repeat(32), SECRET], now: c.now })
    expect(rotating.check(old.current())).toBe(true)
    expect(rotating.current()).not.toBe(old.current())
    expect(old.check(rotating.current())).toBe(false)
  })

  it('never accepts anything but a nonce it would issue (property)', () => {
    const c = clock()
    const s = createSharedNonceSource({ secret: new Uint8Array(32).fill(7), now: c.now })
    const valid = new Set([s.current()])
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ minLength: 24, maxLength: 24 }), fc.base64String({ minLength: 24, maxLength: 24 })), (n) => {
        expect(s.check(n)).toBe(valid.has(n))
      }),
    )
    expect(s.check(undefined)).toBe(false)
  })

  it('refuses weak or malformed configuration', () => {
    expect(() => createSharedNonceSource({ secret: 'short' })).toThrow(MandateError)
    expect(() => createSharedNonceSource({ secret: [] })).toThrow(MandateError)
    expect(() => createSharedNonceSource({ secret: SECRET, rotateEverySeconds: 0 })).toThrow(MandateError)
    expect(() => createSharedNonceSource({ secret: SECRET, skewSeconds: 120 })).toThrow(MandateError)
    expect(() => createSharedNonceSource({ secret: 42 as never })).toThrow(MandateError)
  })
})
