// The guard's fast paths give exactly the answers of the reference implementations they replace:
// canonical JSON (vs the `canonicalize` package), strict base64url and UTF-8 decoding on Node's
// SIMD decoders (vs the pure-JS rules), and the one-step token hash (vs SHA-256 of UTF-8 bytes).
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { base64urlnopad } from '@scure/base'
import { sha256 } from '@noble/hashes/sha2.js'
import { b64uDecode, MandateError, snapshotArguments, tokenHash } from '@mandate/core'
import { canonicalizeReference, canonicalSnapshot, digestOfSnapshot } from '../src/mandate/args_digest.js'
import { utf8Decode } from '../src/encoding/base64url.js'
import { availableBackends } from '../src/crypto/backend.js'
import { hasSmallOrderR } from '../src/identity/point.js'

const json = fc.jsonValue({ maxDepth: 4 })
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

describe('canonical JSON of a snapshot', () => {
  it('equals the canonicalize package on random JSON (unicode keys and strings, numbers, nesting)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'grapheme' }), json, { maxKeys: 8 }), (v) => {
        // a member named __proto__ is refused by the snapshot (arguments.test.ts)
        fc.pre(!JSON.stringify(v).includes('"__proto__"'))
        const snap = snapshotArguments(v)
        expect(canonicalSnapshot(snap)).toBe(canonicalizeReference(snap))
      }),
      { numRuns: 500 },
    )
  })
  it('sorts integer-like member names by UTF-16 code units, as RFC 8785 does', () => {
    const v = snapshotArguments(JSON.parse('{"10":1,"2":2,"1":3,"_p":{"b":1,"a":[1e21,-0,0.1]},"é":4,"😀":5,"\uffff":6}'))
    expect(canonicalSnapshot(v)).toBe(canonicalizeReference(v))
    expect(canonicalSnapshot(v)).toBe('{"1":3,"10":1,"2":2,"_p":{"a":[1e+21,0,0.1],"b":1},"é":4,"😀":5,"\uffff":6}')
  })
  it('the digest is base64url(SHA-256(canonical JSON))', () => {
    const v = snapshotArguments({ b: 'x', a: [1, 2] })
    expect(digestOfSnapshot(v)).toBe(base64urlnopad.encode(sha256(new TextEncoder().encode('{"a":[1,2],"b":"x"}'))))
  })
})

describe('strict base64url on the fast decoder', () => {
  const strictRef = (s: string): Uint8Array | 'refused' => {
    if (s.length % 4 === 1 || !/^[A-Za-z0-9_-]*$/.test(s)) return 'refused'
    try {
      const out = base64urlnopad.decode(s)
      return base64urlnopad.encode(out) === s ? out : 'refused'
    } catch {
      return 'refused'
    }
  }
  const attempt = (s: string): Uint8Array | 'refused' => {
    try {
      return b64uDecode(s)
    } catch (err) {
      expect(MandateError.is(err)).toBe(true)
      return 'refused'
    }
  }
  it('agrees with the reference on random strings over the base64 alphabets, padding and junk', () => {
    const ch = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .\n%\u00e9'.split(''))
    fc.assert(
      fc.property(fc.array(ch, { maxLength: 24 }).map((a) => a.join('')), (s) => {
        const a = attempt(s)
        const b = strictRef(s)
        if (b === 'refused') expect(a).toBe('refused')
        else expect(Array.from(a as Uint8Array)).toEqual(Array.from(b))
      }),
      { numRuns: 3000 },
    )
  })
  it('refuses the standard alphabet, padding and non-zero trailing bits', () => {
    for (const s of ['ab+/', 'ab==', 'YQ=', 'YR', 'YQ', 'a b'].slice(0, 6)) {
      const expected = strictRef(s)
      expect(attempt(s) === 'refused').toBe(expected === 'refused')
    }
    expect(attempt('YR')).toBe('refused') // 'a' with a stray low bit
  })
})

describe('UTF-8 decoding on the fast validator', () => {
  it('agrees with a fatal TextDecoder on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
        let ref: string | 'refused'
        try {
          ref = fatal.decode(bytes)
        } catch {
          ref = 'refused'
        }
        let got: string | 'refused'
        try {
          got = utf8Decode(bytes)
        } catch {
          got = 'refused'
        }
        expect(got).toBe(ref)
      }),
      { numRuns: 5000 },
    )
  })
  it('refuses surrogates, overlongs and truncation; keeps a BOM', () => {
    for (const b of [[0xed, 0xa0, 0x80], [0xc0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]]) expect(() => utf8Decode(Uint8Array.from(b))).toThrow()
    expect(utf8Decode(Uint8Array.from([0xef, 0xbb, 0xbf, 0x41]))).toBe('\ufeffA')
  })
})

