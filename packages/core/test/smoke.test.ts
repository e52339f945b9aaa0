import { describe, expect, it } from 'vitest'
import {
  buildRootMandate, createGuard, createProof, Ed25519Key, MandateError, narrowMandate, randomId, signMandate, verifyMandate, createLocalKeySet,
} from '@mandate/core'

describe('smoke: grant, delegate, call, guard', () => {
  it('works end to end', async () => {
    const authority = Ed25519Key.generate()
    const issuer = 'https://authority.example'
    const a = Ed25519Key.generate()
    const b = Ed25519Key.generate()
    const now = Math.floor(Date.now() / 1000)
    const root = buildRootMandate(
      { subject: 'alice', agent: { id: a.did, jkt: a.jkt }, purpose: 'triage', audiences: ['https://tools.example/mcp'], scopes: ['read'], tools: [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 100 } } }] },
      { issuer, now, jti: randomId(), txn: randomId() },
    )
    const rootToken = signMandate(root, authority)
    const keys = createLocalKeySet({ keys: [authority.publicJwk] })
    const v = await verifyMandate(rootToken, { issuer, keys })
    const child = narrowMandate(v.claims, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [{ type: 'tool_access', tools: ['billing.refund'], constraints: { amount: { type: 'max', value: 50 } } }] }, { issuer, now, jti: randomId(), parentToken: rootToken, caller: { id: a.did, jkt: a.jkt } })
    const childToken = signMandate(child, authority)
    const call = narrowMandate((await verifyMandate(childToken, { issuer, keys })).claims, { kind: 'call', audience: 'https://tools.example/mcp', tool: 'billing.refund', arguments: { amount: 20 } }, { issuer, now, jti: randomId(), parentToken: childToken, caller: { id: b.did, jkt: b.jkt } })
    const callToken = signMandate(call, authority)
    const guard = createGuard({ issuer, jwks: { keys: [authority.publicJwk] }, audience: 'https://tools.example/mcp' })
    const proof = createProof(b, { accessToken: callToken, audience: 'https://tools.example/mcp', tool: 'billing.refund', arguments: { amount: 20 } })
    const verified = await guard.verifyToolCall({ mandate: callToken, proof, tool: 'billing.refund', arguments: { amount: 20 } })
    expect(verified.actorChain).toEqual([a.did, b.did])
    expect(verified.subject).toBe('alice')
    await expect(guard.verifyToolCall({ mandate: callToken, proof, tool: 'billing.refund', arguments: { amount: 20 } })).rejects.toMatchObject({ code: 'PROOF_REPLAYED' })
    const proof2 = createProof(b, { accessToken: callToken, audience: 'https://tools.example/mcp', tool: 'billing.refund', arguments: { amount: 20 } })
    await expect(guard.verifyToolCall({ mandate: callToken, proof: proof2, tool: 'billing.refund', arguments: { amount: 20 } })).rejects.toMatchObject({ code: 'TOKEN_REPLAYED' })
    expect(() => narrowMandate(v.claims, { kind: 'call', audience: 'https://tools.example/mcp', tool: 'billing.refund', arguments: { amount: 200 } }, { issuer, now, jti: randomId(), parentToken: rootToken, caller: { id: a.did, jkt: a.jkt } })).toThrow(MandateError)
  })
})
