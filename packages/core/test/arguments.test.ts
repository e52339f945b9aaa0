// Tool arguments are taken once (snapshotArguments) and bounded while copied: the digest and the
// tool see the same data, and oversized argument sets are refused before any canonicalization.
import { describe, expect, it } from 'vitest'
import { argumentsDigest, createProof, DEFAULT_ARGUMENT_LIMITS, Ed25519Key, snapshotArguments, MandateError } from '@mandate/core'
import { AUD, expectCode, expectReject, TestAuthority } from './helpers.js'

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

/** Median of several runs of fn, which must throw ARGUMENTS_INVALID each time. */
async function refusalMs(fn: () => unknown): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now()
    let caught: unknown
    try {
      await fn()
    } catch (err) {
      caught = err
    }
    times.push(performance.now() - t0)
    expect(MandateError.is(caught) && caught.code).toBe('ARGUMENTS_INVALID')
  }
  return median(times)
}

describe('snapshotArguments', () => {
  it('copies plain JSON data and digests like the original', () => {
    const args = { path: '/data/x', n: [1, 2.5, -0, true, null, { 'ä€😀': 'x' }], nested: { a: { b: 'c' } }, skip: undefined }
    const snap = snapshotArguments(args)
    expect(snap).toEqual({ path: '/data/x', n: [1, 2.5, 0, true, null, { 'ä€😀': 'x' }], nested: { a: { b: 'c' } } })
    expect(snap).not.toBe(args)
    expect(argumentsDigest(snap)).toBe(argumentsDigest({ path: '/data/x', n: [1, 2.5, 0, true, null, { 'ä€😀': 'x' }], nested: { a: { b: 'c' } } }))
    expect(snapshotArguments(undefined)).toEqual({})
    expect(snapshotArguments(Object.assign(Object.create(null) as object, { a: 1 }))).toEqual({ a: 1 })
    // a member named __proto__, at any depth, is refused: a schema validator or an assignment loop
    // after the guard would set the prototype with it, and the tool would not see what was digested
    for (const text of ['{"__proto__":{"x":1}}', '{"a":{"__proto__":{"mode":"admin"}}}', '{"list":[{"__proto__":1}]}']) {
      expectCode(() => snapshotArguments(JSON.parse(text) as unknown), 'ARGUMENTS_INVALID')
    }
    expect(snapshotArguments({ proto: 1, constructor: 2 })).toEqual({ proto: 1, constructor: 2 })
  })

  it('reads every member exactly once (a getter-free object cannot change between digest and run)', () => {
    let reads = 0
    const p = new Proxy({ a: 1 }, { getOwnPropertyDescriptor(t, k) { reads++; return Reflect.getOwnPropertyDescriptor(t, k) } })
    // a proxy is refused where node:util can detect it (Node); reads stay ≤ 1 either way
    expectCode(() => snapshotArguments({ p }), 'ARGUMENTS_INVALID')
    expect(reads).toBeLessThanOrEqual(1)
  })

  it('refuses what JSON cannot carry exactly', () => {
    class Point { x = 1 }
    let getterCalls = 0
    const getter = Object.defineProperty({}, 'path', { enumerable: true, get: () => (getterCalls++ === 0 ? '/data/ok' : '/etc/passwd') })
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    const sparse = [1, , 3] // eslint-disable-line no-sparse-arrays
    const extra = Object.assign([1, 2], { extra: 1 })
    const hidden = Object.defineProperty({ a: 1 }, 'b', { value: 2, enumerable: false })
    const cases: [string, unknown][] = [
      ['toJSON', { toJSON: () => ({ path: '/data/ok' }) }],
      ['nested toJSON', { a: { toJSON: () => 1 } }],
      ['getter', getter],
      ['proxy', new Proxy({ path: '/data/x' }, {})],
      ['class instance', { p: new Point() }],
      ['Date', { d: new Date(0) }],
      ['Map', { m: new Map() }],
      ['Uint8Array', { b: new Uint8Array(2) }],
      ['function', { f: () => 1 }],
      ['symbol value', { s: Symbol('x') }],
      ['symbol key', { [Symbol('k')]: 1 }],
      ['bigint', { n: 1n }],
      ['NaN', { n: NaN }],
      ['Infinity', { n: [Infinity] }],
      ['lone surrogate value', { s: 'a\ud800' }],
      ['lone surrogate key', { ['\udc00']: 1 }],
      ['cycle', cyclic],
      ['sparse array', { a: sparse }],
      ['array with extra member', { a: extra }],
      ['non-enumerable member', hidden],
      ['undefined in array', { a: [undefined] }],
      ['top-level function', () => 1],
    ]
    for (const [name, v] of cases) {
      let caught: unknown
      try {
        snapshotArguments(v)
      } catch (err) {
        caught = err
      }
      expect(MandateError.is(caught) && caught.code, name).toBe('ARGUMENTS_INVALID')
    }
    expect(getterCalls).toBe(0) // the getter was never invoked
    expectCode(() => argumentsDigest({ toJSON: () => ({}) }), 'ARGUMENTS_INVALID')
  })

  it('applies each limit while copying, naming it in the detail', () => {
    const at = (v: unknown, limits = {}) => expectCode(() => snapshotArguments(v, limits), 'ARGUMENTS_INVALID').detail?.limit
    expect(at({ s: 'x'.repeat(DEFAULT_ARGUMENT_LIMITS.maxBytes) })).toBe('maxBytes')
    expect(at(Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`k${i}`, i])))).toBe('maxMembers')
    expect(at({ a: Array.from({ length: 257 }, () => 0) })).toBe('maxArray')
    let deep: unknown = {}
    for (let i = 0; i < 24; i++) deep = { d: deep }
    expect(at(deep)).toBe('maxDepth') // 25 levels
    expect(at({ s: 'x'.repeat(20) }, { maxBytes: 16 })).toBe('maxBytes')
    // at the limits: accepted
    expect(() => snapshotArguments(Object.fromEntries(Array.from({ length: 128 }, (_, i) => [`k${i}`, i])))).not.toThrow()
    expect(() => snapshotArguments({ a: Array.from({ length: 256 }, () => 0) })).not.toThrow()
    let ok: unknown = {}
    for (let i = 0; i < 23; i++) ok = { d: ok }
    expect(() => snapshotArguments(ok)).not.toThrow()
    // exact byte accounting: the serialised JSON of {"s":"…"} is 8 + n bytes (UTF-8)
    const max = DEFAULT_ARGUMENT_LIMITS.maxBytes
    expect(() => snapshotArguments({ s: 'x'.repeat(max - 8) })).not.toThrow()
    expect(at({ s: 'x'.repeat(max - 7) })).toBe('maxBytes')
    expect(() => snapshotArguments({ s: '€'.repeat(Math.floor((max - 8) / 3)) })).not.toThrow()
    expect(at({ s: '€'.repeat(Math.floor((max - 8) / 3) + 1) })).toBe('maxBytes')
    // bad limits are a configuration error
    expectCode(() => snapshotArguments({}, { maxBytes: 0 }), 'CONFIG_INVALID')
  })

  it('~1 MB / 100,000-member arguments are refused within a few ms (before any canonicalization)', async () => {
    const wide = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`member${i}`, 'v']))
    const long = Array.from({ length: 100_000 }, (_, i) => `item-${i}`)
    const blob = { blob: 'x'.repeat(1 << 20) }
    const auth = new TestAuthority()
    const agent = Ed25519Key.generate()
    const root = auth.root(agent)
    const guard = auth.guard()
    const proof = createProof(agent, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: {} })
    // Before the fix these cost ~90 ms (wide), ~30 ms (long) and ~10 ms (blob) on a loaded machine,
    // all in canonicalization; now long and blob are refused in well under 1 ms.
    for (const [name, args] of [['long', { long }], ['blob', blob]] as const) {
      expect(await refusalMs(() => argumentsDigest(args)), name).toBeLessThan(20)
      expect(await refusalMs(() => guard.verifyToolCall({ mandate: root.token, proof, tool: 'files.read', arguments: args })), name).toBeLessThan(20)
    }
    // Merely listing a 100,000-member object's keys is V8's floor (5-50 ms depending on load), so
    // the wide case is measured against that floor, interleaved: the old sort-and-serialise path
    // took ~6× the floor, the snapshot takes about 1×.
    const floor: number[] = []
    const digest: number[] = []
    const guarded: number[] = []
    for (let i = 0; i < 7; i++) {
      let t0 = performance.now()
      expect(Object.keys(wide).length).toBe(100_000)
      floor.push(performance.now() - t0)
      t0 = performance.now()
      expectCode(() => argumentsDigest(wide), 'ARGUMENTS_INVALID')
      digest.push(performance.now() - t0)
      t0 = performance.now()
      await expectReject(guard.verifyToolCall({ mandate: root.token, proof, tool: 'files.read', arguments: wide }), 'ARGUMENTS_INVALID')
      guarded.push(performance.now() - t0)
    }
    expect(median(digest)).toBeLessThan(3 * median(floor) + 5)
    expect(median(guarded)).toBeLessThan(3 * median(floor) + 5)
  })

  it('the guard digests and returns the snapshot it verified', async () => {
    const auth = new TestAuthority()
    const agent = Ed25519Key.generate()
    const root = auth.root(agent)
    const guard = auth.guard()
    const args = { path: '/data/x', amount: 1 }
    const v = await guard.verifyToolCall({ mandate: root.token, proof: createProof(agent, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: args }), tool: 'files.read', arguments: args })
    expect(v.arguments).toEqual(args)
    expect(v.arguments).not.toBe(args)
    expect(v.argumentsDigest).toBe(argumentsDigest(args))
    // a getter that would pass the constraint once and then answer differently is refused
    let n = 0
    const sneaky = Object.defineProperty({ amount: 1 }, 'path', { enumerable: true, get: () => (n++ === 0 ? '/data/x' : '/etc/passwd') })
    await expectReject(guard.verifyToolCall({ mandate: root.token, proof: createProof(agent, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: args }), tool: 'files.read', arguments: sneaky }), 'ARGUMENTS_INVALID')
  })
})