describe('token hash in one step', () => {
  it('equals base64url(SHA-256(UTF-8)) on every backend, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const ref = base64urlnopad.encode(sha256(new TextEncoder().encode(s)))
        expect(tokenHash(s)).toBe(ref)
        for (const be of availableBackends()) expect(be.sha256Base64url(s)).toBe(ref)
      }),
      { numRuns: 500 },
    )
  })
})

describe('base64url straight to text (the JWS header and payload path)', () => {
  it('agrees with b64uDecode + utf8Decode on random input, refusals included', async () => {
    const { b64uDecodeText } = await import('../src/encoding/base64url.js')
    const ch = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .'.split(''))
    const outcome = (f: () => string) => {
      try {
        return f()
      } catch (err) {
        return `refused:${(err as MandateError).code}`
      }
    }
    const strings = fc.oneof(
      fc.array(ch, { maxLength: 24 }).map((a) => a.join('')),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64url')),
      fc.string({ unit: 'grapheme' }).map((s) => Buffer.from(s).toString('base64url')),
    )
    fc.assert(
      fc.property(strings, (s) => {
        expect(outcome(() => b64uDecodeText(s))).toBe(outcome(() => utf8Decode(b64uDecode(s))))
      }),
      { numRuns: 3000 },
    )
    // larger than the scratch buffer's first size, and reuse after a shorter value
    const big = Buffer.from('é'.repeat(20_000)).toString('base64url')
    expect(b64uDecodeText(big)).toBe('é'.repeat(20_000))
    expect(b64uDecodeText('YQ')).toBe('a')
  })

  it('refuses every kind of invalid UTF-8 and keeps a real U+FFFD (the text is checked strictly only when it holds one)', async () => {
    const { b64uDecodeText } = await import('../src/encoding/base64url.js')
    const b = (...x: number[]) => Buffer.from([0x7b, ...x, 0x7d]).toString('base64url')
    for (const bad of [[0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x80], [0xff], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      expect(() => b64uDecodeText(b(...bad)), bad.join(',')).toThrow(expect.objectContaining({ code: 'INVALID_UTF8' }))
    }
    expect(b64uDecodeText(b(0xef, 0xbf, 0xbd))).toBe('{\uFFFD}')
    // a real U+FFFD does not let a bad sequence after it through
    expect(() => b64uDecodeText(b(0xef, 0xbf, 0xbd, 0xed, 0xa0, 0x80))).toThrow(expect.objectContaining({ code: 'INVALID_UTF8' }))
  })
})

describe('JWS signature segment (86-character fast path)', () => {
  it('accepts and refuses exactly what the general strict decoder does', async () => {
    const { parseCompactJws } = await import('../src/jws/compact.js')
    const head = `${Buffer.from('{"alg":"Ed25519","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"a":1}').toString('base64url')}`
    const policy = { typ: 'JWT', maxLength: 4096 }
    const outcome = (sig: string) => {
      try {
        return Buffer.from(parseCompactJws(`${head}.${sig}`, policy).signature).toString('hex')
      } catch (err) {
        return `refused:${(err as MandateError).code}`
      }
    }
    const reference = (sig: string) => {
      let bytes: Uint8Array
      try {
        bytes = b64uDecode(sig)
      } catch {
        return 'refused:TOKEN_MALFORMED'
      }
      if (bytes.length !== 64) return 'refused:SIGNATURE_INVALID'
      // independent of the code under test: the small-order R check itself, on the strictly decoded bytes
      return hasSmallOrderR(bytes) ? 'refused:SIGNATURE_INVALID' : Buffer.from(bytes).toString('hex')
    }
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    // R = the identity point (a small-order point, refused): the refusal branch is exercised, not left to chance
    const identity = new Uint8Array(32)
    identity[0] = 1
    const sigs = fc.oneof(
      fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b).toString('base64url')),
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((sPart) => Buffer.concat([identity, sPart]).toString('base64url')),
      // 86 characters of the alphabet (any last character: most are not canonical) or with a stray one
      fc.array(fc.constantFrom(...alphabet.split('')), { minLength: 86, maxLength: 86 }).map((a) => a.join('')),
      fc.tuple(fc.array(fc.constantFrom(...alphabet.split('')), { minLength: 85, maxLength: 85 }), fc.constantFrom('+', '/', '=', ' ', '.', 'é', 'A')).map(([a, c]) => a.join('') + c),
      fc.array(fc.constantFrom(...alphabet.split('')), { minLength: 84, maxLength: 88 }).map((a) => a.join('')),
    )
    fc.assert(
      fc.property(sigs, (sig) => {
        expect(outcome(sig)).toBe(reference(sig))
      }),
      { numRuns: 3000 },
    )
  })
})
