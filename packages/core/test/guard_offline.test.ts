// Offline attenuation chains at the guard: the chain verified by the shared core code, then the same
// proof / tool / per_call / revocation / replay logic as every credential, against the last link;
// verified chains are cached like audience-level mandates, a chain ending in a call hop is single use.
import { describe, expect, it } from 'vitest'
import { argumentsDigest, attenuateMandate, createProof, Ed25519Key, MemoryRevocationList, type Guard } from '@mandate/core'
import { AUD, expectCode, expectReject, TestAuthority } from './helpers.js'
import { afterEach, beforeEach, vi } from 'vitest'
import { cryptoBackend } from '@mandate/core'

const args = { path: '/data/a.txt', amount: 5 }
const call = (g: Guard, holder: Ed25519Key, presented: string, tool = 'files.read', a: unknown = args) =>
  g.verifyToolCall({ mandate: presented, proof: createProof(holder, { accessToken: presented, audience: AUD, tool, arguments: a }), tool, arguments: a })

let verifies: ReturnType<typeof vi.spyOn>
beforeEach(() => {
  verifies = vi.spyOn(cryptoBackend, 'verify')
})
afterEach(() => verifies.mockRestore())

describe('offline chains at the guard', () => {
  const auth = new TestAuthority()
  const agent = Ed25519Key.generate()
  const worker = Ed25519Key.generate()
  const helper = Ed25519Key.generate()

  function chain(revocation?: MemoryRevocationList) {
    const root = auth.root(agent, { offline: { maxHops: 3 }, tools: [{ type: 'tool_access', tools: ['files.*'], constraints: { path: { type: 'path_prefix', prefix: '/data' } } }, { type: 'tool_access', tools: ['billing.*'], per_call: true }] })
    const one = attenuateMandate(root.token, agent, auth.delegate(worker), { now: auth.now })
    const two = attenuateMandate(one, worker, auth.delegate(helper, { tools: [{ type: 'tool_access', tools: ['files.read'], constraints: { path: { type: 'path_prefix', prefix: '/data' } } }] }), { now: auth.now })
    return { root, one, two, guard: auth.guard(revocation ? { revocation } : {}) }
  }

  it('verifies a two-hop chain: mode "offline", hop summaries, the last holder is the actor; then served from the cache', async () => {
    const { root, two, guard } = chain()
    const before = verifies.mock.calls.length
    const v = await call(guard, helper, two)
    expect(verifies.mock.calls.length - before).toBe(4) // root + 2 hops + proof
    expect(v).toMatchObject({ mode: 'offline', callBound: false, actor: helper.did, actorChain: [agent.did, worker.did, helper.did] })
    expect(v.offlineHops?.map((h) => [h.holder, h.kind])).toEqual([[worker.did, 'delegation'], [helper.did, 'delegation']])
    expect(v.ancestors[0]).toBe(root.claims.jti)
    const again = verifies.mock.calls.length
    await call(guard, helper, two)
    expect(verifies.mock.calls.length - again).toBe(1)
    expect(guard.mandateCache?.size).toBe(1)
  })

  it('the proof must come from the LAST holder; the last link\u2019s grants decide', async () => {
    const { two, guard } = chain()
    await expectReject(call(guard, worker, two), 'PROOF_BINDING_MISMATCH')
    await expectReject(call(guard, helper, two, 'files.write'), 'TOOL_NOT_ALLOWED')
    await expectReject(call(guard, helper, two, 'files.read', { path: '/etc/x' }), 'CONSTRAINT_VIOLATED')
  })

  it('per_call tools are refused for offline chains, even a chain that keeps the per_call grant', async () => {
    const { one, guard } = chain()
    await expectReject(call(guard, worker, one, 'billing.refund', { invoice: 'i' }), 'CALL_CREDENTIAL_REQUIRED')
  })

  it('revocation of the root, a hop, the task or any actor refuses the chain, also when cached', async () => {
    for (const pick of ['root', 'hop1', 'hop2', 'task', 'agent', 'worker'] as const) {
      const revocation = new MemoryRevocationList()
      const { root, one, two, guard } = chain(revocation)
      await call(guard, helper, two)
      const hopJti = (t: string) => (JSON.parse(Buffer.from((t.split('~').pop() as string).split('.')[1] as string, 'base64url').toString()) as { jti: string }).jti
      if (pick === 'root') revocation.revokeMandate(root.claims.jti)
      if (pick === 'hop1') revocation.revokeMandate(hopJti(one))
      if (pick === 'hop2') revocation.revokeMandate(hopJti(two))
      if (pick === 'task') revocation.revokeTask(root.claims.txn)
      if (pick === 'agent') revocation.revokeAgent(agent.did)
      if (pick === 'worker') revocation.revokeAgent(worker.did)
      await expectReject(call(guard, helper, two), 'REVOKED')
      expect(guard.mandateCache?.size, pick).toBe(0)
    }
  })

  it('a chain ending in an offline call hop is single use and never cached', async () => {
    const { one, guard } = chain()
    const c = attenuateMandate(one, worker, { kind: 'call', audience: AUD, tool: 'files.read', arguments: args }, { now: auth.now })
    const v = await call(guard, worker, c)
    expect(v).toMatchObject({ mode: 'offline', callBound: false })
    expect(guard.mandateCache?.size).toBe(0)
    await expectReject(call(guard, worker, c), 'TOKEN_REPLAYED')
    // bound to its tool and arguments
    const d = attenuateMandate(one, worker, { kind: 'call', audience: AUD, tool: 'files.read', arguments: args }, { now: auth.now })
    await expectReject(call(guard, worker, d, 'files.read', { path: '/data/other' }), 'ARGUMENTS_MISMATCH')
  })

  it('an offline call hop is refused where the guard is not given the tool and arguments (its digest was never checked)', async () => {
    const { one, guard } = chain()
    // a digest of arguments outside the constraint (/etc is not under /data), signed by the holder alone
    const hostile = argumentsDigest({ path: '/etc/shadow', amount: 5 })
    const c = attenuateMandate(one, worker, { kind: 'call', audience: AUD, tool: 'files.read', argsDigest: hostile }, { now: auth.now })
    const url = 'https://tools.example/mcp'
    const request = () => ({ method: 'POST', url, headers: { authorization: `DPoP ${c}`, dpop: createProof(worker, { accessToken: c, method: 'POST', url, tool: 'files.read', arguments: { path: '/etc/shadow', amount: 5 } }) } })
    const refused = await guard.verifyRequest(request()).then(() => undefined, (e: unknown) => e)
    expect(refused).toMatchObject({ code: 'ATTENUATION_INVALID', detail: { rule: 'call-hop-unchecked' } })
    await expect(guard.verifyRequest({ ...request(), tool: 'files.read' })).rejects.toMatchObject({ name: 'MandateError' })
    // with the real arguments the constraint decides
    await expectReject(call(guard, worker, c, 'files.read', { path: '/etc/shadow', amount: 5 }), 'CONSTRAINT_VIOLATED')
  })

  it('a tool a per_call grant of any link marks stays per-call, even after a hop that keeps only a narrower grant without it', async () => {
    const root = auth.root(agent, { offline: { maxHops: 3 }, tools: [{ type: 'tool_access', tools: ['files.*'], per_call: true }, { type: 'tool_access', tools: ['files.read'] }] })
    const guard = auth.guard()
    const a = { path: '/data/x' }
    await expectReject(call(guard, agent, root.token, 'files.read', a), 'CALL_CREDENTIAL_REQUIRED')
    // narrowing only the unmarked grant would shed the per_call of files.*: the holder cannot sign it
    expect(expectCode(() => attenuateMandate(root.token, agent, { kind: 'audience', audience: AUD, tools: [{ type: 'tool_access', tools: ['files.read'] }] }, { now: auth.now }), 'NARROWING_TOOL').detail?.rule).toBe('per-call')
    expect(expectCode(() => attenuateMandate(root.token, agent, auth.delegate(worker, { tools: [{ type: 'tool_access', tools: ['files.read'] }] }), { now: auth.now }), 'NARROWING_TOOL').detail?.rule).toBe('per-call')
    // keeping it is a narrowing, and the tool stays per-call at the guard
    const delegated = attenuateMandate(root.token, agent, auth.delegate(worker, { tools: [{ type: 'tool_access', tools: ['files.read'], per_call: true }] }), { now: auth.now })
    await expectReject(call(guard, worker, delegated, 'files.read', a), 'CALL_CREDENTIAL_REQUIRED')
    // inheriting both grants keeps the marked one, so the guard still demands a call credential
    const inherited = attenuateMandate(root.token, agent, { kind: 'audience', audience: AUD }, { now: auth.now })
    await expectReject(call(guard, agent, inherited, 'files.read', a), 'CALL_CREDENTIAL_REQUIRED')
    // a tool no link marks is still callable offline
    const plain = auth.root(agent, { offline: { maxHops: 3 }, tools: [{ type: 'tool_access', tools: ['files.read'] }, { type: 'tool_access', tools: ['billing.*'], per_call: true }] })
    const ok = attenuateMandate(plain.token, agent, auth.delegate(worker, { tools: [{ type: 'tool_access', tools: ['files.read'] }] }), { now: auth.now })
    await call(guard, worker, ok, 'files.read', a)
  })

  it('a guard that accepts only call credentials refuses offline chains', async () => {
    const { two } = chain()
    await expectReject(call(auth.guard({ requireCallBinding: true }), helper, two), 'CALL_CREDENTIAL_REQUIRED')
  })

  it('a tampered hop never hits the cache and is refused', async () => {
    const { two, guard } = chain()
    await call(guard, helper, two)
    const forged = `${two.slice(0, -3)}${two.slice(-3) === 'AAA' ? 'BBB' : 'AAA'}`
    await expect(call(guard, helper, forged)).rejects.toMatchObject({ name: 'MandateError' })
  })
})
