// kept: is a framework's parse of the arguments the arguments as sent (or a part of them)?
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { keptArguments, snapshotArguments, type JsonValue } from '@mandate/core'

const kept = (parsed: unknown, sent: JsonValue) => keptArguments(parsed, sent) !== undefined

// the argument snapshot refuses some inputs (`__proto__` members, -0, …): only what it accepts is an argument
const json = fc.jsonValue({ maxDepth: 4 }).filter((v) => {
  try {
    snapshotArguments(v)
    return true
  } catch {
    return false
  }
}).map((v) => snapshotArguments(v) as JsonValue)

describe('keptArguments', () => {
  it('a value keeps itself (and a deep copy of itself)', () => {
    fc.assert(fc.property(json, (v) => kept(v, v) && kept(structuredClone(v), v)))
  })
  it('dropping object members keeps; adding or changing one does not', () => {
    const sent = { amount: 5, nested: { a: 1, b: [1, { c: 'x' }] }, note: 'n' }
    expect(kept({ amount: 5 }, sent)).toBe(true)
    expect(kept({ nested: { b: [1, {}] } }, sent)).toBe(true)
    for (const parsed of [
      { amount: 5000 }, { amount: '5' }, { amount: 5, extra: 1 }, { nested: { b: [1] } }, { nested: { b: [1, { c: 'y' }] } },
      { amount: 5, nested: new Map() }, { when: new Date(0) }, [5], null, 'x',
    ]) expect(kept(parsed, sent), JSON.stringify(parsed)).toBe(false)
  })
  it('any changed leaf is caught', () => {
    fc.assert(fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.integer(), { minKeys: 1 }), fc.nat(), (d, i) => {
      const sent = snapshotArguments(d) as Record<string, JsonValue>
      const k = Object.keys(sent)[i % Object.keys(sent).length] as string
      return !kept({ ...sent, [k]: (sent[k] as number) + 1 }, sent)
    }))
  })
  it('the result is rebuilt from what was sent: getters, proxies and holes in the parse cannot change it (review)', () => {
    const sent = { amount: 5, list: [1, 2] } as JsonValue
    let reads = 0
    const getter = { get amount() { return reads++ === 0 ? 5 : 5000 }, list: [1, 2] }
    expect(keptArguments(getter, sent)).toEqual({ amount: 5, list: [1, 2] })
    const proxy = new Proxy({}, { get: () => 5000 })
    expect(keptArguments(proxy, sent)).toEqual({})
    // eslint-disable-next-line no-sparse-arrays
    expect(keptArguments({ list: [, 2] }, sent)).toBeUndefined()
    expect(keptArguments({ list: [1, 2] }, sent)).toEqual({ list: [1, 2] })
  })
})
