// Hostile input: random bytes, truncations, deep nesting, megabyte headers and tokens. Each must be
// refused quickly with a typed MandateError through every public entry point.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  b64uEncode, createProof, Ed25519Key, MandateError, parseStrictJson, verifyMandate, verifyProof, type Guard,
} from '@mandate/core'
import { AUD, ISSUER, TestAuthority } from './helpers.js'

const BOUND_MS = 50
const auth = new TestAuthority()
const agent = Ed25519Key.generate()
const root = auth.root(agent)
const guard: Guard = auth.guard()
const url = `${AUD}/call`
const goodProof = createProof(agent, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: { path: '/data/x', amount: 1 } })

/** Every entry point, fed the same hostile token. */
const entryPoints: [string, (t: string) => Promise<unknown>][] = [
  ['verifyMandate', (t) => verifyMandate(t, { issuer: ISSUER, keys: auth.keys })],
  ['verifyProof', (t) => verifyProof(t, { audience: AUD })],
  ['guard.verifyToolCall (mandate)', (t) => guard.verifyToolCall({ mandate: t, proof: goodProof, tool: 'files.read', arguments: { path: '/data/x', amount: 1 } })],
  ['guard.verifyToolCall (proof)', (t) => guard.verifyToolCall({ mandate: root.token, proof: t, tool: 'files.read', arguments: { path: '/data/x', amount: 1 } })],
  ['guard.verifyRequest (Authorization)', (t) => guard.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${t}`, dpop: goodProof } })],
  ['guard.verifyRequest (DPoP header)', (t) => guard.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${root.token}`, dpop: t } })],
]

/**
 * Refused with a MandateError, in under BOUND_MS. The time is the best of up to three runs: the
 * refusal is deterministic, and one slow run on a loaded CI machine says nothing about the code.
 */
async function refusedQuickly(fn: () => Promise<unknown>): Promise<MandateError> {
  let best = Infinity
  let caught: unknown
  for (let attempt = 0; attempt < 3 && best >= BOUND_MS; attempt++) {
    caught = undefined
    const t0 = performance.now()
    try {
      await fn()
    } catch (err) {
      caught = err
    }
    best = Math.min(best, performance.now() - t0)
    expect(MandateError.is(caught), `expected a MandateError, got ${String(caught)}`).toBe(true)
  }
  expect(best).toBeLessThan(BOUND_MS)
  return caught as MandateError
}

function deepAct(n: number): string {
  return `${'{"sub":"a","act":'.repeat(n)}{"sub":"z"}${'}'.repeat(n)}`
}
const hdr = b64uEncode(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: auth.key.kid }))
const sig = b64uEncode(new Uint8Array(64).fill(3))
const hostile: [string, string][] = [
  ['1 MB token', 'a'.repeat(1 << 20)],
  ['1 MB of dots', '.'.repeat(1 << 20)],
  ['10,000-deep act', `${hdr}.${b64uEncode(`{"act":${deepAct(10_000)}}`)}.${sig}`],
  ['10,000-deep arrays', `${hdr}.${b64uEncode('['.repeat(10_000) + ']'.repeat(10_000))}.${sig}`],
  ['100,000-deep unterminated', `${hdr}.${b64uEncode('{"a":'.repeat(100_000))}.${sig}`],
  ['deep header', `${b64uEncode('['.repeat(5000))}.${b64uEncode('{}')}.${sig}`],
  ['huge array', `${hdr}.${b64uEncode(`{"aud":[${Array(5000).fill('"x"').join(',')}]}`)}.${sig}`],
  ['many members', `${hdr}.${b64uEncode(`{${Array.from({ length: 2000 }, (_, i) => `"m${i}":1`).join(',')}}`)}.${sig}`],
  ['empty', ''],
  ['three dots', '..'],
  ['non-ASCII', 'ä.ö.ü'],
  ['NUL bytes', '\u0000.\u0000.\u0000'],
  ['lone surrogate', `${b64uEncode('{"alg":"EdDSA"}')}.\ud800.${sig}`],
]

