/**
 * Claim matching of federation rules: globMatch against a reference implementation written
 * independently (recursive, over segments, following the documented semantics), pathological
 * patterns in bounded time, and matchClaims' handling of absent, array and non-scalar claims.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { globMatch, matchClaims } from '../src/federation/match.js'

/** Reference: split into segments and separators, match recursively (fine for short inputs). */
function split(s: string): { segs: string[]; seps: string[] } {
  const segs: string[] = []
  const seps: string[] = []
  let cur = ''
  for (const c of s) {
    if (c === '/' || c === ':') {
      segs.push(cur)
      seps.push(c)
      cur = ''
    } else cur += c
  }
  segs.push(cur)
  return { segs, seps }
}

function reference(pattern: string, value: string): boolean {
  const p = split(pattern)
  const v = split(value)
  const P = p.segs.length
  const V = v.segs.length
  // seps[i] is the separator BEFORE segment i+1
  const segOk = (ps: string, vs: string) => (ps === '*' ? vs.length > 0 : ps === vs)
  // m(i, j): pattern segment i starts at value segment j (what precedes both has matched)
  const m = (i: number, j: number): boolean => {
    if (i === P) return j === V
    const ps = p.segs[i] as string
    if (ps !== '**') {
      if (j >= V || !segOk(ps, v.segs[j] as string)) return false
      if (i + 1 === P) return j + 1 === V
      // a trailing `**` may match nothing, together with the separator before it
      if (i + 2 === P && p.segs[i + 1] === '**' && j + 1 === V) return true
      return j + 1 < V && p.seps[i] === v.seps[j] && m(i + 1, j + 1)
    }
    // `**` matching k >= 1 whole segments
    for (let k = 1; j + k <= V; k++) {
      if (i + 1 === P) {
        if (j + k === V) return true
        continue
      }
      if (j + k < V && v.seps[j + k - 1] === p.seps[i] && m(i + 1, j + k)) return true
    }
    // `**` matching nothing: it goes with the separator after it (or, last, the one before it)
    if (i + 1 < P) return m(i + 1, j)
    return false
  }
  return m(0, 0)
}

// `a*` and `*a` are literal (a `*` that is not a whole segment), so values may contain them too
const segment = fc.constantFrom('a', 'b', 'ab', '', '*', '**', 'a*', '*a')
const vsegment = fc.constantFrom('a', 'b', 'ab', '', 'ba', 'a*')
const sep = fc.constantFrom('/', ':')
const joined = (seg: fc.Arbitrary<string>) =>
  fc.tuple(seg, fc.array(fc.tuple(sep, seg), { maxLength: 5 })).map(([h, rest]) => h + rest.map(([s, x]) => s + x).join(''))

