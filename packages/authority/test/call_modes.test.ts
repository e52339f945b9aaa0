/**
 * Call modes at the Authority (issue #13): audience credentials (cached mode) in process and over
 * real HTTP on 127.0.0.1, switched off by `callModes.audience: false`; `per_call` marking of the
 * grants whose calls policy (or `perCallTools`, or a use count) keeps at the Authority, and a core
 * guard refusing those tools with an audience credential while accepting a per-call credential;
 * offline grants (off by default, capped), a two-hop holder-signed chain verified by a guard whose
 * call report is audited with its hops and shown by the dashboard API; strict parsing of reported hops.
 */
import {
  attenuateMandate, createClientAssertion, createGuard, createProof, decodeMandateUnverified, Ed25519Key, MandateError,
  parseMandateClaims, type MandateClaims, type OfflineHop, type ToolGrant,
} from '@mandate/core'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  AUDIENCE_CREDENTIAL_TOKEN_TYPE, createAuthority, createAuthorityServer, createRulePolicy, installDashboard, MemoryStore,
  type Authority, type AuthorityOptions, type AuthorityServer, type DashboardHandle, type PolicyEngine,
} from '../src/index.js'
import type { TaskDetail, TreeNode } from '../src/dashboard/api_types.js'
import { parseOfflineHops } from '../src/audit/offline_hops.js'
import { AUD, AUD2 } from './helpers.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const TASK = 'urn:mandate:grant-type:task'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

const BILLING: ToolGrant = { type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 500 } } }
const DOCS: ToolGrant = { type: 'tool_access', tools: ['docs.read'] }
const REFUNDS_NEED_APPROVAL = [{ id: 'refunds', effect: 'require_approval' as const, tool: 'billing.refund' }]

const claimsOf = (token: string): MandateClaims => parseMandateClaims(decodeMandateUnverified(token.split('~').at(-1) as string).payload)
const perCallOf = (c: MandateClaims) => c.authorization_details.map((g) => g.per_call === true)

async function setup(options: Partial<AuthorityOptions> = {}, grant: { tools?: ToolGrant[]; maxUses?: number; offline?: { maxHops: number }; audiences?: string[] } = {}) {
  const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: new MemoryStore(), ...options })
  const grantor = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  const b = Ed25519Key.generate()
  const guardKey = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'orchestrator' })
  await authority.registerAgent({ did: b.did, name: 'worker' })
  await authority.registerAgent({ did: guardKey.did, name: 'billing-guard', role: 'resource' })
  const root = await authority.grant({
    grantor: grantor.did, subject: 'alice', agent: a.did, audiences: grant.audiences ?? [AUD], tools: grant.tools ?? [BILLING, DOCS], expiresIn: 3600,
    ...(grant.maxUses !== undefined ? { maxUses: grant.maxUses } : {}), ...(grant.offline ? { offline: grant.offline } : {}),
  })
  const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: AUD, revocation: authority.revocationSource() })
  return { authority, grantor, a, b, guardKey, root, guard }
}

/** A guarded call with `presented` (a mandate, audience credential, call credential or offline chain) and a fresh proof by `holder`. */
function callWith(guard: ReturnType<typeof createGuard>, holder: Ed25519Key, presented: string, tool: string, args: Record<string, unknown>) {
  return guard.verifyToolCall({ mandate: presented, proof: createProof(holder, { audience: AUD, accessToken: presented, tool, arguments: args }), tool, arguments: args })
}

