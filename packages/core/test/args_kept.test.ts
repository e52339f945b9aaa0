// argumentsKept: is a framework's parse of the arguments the arguments as sent (or a part of them)?
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { argumentsKept, snapshotArguments, type JsonValue } from '@mandate/core'

// the argument snapshot refuses some inputs (`__proto__` members, -0, …): only what it accepts is an argument
const json = fc.jsonValue({ maxDepth: 4 }).filter((v) => {
  try {
    snapshotArguments(v)
    return true
  } catch {
    return false
  }
}).map((v) => snapshotArguments(v) as JsonValue)

describe('argumentsKept', () => {
  it('a value keeps itself (and a deep copy of itself)', () => {
    fc.assert(fc.property(json, (v) => argumentsKept(v, v) && argumentsKept(structuredClone(v), v)))
  })
  it('dropping object members keeps; adding or changing one does not', () => {
    const sent = { amount: 5, nested: { a: 1, b: [1, { c: 'x' }] }, note: 'n' }
    expect(argumentsKept({ amount: 5 }, sent)).toBe(true)
    expect(argumentsKept({ nested: { b: [1, {}] } }, sent)).toBe(true)
    for (const parsed of [
      { amount: 5000 }, { amount: '5' }, { amount: 5, extra: 1 }, { nested: { b: [1] } }, { nested: { b: [1, { c: 'y' }] } },
      { amount: 5, nested: new Map() }, { when: new Date(0) }, [5], null, 'x',
    ]) expect(argumentsKept(parsed, sent), JSON.stringify(parsed)).toBe(false)
  })
  it('any changed leaf is caught', () => {
    fc.assert(fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 4 }), fc.integer(), { minKeys: 1 }), fc.nat(), (d, i) => {
      const sent = snapshotArguments(d) as Record<string, JsonValue>
      const k = Object.keys(sent)[i % Object.keys(sent).length] as string
      return !argumentsKept({ ...sent, [k]: (sent[k] as number) + 1 }, sent)
    }))
  })
})
