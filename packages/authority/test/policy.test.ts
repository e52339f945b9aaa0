import { Ed25519Key } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createAuthority, createRulePolicy } from '../src/index.js'
import { AUD, registerTask, TOOLS } from './helpers.js'

describe('declarative policy', () => {
  it('first match wins over tool patterns, actors and argument conditions', () => {
    const p = createRulePolicy([
      { id: 'no-admin', effect: 'deny', tool: 'admin.*' },
      { id: 'big', effect: 'require_approval', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } } },
      { id: 'eu', effect: 'deny', on: 'call', subject: 'eve', tool: 'billing.*' },
    ])
    const base = { operation: 'call' as const, subject: 'alice', agent: 'did:a', actorChain: ['did:a'], recipient: 'did:a', txn: 't', audiences: [AUD], scopes: [] }
    expect(p.evaluate({ ...base, tools: ['admin.wipe'], arguments: {} })).toMatchObject({ effect: 'deny', rule: 'no-admin' })
    expect(p.evaluate({ ...base, tools: ['billing.refund'], arguments: { amount: 100 } })).toMatchObject({ effect: 'require_approval', rule: 'big' })
    expect(p.evaluate({ ...base, tools: ['billing.refund'], arguments: { amount: 99 } })).toMatchObject({ effect: 'allow' })
    expect(p.evaluate({ ...base, subject: 'eve', tools: ['billing.get'], arguments: {} })).toMatchObject({ effect: 'deny', rule: 'eu' })
    // at grant time a tool rule applies only when every granted tool falls under it
    expect(p.evaluate({ ...base, operation: 'grant', tools: ['admin.users.*'] })).toMatchObject({ effect: 'deny' })
    expect(p.evaluate({ ...base, operation: 'grant', tools: ['*'] })).toMatchObject({ effect: 'allow' })
  })

  it('a deny or require_approval condition holds for an argument that is absent or of another kind (fail closed); an allow condition does not', () => {
    const p = createRulePolicy([
      { id: 'big-refund', effect: 'require_approval', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } } },
      { id: 'big-charge', effect: 'deny', tool: 'billing.charge', when: { amount: { type: 'min', value: 1000 } } },
      { id: 'secrets', effect: 'deny', tool: 'files.read', when: { path: { type: 'path_prefix', prefix: '/secrets' } } },
      { id: 'evil', effect: 'deny', tool: 'mail.send', when: { to: { type: 'enum', values: ['x@evil.example'] } } },
      { id: 'small-ok', effect: 'allow', tool: 'billing.pay', when: { amount: { type: 'max', value: 10 } } },
    ], { defaultEffect: 'deny' })
    const base = { operation: 'call' as const, subject: 'alice', agent: 'did:a', actorChain: ['did:a'], recipient: 'did:a', txn: 't', audiences: [AUD], scopes: [] }
    const call = (tool: string, args: Record<string, unknown>) => p.evaluate({ ...base, tools: [tool], arguments: args as never })
    for (const amount of ['5000', [5000], { value: 5000 }, null, true, '5e3']) {
      expect(call('billing.refund', { amount }), JSON.stringify(amount)).toMatchObject({ effect: 'require_approval', rule: 'big-refund' })
      expect(call('billing.charge', { amount }), JSON.stringify(amount)).toMatchObject({ effect: 'deny', rule: 'big-charge' })
      // an allow condition that cannot be decided does not allow: the default (deny) decides
      expect(call('billing.pay', { amount }), JSON.stringify(amount)).toMatchObject({ effect: 'deny', byDefault: true })
    }
    expect(call('billing.refund', {})).toMatchObject({ effect: 'require_approval', rule: 'big-refund' })
    expect(call('billing.refund', { Amount: 5000 })).toMatchObject({ effect: 'require_approval', rule: 'big-refund' })
    // decided values still decide
    expect(call('billing.refund', { amount: 99 })).toMatchObject({ effect: 'deny', byDefault: true })
    expect(call('billing.charge', { amount: 999 })).toMatchObject({ effect: 'deny', byDefault: true })
    expect(call('billing.pay', { amount: 10 })).toMatchObject({ effect: 'allow', rule: 'small-ok' })
    // an unsafe path (could resolve under /secrets) is undecided: denied
    for (const path of ['/secrets/../x', '/data/../secrets/k', '/data/%2e%2e/secrets', ['/secrets/k']]) {
      expect(call('files.read', { path }), JSON.stringify(path)).toMatchObject({ effect: 'deny', rule: 'secrets' })
    }
    expect(call('files.read', { path: '/data/report.csv' })).toMatchObject({ effect: 'deny', byDefault: true })
    expect(call('mail.send', { to: ['x@evil.example'] })).toMatchObject({ effect: 'deny', rule: 'evil' })
    expect(call('mail.send', { to: 'bob@good.example' })).toMatchObject({ effect: 'deny', byDefault: true })
  })

  it('refuses unknown condition types when rules load (fail closed)', () => {
    expect(() => createRulePolicy([{ effect: 'deny', when: { x: { type: 'regex', value: '.*' } as never } }])).toThrow()
  })

  it('is enforced at grant and exchange with access_denied and an audited refusal', async () => {
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', policy: [{ id: 'no-wipe', effect: 'deny', tool: 'billing.wipe', reason: 'never' }, { id: 'no-admin-grants', effect: 'deny', on: 'grant', tool: 'admin.*' }] })
    const g = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    await expect(authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['admin.*'] }] })).rejects.toMatchObject({ code: 'POLICY_DENIED', oauthError: 'access_denied' })
    const root = await authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: TOOLS })
    await expect(authority.clientFor(a).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.wipe', arguments: { amount: 1 } })).rejects.toMatchObject({ code: 'POLICY_DENIED', message: 'policy rule "no-wipe" (rule 0) denies this call credential: never', detail: { rule: 'no-wipe' } })
    const refusals = await authority.audit.query({ type: 'refusal' })
    expect(refusals.map((r) => r.fields.code)).toEqual(['POLICY_DENIED', 'POLICY_DENIED'])
    await authority.close()
  })
})