describe('audience credentials in process', () => {
  for (const authentication of ['signed', 'key'] as const) {
    it(`are issued for one audience, same holder, and accepted by a guard call after call (${authentication} client)`, async () => {
      const { authority, a, root, guard } = await setup({}, { audiences: [AUD, AUD2] })
      const client = authority.clientFor(a, { authentication })
      const issued = await client.audienceCredential?.({ mandate: root.token, audience: AUD })
      if (!issued) throw new Error('the in-process client has audienceCredential')
      const c = claimsOf(issued.token)
      expect(c.credential).toBe('audience')
      expect(c.aud).toBe(AUD)
      expect(c.client_id).toBe(a.did)
      expect(c.cnf.jkt).toBe(a.jkt)
      expect(c.delegation.parent).toBe(root.claims.jti)
      expect(c.exp - c.iat).toBeLessThanOrEqual(900)
      expect(issued.expiresAt).toBe(c.exp)
      for (const amount of [1, 2, 3]) {
        const v = await callWith(guard, a, issued.token, 'docs.read', { amount })
        expect(v.callBound).toBe(false)
        expect(v.mandateId).toBe(c.jti)
      }
      const [rec] = await authority.audit.query({ type: 'exchange' })
      expect(rec?.fields).toMatchObject({ operation: 'audience', credential: 'audience', audiences: [AUD], agent: a.did, recipient: a.did, jti: c.jti })
      expect((await authority.store.getMandate(c.jti))?.kind).toBe('audience')
      expect((await authority.audit.verify()).ok).toBe(true)
      await authority.close()
    })
  }

  it('are refused with UNSUPPORTED_TOKEN_TYPE (audited) when the operator turned them off, and nothing is issued', async () => {
    const { authority, a, root } = await setup({ callModes: { audience: false } })
    const before = await authority.countMandates()
    for (const authentication of ['signed', 'key'] as const) {
      await expect(authority.clientFor(a, { authentication }).audienceCredential?.({ mandate: root.token, audience: AUD })).rejects.toMatchObject({ code: 'UNSUPPORTED_TOKEN_TYPE' })
    }
    expect(await authority.countMandates()).toBe(before)
    const refusals = await authority.audit.query({ type: 'refusal' })
    expect(refusals.map((r) => [r.fields.code, r.fields.operation])).toEqual([['UNSUPPORTED_TOKEN_TYPE', 'audience'], ['UNSUPPORTED_TOKEN_TYPE', 'audience']])
    // per-call exchange still works
    expect((await authority.clientFor(a).callCredential({ mandate: root.token, audience: AUD, tool: 'docs.read', arguments: {} })).status).toBe('issued')
    await authority.close()
  })

  it('are refused by policy like any exchange (operation "audience"), and strictly parsed', async () => {
    const { authority, a, root } = await setup({ policy: [{ id: 'no-cache', effect: 'deny', on: 'audience' }] })
    await expect(authority.exchange(a, { kind: 'audience', subjectToken: root.token, audience: AUD })).rejects.toMatchObject({ code: 'POLICY_DENIED' })
    const [refusal] = await authority.audit.query({ type: 'refusal' })
    expect(refusal?.fields).toMatchObject({ code: 'POLICY_DENIED', policy_rule: 'no-cache', operation: 'audience' })
    const bad: unknown[] = [
      { kind: 'audience', subjectToken: root.token, audience: AUD, requestedActor: a.did },
      { kind: 'audience', subjectToken: root.token, audience: AUD, tool: 'docs.read' },
      { kind: 'audience', subjectToken: root.token, audience: AUD, expiresIn: 0 },
      { kind: 'audience', subjectToken: root.token, audience: 'not a uri' },
      { kind: 'audience', subjectToken: root.token },
    ]
    for (const p of bad) await expect(authority.exchange(a, p as never)).rejects.toBeInstanceOf(MandateError)
    await authority.close()
  })
})

