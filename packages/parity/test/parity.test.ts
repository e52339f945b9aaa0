import { afterEach, describe, expect, it } from 'vitest'
import { findLeaks } from '../src/driver.js'
import { DRIVERS, PENDING_DRIVERS } from '../src/drivers/index.js'
import { SCENARIOS } from '../src/scenarios.js'
import { createWorld, type World } from '../src/world.js'

let worlds: World[] = []
afterEach(async () => {
  for (const w of worlds) await w.close()
  worlds = []
})

describe.each(DRIVERS.map((d) => ({ ...d, name: d.driver.name })))('$name', ({ driver, gaps }) => {
  for (const s of SCENARIOS) {
    const gap = gaps?.[s.id]
    const body = async () => {
      const world = await createWorld(s.policy ? { policy: s.policy } : {})
      worlds.push(world)
      await s.run({ world, driver })
    }
    if (gap) it.fails(`${s.id}: ${s.title} [KNOWN GAP: ${gap}]`, body, 20_000)
    else it(`${s.id}: ${s.title}`, body, 20_000)
  }
})

describe.each(PENDING_DRIVERS)('$name', ({ reason }) => {
  for (const s of SCENARIOS) it.skip(`${s.id}: ${s.title} [NOT RUN: ${reason}]`, () => {})
})

describe('the leak scan itself', () => {
  it('finds a planted token, its signature, a JWS shape and a DPoP header value', () => {
    const token = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl'
    expect(findLeaks(['clean', `x ${token} y`], [token])).toHaveLength(1)
    expect(findLeaks(['sig c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl'], [token])).toHaveLength(1)
    expect(findLeaks(['eyJfoo.eyJbar.'], [])).toHaveLength(1)
    expect(findLeaks(['Authorization: DPoP abcdefghijklmnopqrstuvwxyz'], [])).toHaveLength(1)
    expect(findLeaks(['nothing here'], [token])).toEqual([])
  })
})
