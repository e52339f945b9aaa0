import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { argumentsDigest, MandateError, parseStrictJson } from '../src/index.js'

// RFC 7493 §2.2 / RFC 8785 §3.2.2.3: a number literal that a double cannot hold exactly reads the
// same as another literal, so anything bound to the parsed value (an argument digest, a signature)
// would bind both texts while an exact reader (Python, Go json.Number, BigDecimal) tells them apart.
const refused = (text: string) => {
  try {
    parseStrictJson(text)
  } catch (err) {
    return MandateError.is(err) && err.code === 'TOKEN_MALFORMED' && (err.detail as { limit?: string } | undefined)?.limit === 'number'
  }
  return false
}

describe('strict JSON numbers', () => {
  it('refuses a literal that is not exactly the double it reads as', () => {
    for (const t of ['9007199254740993', '-9007199254740993', '500.00000000000001', '123456789012345678', '1e-400', '4.9e-324', '0.1000000000000000055511151231257827']) {
      expect(refused(`{"a":${t}}`), t).toBe(true)
      expect(refused(`[${t}]`), t).toBe(true)
    }
  })

  it('accepts exact literals in any notation, and leaves non-finite ones to range checks', () => {
    for (const [t, v] of [['9007199254740992', 2 ** 53], ['500', 500], ['500.000', 500], ['1.50', 1.5], ['1E2', 100], ['-0', -0], ['0.1', 0.1], ['5e-324', 5e-324], ['1.7976931348623157e308', Number.MAX_VALUE], ['0.30000000000000004', 0.1 + 0.2], ['1733333333', 1733333333], ['-3.25e-2', -0.0325]] as const) {
      expect(parseStrictJson(`{"a":${t}}`), t).toEqual({ a: v })
    }
    expect(parseStrictJson('{"a":1e400}')).toEqual({ a: Infinity })
  })

  it('two tool_arguments texts that read as one value cannot both be digested', () => {
    const one = '{"invoice":9007199254740992}'
    const two = '{"invoice":9007199254740993}'
    expect(argumentsDigest(parseStrictJson(one))).toBe(argumentsDigest(JSON.parse(two)))
    expect(refused(two)).toBe(true)
  })

  it('every double in its shortest form is accepted and reads back as itself', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => {
        const text = JSON.stringify([d])
        expect(parseStrictJson(text)).toEqual([Object.is(d, -0) ? 0 : d])
      }),
      { numRuns: 2000 },
    )
  })

  it('a long integer literal is accepted exactly when it is the shortest form of its double', () => {
    // the double's shortest round-trip text (String(d): digits, or d.ddde+N) written out in full
    const expand = (s: string): bigint => {
      const m = /^(-?)(\d+)(?:\.(\d+))?(?:e\+?(\d+))?$/.exec(s) as RegExpExecArray
      const frac = m[3] ?? ''
      return BigInt(`${m[1] as string}${m[2] as string}${frac}${'0'.repeat(Number(m[4] ?? 0) - frac.length)}`)
    }
    fc.assert(
      fc.property(fc.stringMatching(/^[1-9][0-9]{15,30}$/), fc.boolean(), (digits, negative) => {
        const literal = `${negative ? '-' : ''}${digits}`
        const exact = expand(String(Number(literal))) === BigInt(literal)
        expect(refused(`[${literal}]`)).toBe(!exact)
      }),
      { numRuns: 1000 },
    )
  })
})