describe('hostile tokens are refused quickly with a typed error', () => {
  for (const [name, token] of hostile) {
    for (const [entry, fn] of entryPoints) {
      it(`${name} → ${entry}`, async () => {
        await refusedQuickly(() => fn(token))
      })
    }
  }
  it('non-string tokens are TOKEN_MALFORMED', async () => {
    for (const v of [undefined, null, 42, {}, [], Symbol('x')]) {
      const e = await refusedQuickly(() => verifyMandate(v, { issuer: ISSUER, keys: auth.keys }))
      expect(e.code).toBe('TOKEN_MALFORMED')
      await refusedQuickly(() => verifyProof(v, { audience: AUD }))
      await refusedQuickly(() => guard.verifyToolCall({ mandate: v as string, proof: goodProof, tool: 'files.read' }))
    }
  })
  it('1 MB Authorization and DPoP headers → TOKEN_TOO_LARGE', async () => {
    const big = 'a'.repeat(1 << 20)
    expect((await refusedQuickly(() => guard.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${big}`, dpop: goodProof } }))).code).toBe('TOKEN_TOO_LARGE')
    expect((await refusedQuickly(() => guard.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${root.token}`, dpop: big } }))).code).toBe('TOKEN_TOO_LARGE')
    const headers = new Headers({ authorization: `DPoP ${big}` })
    expect((await refusedQuickly(() => guard.verifyRequest({ method: 'GET', url, headers }))).code).toBe('TOKEN_TOO_LARGE')
  })
  it('1 MB tool arguments are refused quickly (ARGUMENTS_INVALID)', async () => {
    const e = await refusedQuickly(() => guard.verifyToolCall({ mandate: root.token, proof: goodProof, tool: 'files.read', arguments: { blob: 'x'.repeat(1 << 20) } }))
    expect(e.code).toBe('ARGUMENTS_INVALID')
  })
  it('10,000-deep JSON text is refused by parseStrictJson without recursion (JSON_TOO_DEEP)', async () => {
    const e = await refusedQuickly(async () => parseStrictJson('['.repeat(100_000) + ']'.repeat(100_000)))
    expect(e.code).toBe('JSON_TOO_DEEP')
    expect((await refusedQuickly(async () => parseStrictJson(`{"act":${deepAct(10_000)}}`))).code).toBe('JSON_TOO_DEEP')
  })
})

describe('every truncation of a valid mandate and proof is refused', () => {
  it('mandate prefixes (every length)', async () => {
    for (let n = 0; n < root.token.length; n++) {
      await refusedQuickly(() => verifyMandate(root.token.slice(0, n), { issuer: ISSUER, keys: auth.keys }))
    }
  })
  it('proof prefixes (every length) at the guard', async () => {
    for (let n = 0; n < goodProof.length; n++) {
      await refusedQuickly(() => guard.verifyToolCall({ mandate: root.token, proof: goodProof.slice(0, n), tool: 'files.read', arguments: { path: '/data/x', amount: 1 } }))
    }
  })
})

describe('random input (fast-check)', () => {
  it('random strings and random byte segments never crash and never pass', async () => {
    const segment = fc.uint8Array({ maxLength: 300 }).map((b) => b64uEncode(b))
    const token = fc.oneof(fc.string({ maxLength: 2000 }), fc.tuple(segment, segment, segment).map((s) => s.join('.')), fc.tuple(fc.constant(hdr), segment, segment).map((s) => s.join('.')))
    await fc.assert(
      fc.asyncProperty(token, async (t) => {
        for (const [, fn] of entryPoints) await refusedQuickly(() => fn(t))
      }),
      { numRuns: 150 },
    )
  })
  it('random single-character mutations of a valid mandate are refused', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: root.token.length - 1 }), fc.constantFrom(...'AZaz09-_.=+/ '.split('')), async (i, ch) => {
        fc.pre(root.token[i] !== ch)
        const t = root.token.slice(0, i) + ch + root.token.slice(i + 1)
        await refusedQuickly(() => verifyMandate(t, { issuer: ISSUER, keys: auth.keys }))
      }),
      { numRuns: 200 },
    )
  })
})
