import { createGuard, decodeMandateUnverified, Ed25519Key, MandateError, parseMandateClaims, signMandate } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createAuthority, MemoryStore } from '../src/index.js'
import { AUD, TOOLS } from './helpers.js'

async function setup() {
  const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: new MemoryStore() })
  const grantor = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  const b = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'orchestrator', owner: 'alice' })
  await authority.registerAgent({ did: b.did, name: 'worker' })
  const root = await authority.grant({
    grantor: grantor.did, subject: 'alice@example.com', agent: a.did, purpose: 'triage', audiences: [AUD], scopes: ['billing:read'], tools: TOOLS, expiresIn: 3600, maxDepth: 2, maxUses: 3,
  })
  return { authority, grantor, a, b, root }
}

describe('in-process Authority', () => {
  for (const authentication of ['signed', 'key'] as const) {
    it(`delegates and issues call credentials a guard accepts (${authentication} client)`, async () => {
      const { authority, a, b, root } = await setup()
      const child = await authority.clientFor(a, { authentication }).delegate({ mandate: root.token, to: b.did })
      const res = await authority.clientFor(b, { authentication }).callCredential({ mandate: child.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 10 } })
      expect(res.status).toBe('issued')
      if (res.status !== 'issued') return
      const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: AUD, revocation: authority.revocationSource() })
      const { createProof } = await import('@mandate/core')
      const verified = await guard.verifyToolCall({ mandate: res.token, proof: createProof(b, { audience: AUD, accessToken: res.token, tool: 'billing.refund', arguments: { amount: 10 } }), tool: 'billing.refund', arguments: { amount: 10 } })
      expect(verified.actorChain).toEqual([a.did, b.did])
      expect(verified.subject).toBe('alice@example.com')
      expect((await authority.audit.verify()).ok).toBe(true)
      await authority.close()
    })
  }

  it('counts uses against max_uses across the chain', async () => {
    const { authority, a, root } = await setup()
    const c = authority.clientFor(a, { authentication: 'key' })
    for (let i = 0; i < 3; i++) expect((await c.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })).status).toBe('issued')
    const before = await authority.countMandates()
    await expect(c.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })).rejects.toMatchObject({ code: 'NARROWING_BUDGET' })
    expect(await authority.countMandates()).toBe(before)
    await authority.close()
  })

  it('refuses a token that carries a stored jti but is not the token this Authority issued', async () => {
    const store = new MemoryStore()
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store })
    const grantor = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'orchestrator' })
    const b = Ed25519Key.generate()
    await authority.registerAgent({ did: b.did, name: 'worker' })
    const root = await authority.grant({ grantor: grantor.did, subject: 'alice@example.com', agent: a.did, purpose: 'triage', audiences: [AUD], tools: TOOLS })
    // same jti, validly signed by the Authority's own key, different content
    const [stored] = await store.loadSigningKeys()
    const claims = parseMandateClaims(decodeMandateUnverified(root.token).payload)
    const twin = signMandate({ ...claims, purpose: 'something else' }, Ed25519Key.fromPrivateJwk(stored?.privateJwk))
    const before = await authority.countMandates()
    for (const authentication of ['key', 'signed'] as const) {
      const c = authority.clientFor(a, { authentication })
      await expect(c.callCredential({ mandate: twin, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })).rejects.toMatchObject({ code: 'INVALID_GRANT', message: expect.stringMatching(/not issued by this Authority/) })
      await expect(c.callCredential({ mandate: twin, audience: AUD, tool: 'billing.get', arguments: { amount: 1 }, approvalId: 'no-such-approval' })).rejects.toMatchObject({ code: 'INVALID_GRANT', message: expect.stringMatching(/not issued by this Authority/) })
      await expect(c.delegate({ mandate: twin, to: b.did })).rejects.toMatchObject({ code: 'INVALID_GRANT' })
    }
    expect(await authority.countMandates()).toBe(before)
    // the genuine token still works
    expect((await authority.clientFor(a).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })).status).toBe('issued')
    await authority.close()
  })

  it('refuses exchange by a non-holder and audits the refusal', async () => {
    const { authority, b, root } = await setup()
    const err = await authority.clientFor(b).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } }).catch((e: unknown) => e)
    expect(MandateError.is(err) && err.code).toBe('INVALID_GRANT')
    const refusals = await authority.audit.query({ type: 'refusal' })
    expect(refusals.at(-1)?.fields.code).toBe('INVALID_GRANT')
    expect(JSON.stringify(refusals)).not.toContain(root.token)
    await authority.close()
  })
})