describe('per_call marking', () => {
  it('marks the grants a require_approval rule could reach; the guard refuses those tools with an audience credential and accepts a per-call credential', async () => {
    const { authority, a, root, guard } = await setup({ policy: REFUNDS_NEED_APPROVAL })
    // billing.* could reach billing.refund: the whole grant is per_call; docs.read is not
    expect(perCallOf(root.claims)).toEqual([true, false])
    const [grantRec] = await authority.audit.query({ type: 'grant' })
    expect(grantRec?.fields.per_call_tools).toEqual(['billing.*'])
    const cached = await authority.exchange(a, { kind: 'audience', subjectToken: root.token, audience: AUD })
    expect(perCallOf(cached.claims)).toEqual([true, false])
    await expect(callWith(guard, a, cached.token, 'billing.get', { amount: 1 })).rejects.toMatchObject({ code: 'CALL_CREDENTIAL_REQUIRED' })
    expect((await callWith(guard, a, cached.token, 'docs.read', {})).callBound).toBe(false)
    // the plain mandate is not call-bound either
    await expect(callWith(guard, a, root.token, 'billing.get', { amount: 1 })).rejects.toMatchObject({ code: 'CALL_CREDENTIAL_REQUIRED' })
    const call = await authority.clientFor(a).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })
    if (call.status !== 'issued') throw new Error('expected a call credential')
    expect((await callWith(guard, a, call.token, 'billing.get', { amount: 1 })).callBound).toBe(true)
    // the approval itself is still asked at the Authority, per call
    expect((await authority.clientFor(a).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 1 } })).status).toBe('approval_required')
    await authority.close()
  })

  it('keeps per_call down a delegation whose request restates the tools without it', async () => {
    const { authority, a, b, root } = await setup({ policy: REFUNDS_NEED_APPROVAL })
    const child = await authority.exchange(a, { kind: 'delegation', subjectToken: root.token, requestedActor: b.did, tools: [{ type: 'tool_access', tools: ['billing.get'], constraints: { amount: { type: 'max', value: 100 } } }] })
    expect(perCallOf(child.claims)).toEqual([true])
    const inherited = await authority.exchange(a, { kind: 'delegation', subjectToken: root.token, requestedActor: b.did })
    expect(perCallOf(inherited.claims)).toEqual([true, false])
    await authority.close()
  })

  it('follows the policy conservatively: conditions, call-time denials, defaults, covering allow rules, subjects, audiences', async () => {
    const grants = [BILLING, DOCS, { type: 'tool_access', tools: ['ops.*'], locations: [AUD2] } as ToolGrant]
    const cases: Array<[string, Parameters<typeof createRulePolicy>[0], boolean[]]> = [
      ['no policy', [], [false, false, false]],
      ['a `when` condition (arguments unknown yet)', [{ effect: 'deny', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } } }], [true, false, false]],
      ['a deny rule for calls only', [{ effect: 'deny', on: 'call', tool: 'docs.*' }], [false, true, false]],
      ['a deny rule for one agent (later holders are unknown)', [{ effect: 'deny', tool: 'docs.read', agent: Ed25519Key.generate().did }], [false, true, false]],
      ['a rule for another subject', [{ effect: 'require_approval', subject: 'bob' }], [false, false, false]],
      ['a rule for an audience the mandate does not have', [{ effect: 'require_approval', audience: 'https://other.example/api' }], [false, false, false]],
      ['a rule for one audience (grant locations count)', [{ effect: 'require_approval', audience: AUD }], [true, true, false]],
      ['defaultEffect require_approval', { defaultEffect: 'require_approval', rules: [] }, [true, true, true]],
      ['defaultEffect deny with an allow rule covering one grant', { defaultEffect: 'deny', rules: [{ effect: 'allow', tool: ['docs.*', 'ops.*', 'billing.*'], on: ['grant', 'audience'] }, { effect: 'allow', on: 'call', tool: 'docs.*' }] }, [true, false, true]],
      ['an earlier allow rule covering the tools decides their calls', [{ effect: 'allow', on: 'call', tool: 'docs.read' }, { effect: 'require_approval' }], [true, false, true]],
      ['an earlier allow rule with a condition does not', [{ effect: 'allow', tool: 'docs.read', when: { x: { type: 'exact', value: 1 } } }, { effect: 'require_approval' }], [true, true, true]],
      ['a rule on a narrower pattern under the grant', [{ effect: 'require_approval', tool: 'billing.refund.partial' }], [true, false, false]],
      ['a rule on a disjoint pattern', [{ effect: 'require_approval', tool: ['billingx.*', 'doc.read', 'ops'] }], [false, false, false]],
    ]
    const got: Array<[string, boolean[]]> = []
    for (const [name, policy] of cases) {
      const { authority, root } = await setup({ policy }, { tools: grants, audiences: [AUD, AUD2] })
      got.push([name, perCallOf(root.claims)])
      await authority.close()
    }
    expect(got).toEqual(cases.map(([name, , expected]) => [name, expected]))
  })

  it('marks grants under the perCallTools option, everything of a use-counted mandate, and everything of an engine that cannot tell', async () => {
    let s = await setup({ perCallTools: ['docs.*'] })
    expect(perCallOf(s.root.claims)).toEqual([false, true])
    await s.authority.close()
    s = await setup({}, { maxUses: 5 })
    expect(perCallOf(s.root.claims)).toEqual([true, true])
    await s.authority.close()
    const opaque: PolicyEngine = { evaluate: () => ({ effect: 'allow' }) }
    s = await setup({ policy: opaque })
    expect(perCallOf(s.root.claims)).toEqual([true, true])
    await s.authority.close()
    const answering: PolicyEngine = { evaluate: () => ({ effect: 'allow' }), needsPerCall: (c) => c.tools.includes('docs.read') }
    s = await setup({ policy: answering })
    expect(perCallOf(s.root.claims)).toEqual([false, true])
    await s.authority.close()
    for (const bad of [{ perCallTools: ['not a pattern'] }, { perCallTools: 'docs.*' }, { callModes: { cached: true } }, { callModes: { audience: 'yes' } }, { maxOfflineHops: 9 }, { maxOfflineHops: 0 }]) {
      await expect(createAuthority({ issuer: 'http://127.0.0.1:7400', ...(bad as object) })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    }
  })

  it('never marks more than fast-check finds reachable: a grant is unmarked only if no call under it can be held', () => {
    // oracle: enumerate concrete tools under the grant and ask evaluate() at a call with and without a matching argument
    const seg = fc.constantFrom('a', 'b', 'c')
    const pattern = fc.oneof(fc.constant('*'), fc.tuple(seg, seg).map(([x, y]) => `${x}.${y}`), seg.map((x) => `${x}.*`), fc.tuple(seg, seg).map(([x, y]) => `${x}.${y}.*`))
    const rule = fc.record({
      effect: fc.constantFrom('allow', 'deny', 'require_approval'),
      tool: fc.option(fc.array(pattern, { minLength: 1, maxLength: 2 }), { nil: undefined }),
      when: fc.option(fc.constant({ n: { type: 'max' as const, value: 1 } }), { nil: undefined }),
    }).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)))
    fc.assert(fc.property(fc.array(rule, { maxLength: 4 }), fc.constantFrom('allow', 'deny', 'require_approval'), fc.array(pattern, { minLength: 1, maxLength: 2 }), (rules, defaultEffect, granted) => {
      const engine = createRulePolicy({ defaultEffect: defaultEffect as 'allow', rules: rules as never })
      const ctx = { subject: 'alice', txn: 't', audiences: [AUD], tools: granted, agent: 'x', recipient: 'x', actorChain: [] }
      const marked = engine.needsPerCall?.(ctx)
      const names = ['a.a', 'a.b', 'b.c', 'c.a.b', 'a.b.c', 'b.b.b']
      const covered = names.filter((t) => granted.some((p) => p === '*' || p === t || (p.endsWith('.*') && t.startsWith(p.slice(0, -1)))))
      const held = covered.some((tool) => [{ n: 0 }, { n: 5 }].some((args) => {
        const d = engine.evaluate({ operation: 'call', subject: 'alice', agent: 'x', actorChain: [], recipient: 'x', txn: 't', audiences: [AUD], tools: [tool], arguments: args, scopes: [] }) as { effect: string }
        return d.effect !== 'allow'
      }))
      // soundness: a call that policy holds is always under a marked grant
      if (held) expect(marked).toBe(true)
    }), { numRuns: 400 })
  })
})

