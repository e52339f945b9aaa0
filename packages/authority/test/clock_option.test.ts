// The Authority's `now` option: a clock answering NaN or not a number would make every time check
// pass (every comparison with NaN is false). It refuses instead (CONFIG_INVALID) and issues nothing.
import { Ed25519Key, MandateError } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createAuthority } from '../src/index.js'
import { AUD, TOOLS } from './helpers.js'

describe('a broken clock fails closed', () => {
  it('now() answering NaN: grants and exchanges are refused with CONFIG_INVALID; a finite clock works', async () => {
    let t: number = Date.now()
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', now: () => t })
    const g = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    const root = (await authority.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS, expiresIn: 600 })).token
    const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (MandateError.is(e) ? e.code : String(e)))
    const call = () => authority.exchange(a, { kind: 'call', subjectToken: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 1 } })
    expect(await code(call())).toBe('ok')
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 'soon' as unknown as number]) {
      t = bad
      expect(await code(call())).toBe('CONFIG_INVALID')
      expect(await code(authority.grant({ grantor: g.did, subject: 'bob', agent: a.did, audiences: [AUD], tools: TOOLS }))).toBe('CONFIG_INVALID')
    }
    t = Date.now()
    expect(await code(call())).toBe('ok')
    await authority.close()
  })
})
