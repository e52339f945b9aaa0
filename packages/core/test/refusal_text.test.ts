// A refusal text from a server that echoes the request's own credential back (adapter probe: the
// 300-character cut came first, so the credential's header and most of its claims reached the
// model as a prefix no scrubber recognises as a token any more).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { refusalText } from '../src/kernel/refusal_text.js'
import { createProof, Ed25519Key } from '../src/index.js'

const key = Ed25519Key.generate()
const proof = createProof(key, { accessToken: 'x'.repeat(40), audience: 'https://tools.example/mcp', tool: 'a.b', arguments: {} })

describe('refusalText', () => {
  it('replaces compact tokens, whole or cut, before cutting to length', () => {
    const text = refusalText(`DPoP ${proof} was refused`)
    expect(text).toBe('DPoP [token] was refused')
    const echoed = refusalText(`refused: Authorization: DPoP ${proof}${proof}`, 300)
    expect(echoed).not.toMatch(/eyJ/)
    expect(echoed.length).toBeLessThanOrEqual(301)
  })

  it('a cut inside an opaque credential drops the whole run, not only what is past the cut', () => {
    const opaque = 'sk_live_' + 'A1b2C3d4'.repeat(40)
    const out = refusalText(`bad key ${opaque}`, 100)
    expect(out).toBe('bad key …')
    // a cut at a word boundary keeps the words
    expect(refusalText('a '.repeat(200), 10)).toBe('a a a a a …')
    expect(refusalText('short', 300)).toBe('short')
  })

  it('never leaves 16 characters of a token that was in the text, wherever it was and wherever the cut falls (property)', () => {
    const token = fc.stringMatching(/^[A-Za-z0-9_-]{40,400}$/)
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), token, fc.string({ maxLength: 50 }), fc.integer({ min: 20, max: 600 }), fc.boolean(), (before, secret, after, max, jws) => {
        const t = jws ? `eyJhbGciOiJFZDI1NTE5In0.${secret}.${secret.slice(0, 30)}` : secret
        // the token stands as its own word, as an echoed header does
        const out = refusalText(`${before} ${t} ${after}`, max)
        expect(out.length).toBeLessThanOrEqual(max + 1)
        const tail = out.endsWith('…') ? out.slice(0, -1) : out
        // what is left of the token can only be a piece that the text kept whole (no cut inside it)
        for (let i = 0; i + 16 <= t.length; i += 8) {
          const piece = t.slice(i, i + 16)
          if (tail.includes(piece)) expect(jws ? false : tail.includes(t), `left a piece of the token: ${piece}`).toBe(true)
        }
      }),
      { numRuns: 300 },
    )
  })
})