describe('offline grants', () => {
  it('are refused by default, allowed with callModes.offline, capped by maxOfflineHops, strictly parsed', async () => {
    const off = await createAuthority({ issuer: 'http://127.0.0.1:7400' })
    const grantor = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await off.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await off.registerAgent({ did: a.did, name: 'orchestrator' })
    const ask = (auth: Authority, offline: unknown) => auth.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: [DOCS], offline } as never)
    await expect(ask(off, { maxHops: 1 })).rejects.toMatchObject({ code: 'ATTENUATION_NOT_ALLOWED' })
    expect((await off.audit.query({ type: 'refusal' })).at(-1)?.fields.code).toBe('ATTENUATION_NOT_ALLOWED')
    await off.close()

    const on = await createAuthority({ issuer: 'http://127.0.0.1:7400', callModes: { offline: true }, store: off.store === undefined ? new MemoryStore() : new MemoryStore() })
    await on.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await on.registerAgent({ did: a.did, name: 'orchestrator' })
    const g = await ask(on, { maxHops: 3 })
    expect(g.claims.offline).toEqual({ max_hops: 3 })
    expect((await on.audit.query({ type: 'grant' })).at(-1)?.fields.offline_max_hops).toBe(3)
    expect((await ask(on, undefined)).claims.offline).toBeUndefined()
    await expect(ask(on, { maxHops: 4 })).rejects.toMatchObject({ code: 'ATTENUATION_NOT_ALLOWED', detail: { max_offline_hops: 3 } })
    for (const bad of [{ maxHops: 0 }, { maxHops: 9 }, { maxHops: 1.5 }, { maxHops: '2' }, { maxHops: 2, extra: 1 }, {}, [2], 2, null]) {
      await expect(ask(on, bad)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    }
    await on.close()
  })

  it('a two-hop chain (A → B delegation, then B\'s call hop) is verified by the guard, reported with its hops, audited, and shown by the dashboard API', async () => {
    let dashboard: DashboardHandle | undefined
    const server = await createAuthorityServer({
      port: 0, hostname: '127.0.0.1', authority: { callModes: { offline: true }, maxOfflineHops: 2 },
      extend: (app, authority) => void (dashboard = installDashboard(app, authority)),
    })
    try {
      const auth = server.authority
      const [grantor, a, b, guardKey, admin] = [Ed25519Key.generate(), Ed25519Key.generate(), Ed25519Key.generate(), Ed25519Key.generate(), Ed25519Key.generate()]
      await auth.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
      await auth.registerAgent({ did: a.did, name: 'orchestrator' })
      await auth.registerAgent({ did: guardKey.did, name: 'billing-guard', role: 'resource' })
      await auth.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
      // b is never registered: the Authority never sees this delegation
      const root = await auth.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: [BILLING, DOCS], offline: { maxHops: 2 }, purpose: 'offline' })
      const hop1 = attenuateMandate(root.token, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [DOCS] })
      const chain = attenuateMandate(hop1, b, { kind: 'call', audience: AUD, tool: 'docs.read', arguments: { page: 1 } })
      expect(chain.split('~')).toHaveLength(3)
      const guard = createGuard({ issuer: auth.issuer, jwks: auth.jwks(), audience: AUD, revocation: auth.revocationSource() })
      const v = await callWith(guard, b, chain, 'docs.read', { page: 1 })
      expect(v.actorChain).toEqual([a.did, b.did])
      const hops = v.offlineHops as OfflineHop[]
      expect(hops.map((h) => [h.kind, h.holder])).toEqual([['delegation', b.did], ['call', b.did]])
      expect(hops[0]?.parent).toBe(root.claims.jti)
      // the guard reports over HTTP as itself (a resource principal)
      const report = {
        mandateId: v.mandateId, txn: v.task.id, tool: v.tool, audience: v.audience, argumentsDigest: v.argumentsDigest, decision: 'allowed', outcome: 'success',
        actorChain: v.actorChain, subject: v.subject, offlineHops: hops,
      }
      const post = (body: unknown) => fetch(`${server.url}/audit/reports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `MandateAssertion ${createClientAssertion(guardKey, { clientId: guardKey.did, audience: server.url })}` },
        body: JSON.stringify(body),
      })
      const res = await post(report)
      expect(res.status, await res.clone().text()).toBeLessThan(300)
      const [rec] = await auth.audit.query({ type: 'call.report' })
      expect(rec?.fields.offline_hops).toEqual(hops.map((h) => ({ ...h })))
      expect(rec?.fields.reporter).toBe(guardKey.did)
      // a report whose hops do not end at its credential is refused over HTTP too
      const refused = await post({ ...report, offlineHops: hops.slice(0, 1) })
      expect(refused.status).toBe(400)
      expect((await auth.audit.query({ type: 'call.report' }))).toHaveLength(1)

      // the dashboard shows the delegation it never minted, under the root, marked as an offline hop
      const login = await fetch(`${server.url}${(dashboard as DashboardHandle).createLoginPath({ did: admin.did }).path}`, { redirect: 'manual', headers: { 'sec-fetch-site': 'none' } })
      const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string
      const detail = (await (await fetch(`${server.url}/dashboard/api/tasks/${encodeURIComponent(root.claims.txn)}`, { headers: { cookie } })).json()) as TaskDetail
      const rootNode = detail.tree.find((n) => n.id === root.claims.jti) as TreeNode
      const delegation = rootNode.children.find((n) => n.id === hops[0]?.jti) as TreeNode
      expect(delegation).toMatchObject({ kind: 'mandate', offline: { kind: 'delegation', reportedBy: { did: guardKey.did } }, holder: { did: b.did }, state: 'issued' })
      expect(delegation.actorChain.map((x) => x.did)).toEqual([a.did, b.did])
      expect(delegation.children).toEqual([expect.objectContaining({ id: hops[1]?.jti, kind: 'call', offline: expect.objectContaining({ kind: 'call' }), tool: 'docs.read', state: 'verified', argumentsDigest: v.argumentsDigest })])
      expect(JSON.stringify(detail)).not.toContain(chain.split('~')[1] as string)

      // the holder's own report of its own offline call is recorded, but shown as reported, not verified
      const own = attenuateMandate(root.token, a, { kind: 'call', audience: AUD, tool: 'docs.read', arguments: { page: 2 } })
      const v2 = await callWith(guard, a, own, 'docs.read', { page: 2 })
      const asAgent = (body: unknown) => fetch(`${server.url}/audit/reports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `MandateAssertion ${createClientAssertion(a, { clientId: a.did, audience: server.url })}` },
        body: JSON.stringify(body),
      })
      const ownReport = {
        mandateId: v2.mandateId, txn: v2.task.id, tool: v2.tool, audience: v2.audience, argumentsDigest: v2.argumentsDigest, decision: 'allowed',
        actorChain: v2.actorChain, subject: v2.subject, offlineHops: v2.offlineHops, offlineChain: own,
      }
      const self = await asAgent(ownReport)
      expect(self.status, await self.clone().text()).toBe(201)
      expect((await auth.audit.query({ type: 'call.report' })).at(-1)?.fields).not.toHaveProperty('offlineChain')
      expect(JSON.stringify((await auth.audit.query({ type: 'call.report' })).at(-1)?.fields)).not.toContain(own.split('~')[1]!.slice(0, 40))
      // a chain under another task's root, or one claiming more hops than the root allows, is refused
      expect((await asAgent({ ...ownReport, txn: 'another-task-000000000' })).status).toBe(403)
      // an agent's hops are verified from the chain itself (outside probe: summaries alone were recorded as sent)
      const { offlineChain: _chain, ...summariesOnly } = ownReport
      expect((await asAgent(summariesOnly)).status).toBe(403)
      const widened = (v2.offlineHops as OfflineHop[]).map((h) => ({ ...h, tools: ['*'] }))
      expect((await asAgent({ ...ownReport, offlineHops: widened })).status).toBe(403)
      expect((await asAgent({ ...ownReport, tool: 'billing.refund' })).status).toBe(403)
      expect((await asAgent({ ...ownReport, subject: 'mallory' })).status).toBe(403)
      // a chain whose hop signature was tampered with does not verify
      const sig = own.slice(-10)
      const tampered = `${own.slice(0, -10)}${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`
      expect((await asAgent({ ...ownReport, offlineChain: tampered })).status).toBe(403)
      // another agent cannot report the holder's chain as its own
      const m = Ed25519Key.generate()
      await auth.registerAgent({ did: m.did, name: 'mallory' })
      const asM = await fetch(`${server.url}/audit/reports`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `MandateAssertion ${createClientAssertion(m, { clientId: m.did, audience: server.url })}` },
        body: JSON.stringify({ ...ownReport, actorChain: [...v2.actorChain.slice(0, -1), m.did] }),
      })
      expect(asM.status).toBe(403)
      const after = (await (await fetch(`${server.url}/dashboard/api/tasks/${encodeURIComponent(root.claims.txn)}`, { headers: { cookie } })).json()) as TaskDetail
      const selfNode = (after.tree.find((n) => n.id === root.claims.jti) as TreeNode).children.find((n) => n.id === v2.mandateId)
      expect(selfNode).toMatchObject({ kind: 'call', state: 'not_presented' })
      expect(selfNode?.stateBy).toBeUndefined()
    } finally {
      await server.close()
    }
  })
})