describe('require_approval', () => {
  it('applies to calls only: a rule without `on` does not block grants or delegations', async () => {
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', policy: [{ id: 'billing-needs-a-human', effect: 'require_approval', tool: 'billing.*' }] })
    const { agents, root } = await registerTask(authority, 2)
    const [a, b] = agents as [Ed25519Key, Ed25519Key]
    const child = await authority.clientFor(a).delegate({ mandate: root.token, to: b.did })
    const call = await authority.clientFor(b).callCredential({ mandate: child.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })
    expect(call).toMatchObject({ status: 'approval_required' })
    await authority.close()
  })

  it('refuses, when rules load, a require_approval rule aimed at grants or delegations', () => {
    expect(() => createRulePolicy([{ effect: 'require_approval', on: 'grant', tool: 'billing.*' }])).toThrow(/calls only/)
    expect(() => createRulePolicy([{ effect: 'require_approval', on: ['call', 'delegation'] }])).toThrow(/calls only/)
    expect(() => createRulePolicy([{ effect: 'require_approval', on: 'call' }])).not.toThrow()
  })

  it('as the default effect, asks for approval of calls and lets grants and delegations through', () => {
    const p = createRulePolicy([], { defaultEffect: 'require_approval' })
    const base = { subject: 'alice', agent: 'did:a', actorChain: ['did:a'], recipient: 'did:a', txn: 't', audiences: [AUD], scopes: [], tools: ['billing.get'] }
    expect(p.evaluate({ ...base, operation: 'grant' })).toMatchObject({ effect: 'allow' })
    expect(p.evaluate({ ...base, operation: 'delegation' })).toMatchObject({ effect: 'allow' })
    expect(p.evaluate({ ...base, operation: 'call', arguments: {} })).toMatchObject({ effect: 'require_approval' })
  })
})

describe('rule validation', () => {
  it('refuses an empty `on` for every effect', () => {
    for (const effect of ['allow', 'deny', 'require_approval'] as const) expect(() => createRulePolicy([{ effect, on: [] }])).toThrow(/at least one operation/)
  })
})
