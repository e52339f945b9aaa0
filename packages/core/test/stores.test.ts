// The in-memory replay store when full: refuses (fails closed) without rescanning every entry per
// call, and frees space exactly when entries expire.
import { describe, expect, it } from 'vitest'
import { MemoryReplayStore } from '@mandate/core'

describe('MemoryReplayStore when full', () => {
  it('refuses while every entry is live, accepts again once the earliest expires', () => {
    let now = 1_000
    const store = new MemoryReplayStore({ maxEntries: 3, now: () => now })
    expect(store.use('a', 1_010)).toBe(true)
    expect(store.use('b', 1_020)).toBe(true)
    expect(store.use('c', 1_030)).toBe(true)
    expect(store.use('d', 1_040)).toBe(false) // full of live entries
    expect(store.use('a', 1_050)).toBe(false) // still a replay
    now = 1_010
    expect(store.use('d', 1_040)).toBe(false) // a is used through its expiry second (inclusive)
    expect(store.use('a', 1_050)).toBe(false)
    now = 1_011
    expect(store.use('d', 1_040)).toBe(true) // a expired: its slot is reused
    expect(store.use('e', 1_040)).toBe(false)
    now = 1_021
    expect(store.use('e', 1_040)).toBe(true)
    expect(store.size).toBe(3)
  })
  it('an entry added after a sweep with an earlier expiry is freed on time', () => {
    let now = 0
    const store = new MemoryReplayStore({ maxEntries: 2, now: () => now })
    store.use('a', 100)
    store.use('b', 100)
    expect(store.use('c', 100)).toBe(false) // sweep: earliest live expiry 100
    now = 101
    expect(store.use('c', 200)).toBe(true) // a and b swept
    expect(store.use('short', 150)).toBe(true)
    expect(store.use('x', 300)).toBe(false)
    now = 151
    expect(store.use('x', 300)).toBe(true) // 'short' expired after 150, even though the last sweep saw 200 as earliest
  })
  it('a key is used through its expiry second, the last second a verifier accepts it in', () => {
    let now = 0
    const store = new MemoryReplayStore({ now: () => now })
    expect(store.use('k', 90)).toBe(true)
    for (now = 1; now <= 90; now++) expect(store.use('k', 90), `second ${now}`).toBe(false)
    expect(store.use('k', 200)).toBe(true)
  })
  it('a clock answering NaN refuses (fails closed) rather than treating every key as unused', () => {
    const store = new MemoryReplayStore({ now: () => Number.NaN })
    expect(store.use('k', 90)).toBe(false)
  })
})