describe('offline chains cannot reach what policy keeps at the Authority', () => {
  it('per_call grants stay per_call down offline hops, and the guard refuses those tools on the chain', async () => {
    const { authority, a, b, root, guard } = await setup({ policy: REFUNDS_NEED_APPROVAL, callModes: { offline: true } }, { offline: { maxHops: 2 } })
    expect(perCallOf(root.claims)).toEqual([true, false])
    const narrower = { type: 'tool_access' as const, tools: ['billing.get'], constraints: { amount: { type: 'max' as const, value: 10 } } }
    // dropping per_call at an offline hop would widen: core refuses it
    expect(() => attenuateMandate(root.token, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [narrower] })).toThrowError(expect.objectContaining({ code: 'NARROWING_TOOL' }) as never)
    const hop = attenuateMandate(root.token, a, { kind: 'delegation', actor: { id: b.did, jkt: b.jkt }, tools: [{ ...narrower, per_call: true }, DOCS] })
    await expect(callWith(guard, b, hop, 'billing.get', { amount: 1 })).rejects.toMatchObject({ code: 'CALL_CREDENTIAL_REQUIRED' })
    // even a call hop for exactly that call is not Authority-minted
    const callHop = attenuateMandate(hop, b, { kind: 'call', audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })
    await expect(callWith(guard, b, callHop, 'billing.get', { amount: 1 })).rejects.toMatchObject({ code: 'CALL_CREDENTIAL_REQUIRED' })
    expect((await callWith(guard, b, hop, 'docs.read', {})).offlineHops).toHaveLength(1)
    await authority.close()
  })
})