describe('globMatch', () => {
  it('agrees with the reference implementation', () => {
    fc.assert(fc.property(joined(segment), joined(vsegment), (pattern, value) => {
      expect(globMatch(pattern, value)).toBe(reference(pattern, value))
    }), { numRuns: 5000 })
  })

  it('agrees when the value is made from the pattern', () => {
    // values close to the pattern hit the interesting cases more often than random ones
    const filled = joined(segment).chain((pattern) => fc.tuple(fc.constant(pattern), fc.array(fc.tuple(sep, vsegment), { maxLength: 4 })).map(([p, extra]) => {
      const v = p.replace(/\*\*/g, extra.map(([s, x]) => `x${s}${x}`).join('') || 'x').replace(/\*/g, 'y')
      return [p, v] as const
    }))
    fc.assert(fc.property(filled, ([pattern, value]) => {
      expect(globMatch(pattern, value)).toBe(reference(pattern, value))
    }), { numRuns: 3000 })
  })

  it.each([
    ['repo:octo-org/octo-repo:ref:refs/heads/main', 'repo:octo-org/octo-repo:ref:refs/heads/main', true],
    ['repo:octo-org/*:ref:refs/heads/main', 'repo:octo-org/octo-repo:ref:refs/heads/main', true],
    ['repo:octo-org/*:ref:refs/heads/main', 'repo:octo-org/a/b:ref:refs/heads/main', false],
    ['repo:octo-org/**', 'repo:octo-org/octo-repo:ref:refs/heads/main', true],
    ['repo:octo-org/**', 'repo:octo-org', true],
    ['repo:octo-org/**', 'repo:octo-orgx/y', false],
    ['refs/heads/*', 'refs/heads/', false],
    ['refs/heads/*', 'refs/heads/feature/x', false],
    ['refs/**/main', 'refs/main', true],
    ['refs/**/main', 'refs/heads/x/main', true],
    ['system:serviceaccount:payments:*', 'system:serviceaccount:payments:billing', true],
    ['system:serviceaccount:payments:*', 'system:serviceaccount:payments/billing', false],
    ['spiffe://trust.example.org/ns/*/sa/billing', 'spiffe://trust.example.org/ns/payments/sa/billing', true],
    ['a*', 'ab', false],
    ['a*', 'a*', true],
    ['**', '', true],
    ['*', '', false],
  ])('%s ~ %s = %s', (pattern, value, expected) => {
    expect(globMatch(pattern, value)).toBe(expected)
  })

  it('separators must match exactly (a "/" in the pattern is not a ":" in the value)', () => {
    expect(globMatch('repo:org/x', 'repo/org:x')).toBe(false)
    expect(globMatch('a/**/b', 'a:b')).toBe(false)
  })

  it('pathological patterns finish fast', () => {
    const value = `${'a/'.repeat(2000)}b`
    const patterns = [
      `${'**/'.repeat(200)}c`,
      `${'*/**/'.repeat(100)}c`,
      `${'**/*/'.repeat(100)}c`,
      `${'*/'.repeat(300)}c`,
    ]
    const started = performance.now()
    for (const p of patterns) expect(globMatch(p, value)).toBe(false)
    expect(globMatch(`${'**/'.repeat(200)}b`, value)).toBe(true)
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('values longer than 4096 characters never match', () => {
    expect(globMatch('**', 'a'.repeat(4097))).toBe(false)
    expect(globMatch('**', 'a'.repeat(4096))).toBe(true)
  })
})

describe('matchClaims', () => {
  const claims = {
    sub: 'repo:octo-org/octo-repo:ref:refs/heads/main', aud: ['https://a.example', 'https://b.example'], run_attempt: 2,
    ref_protected: true, nested: { namespace: 'payments' }, list: ['x'],
  }

  it('all matching: no reasons', () => {
    expect(matchClaims({
      sub: { glob: 'repo:octo-org/*:ref:refs/heads/main' }, aud: { exact: 'https://b.example' }, run_attempt: { oneOf: [1, 2] }, ref_protected: { exact: true },
    }, claims)).toEqual([])
  })

  it('an absent claim is a reason', () => {
    expect(matchClaims({ environment: { exact: 'prod' } }, claims)).toEqual(['claim environment is absent'])
  })

  it('an array claim matches exact only by containing the value', () => {
    expect(matchClaims({ aud: { exact: 'https://c.example' } }, claims)).toHaveLength(1)
    expect(matchClaims({ aud: { glob: '**' } }, claims)).toHaveLength(1)
    expect(matchClaims({ aud: { oneOf: ['https://a.example'] } }, claims)).toHaveLength(1)
  })

  it('non-scalar claims never match, types are not coerced', () => {
    expect(matchClaims({ nested: { exact: 'payments' } }, claims)).toHaveLength(1)
    expect(matchClaims({ run_attempt: { exact: '2' } }, claims)).toHaveLength(1)
    expect(matchClaims({ run_attempt: { glob: '2' } }, claims)).toHaveLength(1)
    expect(matchClaims({ ref_protected: { oneOf: ['true'] } }, claims)).toHaveLength(1)
  })

  it('every failing claim has its own reason, in order', () => {
    const r = matchClaims({ sub: { exact: 'x' }, missing: { exact: 1 }, aud: { exact: 'y' } }, claims)
    expect(r).toHaveLength(3)
    expect(r[0]).toMatch(/^claim sub /)
    expect(r[1]).toBe('claim missing is absent')
    expect(r[2]).toMatch(/^claim aud /)
  })

  it('inherited properties are not claims', () => {
    expect(matchClaims({ constructor: { glob: '**' } }, {})).toEqual(['claim constructor is absent'])
  })
})