describe('reported offline hops are parsed strictly', () => {
  const did = () => Ed25519Key.generate().did
  const id = (n: number) => `hop${n}`.padEnd(22, 'x')
  const valid = (): Record<string, unknown>[] => [
    { jti: id(1), holder: did(), parent: id(0), depth: 1, kind: 'delegation', iat: 100, exp: 200, tools: ['docs.read'] },
    { jti: id(2), holder: did(), parent: id(1), depth: 1, kind: 'call', iat: 110, exp: 150, tools: ['docs.read'] },
  ]

  it('accepts a linked chain ending at the reported credential', () => {
    expect(parseOfflineHops(valid(), id(2))).toHaveLength(2)
  })

  it('refuses every malformed, unbounded, unlinked or mis-ended list', () => {
    const cases: Array<[string, unknown, string?]> = [
      ['not an array', { 0: valid()[0] }],
      ['empty', []],
      ['more than 8 hops', Array.from({ length: 9 }, (_, i) => ({ jti: id(i + 1), holder: did(), parent: id(i), depth: i + 1, kind: 'delegation', iat: 1, exp: 100 - i, tools: ['a'] })), id(9)],
      ['an unknown member', [{ ...valid()[0], token: 'eyJ...' }, valid()[1]]],
      ['a missing member', [Object.fromEntries(Object.entries(valid()[0] as object).filter(([k]) => k !== 'depth')), valid()[1]]],
      ['a holder that is not a did:key', [{ ...valid()[0], holder: 'agent-b' }, valid()[1]]],
      ['an unknown kind', [{ ...valid()[0], kind: 'root' }, valid()[1]]],
      ['a hop that is not the child of the one before', [valid()[0], { ...valid()[1], parent: id(7) }]],
      ['a child of a call hop', [{ ...valid()[0], kind: 'call', depth: 0 }, { ...valid()[1], depth: 0 }]],
      ['a depth that does not follow', [valid()[0], { ...valid()[1], depth: 2 }]],
      ['a hop outliving its parent', [valid()[0], { ...valid()[1], exp: 300 }]],
      ['a hop expiring before it was issued', [valid()[0], { ...valid()[1], iat: 150 }]],
      ['a bad tool', [{ ...valid()[0], tools: ['docs read'] }, valid()[1]]],
      ['too many tools', [{ ...valid()[0], tools: Array.from({ length: 65 }, (_, i) => `t${i}`) }, valid()[1]]],
      ['a float time', [{ ...valid()[0], iat: 100.5 }, valid()[1]]],
      ['an id with spaces', [{ ...valid()[0], jti: 'a b' }, valid()[1]]],
    ]
    for (const [name, hops, last] of cases) {
      expect(() => parseOfflineHops(hops, last ?? id(2)), name).toThrowError(expect.objectContaining({ code: 'INVALID_REQUEST' }) as never)
    }
    expect(() => parseOfflineHops(valid(), id(1))).toThrowError(/last hop/)
  })

  it('refuses any mutation of one member (fast-check), and never throws anything but a MandateError', () => {
    const junk = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 3 }), fc.object({ maxDepth: 1 }))
    fc.assert(fc.property(fc.integer({ min: 0, max: 1 }), fc.constantFrom('jti', 'holder', 'parent', 'depth', 'kind', 'iat', 'exp', 'tools'), junk, (i, member, value) => {
      const hops = valid()
      const original = (hops[i] as Record<string, unknown>)[member]
      ;(hops[i] as Record<string, unknown>)[member] = value
      let err: unknown
      try {
        parseOfflineHops(hops, id(2))
      } catch (e) {
        err = e
      }
      if (err === undefined) {
        // a value that keeps the chain valid may pass, recorded exactly as given (nothing coerced or dropped)
        expect(parseOfflineHops(hops, id(2))).toEqual(hops)
        expect(original === undefined || typeof value === typeof original).toBe(true)
      } else expect(MandateError.is(err) && err.code).toBe('INVALID_REQUEST')
    }), { numRuns: 300 })
  })

  it('are refused by reportCall (nothing recorded) and recorded when valid', async () => {
    const { authority, a, guardKey, root } = await setup()
    const base = { mandateId: id(2), txn: root.claims.txn, tool: 'docs.read', audience: AUD, argumentsDigest: 'x'.repeat(43), decision: 'allowed' as const, actorChain: [a.did], subject: 'alice' }
    await expect(authority.reportCall({ ...base, offlineHops: [valid()[0]] as never }, { reporter: guardKey.did })).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    expect(await authority.audit.query({ type: 'call.report' })).toHaveLength(0)
    await authority.reportCall({ ...base, offlineHops: valid() as never }, { reporter: guardKey.did })
    expect((await authority.audit.query({ type: 'call.report' }))[0]?.fields.offline_hops).toHaveLength(2)
    await authority.close()
  })
})

describe('audience credentials and offline grants over HTTP', () => {
  let server: AuthorityServer
  let disabled: AuthorityServer
  beforeAll(async () => {
    server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { policy: REFUNDS_NEED_APPROVAL, callModes: { offline: true } } })
    disabled = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { callModes: { audience: false } } })
  })
  afterAll(async () => {
    await server.close()
    await disabled.close()
  })

  function token(on: AuthorityServer, fields: string[][], k: Ed25519Key): Promise<Response> {
    const url = `${on.url}/token`
    const body = new URLSearchParams([...fields, ['client_assertion_type', JWT_BEARER], ['client_assertion', createClientAssertion(k, { clientId: k.did, audience: on.url })]])
    return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: createProof(k, { method: 'POST', url }) }, body })
  }
  async function principals(on: AuthorityServer) {
    const grantor = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await on.authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await on.authority.registerAgent({ did: a.did, name: 'agent' })
    return { grantor, a }
  }
  const grantFields = (agent: Ed25519Key, extra: string[][] = []) => [
    ['grant_type', TASK], ['subject', 'alice'], ['agent', agent.did], ['resource', AUD], ['resource', AUD2], ['authorization_details', JSON.stringify([BILLING, DOCS])], ...extra,
  ]

  it('issues an audience credential (issued_token_type names it) with per_call marks, and refuses malformed requests', async () => {
    const { grantor, a } = await principals(server)
    const grant = await token(server, grantFields(a, [['offline_max_hops', '2']]), grantor)
    const granted = (await grant.json()) as { access_token: string }
    expect(grant.status).toBe(200)
    expect(claimsOf(granted.access_token).offline).toEqual({ max_hops: 2 })
    expect(perCallOf(claimsOf(granted.access_token))).toEqual([true, false])
    const base = [['grant_type', EXCHANGE], ['subject_token', granted.access_token], ['subject_token_type', AT], ['requested_token_type', AUDIENCE_CREDENTIAL_TOKEN_TYPE]]
    const res = await token(server, [...base, ['resource', AUD], ['authorization_details', JSON.stringify([DOCS])], ['expires_in', '300']], a)
    const body = (await res.json()) as Record<string, unknown>
    expect(res.status, JSON.stringify(body)).toBe(200)
    expect(body).toMatchObject({ token_type: 'DPoP', issued_token_type: AUDIENCE_CREDENTIAL_TOKEN_TYPE, expires_in: 300 })
    const c = claimsOf(body.access_token as string)
    expect(c).toMatchObject({ credential: 'audience', aud: AUD, client_id: a.did, authorization_details: [DOCS] })
    expect(c.offline).toBeUndefined()
    const refusals: Array<[string[][], string]> = [
      [[['resource', AUD], ['resource', AUD2]], 'invalid_target'],
      [[], 'invalid_target'],
      [[['resource', AUD], ['requested_actor', a.did]], 'invalid_request'],
      [[['resource', AUD], ['tool', 'docs.read']], 'invalid_request'],
      [[['resource', AUD], ['max_depth', '1']], 'invalid_request'],
      [[['resource', AUD], ['expires_in', '0']], 'invalid_request'],
      [[['resource', 'https://elsewhere.example/mcp']], 'invalid_target'],
    ]
    for (const [extra, error] of refusals) {
      const r = await token(server, [...base, ...extra], a)
      expect({ extra, status: r.status, error: ((await r.json()) as { error?: string }).error }).toEqual({ extra, status: 400, error })
    }
  })

  it('refuses audience credentials with unsupported_token_type where they are off, and offline grants where those are off', async () => {
    const { grantor, a } = await principals(disabled)
    const offline = await token(disabled, grantFields(a, [['offline_max_hops', '1']]), grantor)
    expect(offline.status, await offline.clone().text()).toBe(400)
    expect(((await offline.json()) as { mandate_code?: string; error?: string }).error).toBe('invalid_grant')
    const root = ((await (await token(disabled, grantFields(a), grantor)).json()) as { access_token: string }).access_token
    const res = await token(disabled, [['grant_type', EXCHANGE], ['subject_token', root], ['subject_token_type', AT], ['requested_token_type', AUDIENCE_CREDENTIAL_TOKEN_TYPE], ['resource', AUD]], a)
    expect(res.status).toBe(400)
    expect(((await res.json()) as { error?: string }).error).toBe('unsupported_token_type')
    const on = await principals(server)
    for (const v of ['0', '9', 'x', '1.5', '4']) {
      const r = await token(server, grantFields(on.a, [['offline_max_hops', v]]), on.grantor)
      expect(r.status).toBe(400)
    }
  })
})
