/**
 * The dashboard's paged API over real HTTP (a real Authority server on 127.0.0.1, the dashboard's
 * own routes): every endpoint, filters, keyset paging without duplicates or gaps, strict query
 * parsing, roles, CSRF and same-origin, reasons recorded in the audit, the session of a revoked or
 * disabled principal refused, and no token, proof or secret in any answer.
 */
import { decodeMandateUnverified, Ed25519Key, type MandateClaims } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, installDashboard, type AuthorityServer, type DashboardHandle } from '../src/index.js'
import type { ApprovalView, AuditView, CallView, Page, TaskDetail, TaskSummary, TreeNode, AgentView, Overview } from '../src/dashboard/api_types.js'
import { AUD, TOOLS } from './helpers.js'

let server: AuthorityServer
let dashboard: DashboardHandle
const admin = Ed25519Key.generate()
const admin2 = Ed25519Key.generate()
const bob = Ed25519Key.generate() // approver
const carol = Ed25519Key.generate() // approver
const dave = Ed25519Key.generate() // approver watching the live stream
const grantor = Ed25519Key.generate()
const worker = Ed25519Key.generate()
const helper = Ed25519Key.generate()
const guard = Ed25519Key.generate()
let txnAlice = ''
let txnCarol = ''
const approvalIds = { pending: '', approved: '', denied: '', carol: '' }
const jtis = { verified: '', refused: '', unpresented: '' }
/** Every response body the tests saw, checked at the end for token shapes. */
const seen: string[] = []

const JWS = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/

beforeAll(async () => {
  server = await createAuthorityServer({
    port: 0,
    authority: { policy: [{ id: 'refunds', effect: 'require_approval', tool: 'billing.refund', reason: 'refunds need a human' }, { id: 'rest', effect: 'allow' }] },
    extend: (app, authority) => void (dashboard = installDashboard(app, authority)),
  })
  const a = server.authority
  await a.registerAgent({ did: admin.did, name: 'root-admin', role: 'admin' })
  await a.registerAgent({ did: admin2.did, name: 'second-admin', role: 'admin' })
  await a.registerAgent({ did: bob.did, name: 'bob', role: 'approver' })
  await a.registerAgent({ did: carol.did, name: 'carol', role: 'approver' })
  await a.registerAgent({ did: dave.did, name: 'dave', role: 'approver' })
  await a.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await a.registerAgent({ did: worker.did, name: 'worker' })
  await a.registerAgent({ did: helper.did, name: 'helper' })
  await a.registerAgent({ did: guard.did, name: 'billing-guard', role: 'resource' })
  const root = await a.grant({ grantor: grantor.did, subject: 'alice', agent: worker.did, audiences: [AUD], tools: TOOLS, purpose: 'monthly billing' })
  txnAlice = root.claims.txn
  // worker delegates to helper: helper's calls carry the chain [worker, helper]
  const delegated = await a.clientFor(worker).delegate({ mandate: root.token, to: helper.did, tools: TOOLS })
  const hc = a.clientFor(helper)
  const issue = async (amount: number) => {
    const r = await hc.callCredential({ mandate: delegated.token, audience: AUD, tool: 'billing.get', arguments: { amount } })
    if (r.status !== 'issued') throw new Error('expected a credential')
    return decodeMandateUnverified(r.token).payload as unknown as MandateClaims
  }
  const verified = await issue(1)
  const refused = await issue(2)
  const unpresented = await issue(3)
  Object.assign(jtis, { verified: verified.jti, refused: refused.jti, unpresented: unpresented.jti })
  const report = (c: MandateClaims, decision: 'allowed' | 'refused', extra: Record<string, string> = {}) =>
    a.reportCall({ mandateId: c.jti, txn: c.txn, tool: 'billing.get', audience: AUD, argumentsDigest: c.call?.args ?? 'x', decision, actorChain: [worker.did, helper.did], subject: 'alice', ...extra }, { reporter: guard.did })
  await report(verified, 'allowed', { outcome: 'success' })
  await report(refused, 'refused', { errorCode: 'ARGUMENTS_MISMATCH' })
  // three approvals asked by helper (chain worker → helper)
  const ask = async (amount: number) => {
    const r = await hc.callCredential({ mandate: delegated.token, audience: AUD, tool: 'billing.refund', arguments: { amount } })
    if (r.status !== 'approval_required') throw new Error('expected approval_required')
    return r.approvalId
  }
  approvalIds.pending = await ask(10)
  approvalIds.approved = await ask(20)
  approvalIds.denied = await ask(30)
  // a second task, for carol-user, held by helper, who asks for an approval
  const carolRoot = await a.grant({ grantor: grantor.did, subject: 'carol-user', agent: helper.did, audiences: [AUD], tools: TOOLS, purpose: 'carol refund' })
  txnCarol = carolRoot.claims.txn
  const cr = await a.clientFor(helper).callCredential({ mandate: carolRoot.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 5 } })
  if (cr.status !== 'approval_required') throw new Error('expected approval_required')
  approvalIds.carol = cr.approvalId
  // more tasks for paging
  for (let i = 0; i < 5; i++) await a.grant({ grantor: grantor.did, subject: `user-${i}`, agent: worker.did, audiences: [AUD], tools: TOOLS })
})
afterAll(() => server.close())

async function login(key: Ed25519Key): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${server.url}${dashboard.createLoginPath({ did: key.did }).path}`, { redirect: 'manual', headers: { 'sec-fetch-site': 'none' } })
  expect(res.status).toBe(303)
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string
  // the CSRF token: from the app shell when it is built, else from the session via a failing POST is impossible; read it from the page meta
  const page = await fetch(`${server.url}/dashboard/`, { headers: { cookie } })
  const html = await page.text()
  const m = /name="mandate-csrf" content="([^"]+)"/.exec(html) ?? /content="([A-Za-z0-9_-]{43})"/.exec(html)
  return { cookie, csrf: m?.[1] ?? '' }
}

async function get<T>(path: string, cookie: string, status = 200): Promise<T> {
  const res = await fetch(`${server.url}/dashboard${path}`, { headers: { cookie } })
  const body = await res.text()
  seen.push(body)
  expect({ path, status: res.status, body: res.status === status ? '' : body }).toEqual({ path, status, body: '' })
  expect(res.headers.get('cache-control')).toBe('no-store')
  return JSON.parse(body) as T
}

async function post(path: string, s: { cookie: string; csrf: string }, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/dashboard${path}`, {
    method: 'POST',
    headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, origin: server.url, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  seen.push(text)
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown> }
}

/** Walk every page of a list with `limit`, checking that pages do not overlap. */
async function walk<T>(path: string, cookie: string, key: (t: T) => string): Promise<T[]> {
  const out: T[] = []
  let next: string | undefined
  const sep = path.includes('?') ? '&' : '?'
  for (let i = 0; i < 100; i++) {
    const page = await get<Page<T>>(`${path}${next ? `${sep}cursor=${next}` : ''}`, cookie)
    out.push(...page.items)
    next = page.next
    if (!next) break
  }
  expect(new Set(out.map(key)).size).toBe(out.length)
  return out
}

describe('dashboard API: reads', () => {
  it('needs a session on every endpoint', async () => {
    for (const p of ['/api/overview', '/api/tasks', `/api/tasks/${txnAlice}`, '/api/agents', '/api/approvals', `/api/approvals/${approvalIds.pending}`, '/api/calls', '/api/audit']) {
      const res = await fetch(`${server.url}/dashboard${p}`)
      expect(res.status, p).toBe(401)
    }
  })

  it('refuses unknown, repeated and malformed parameters (400 invalid_request)', async () => {
    const { cookie } = await login(admin)
    for (const p of [
      '/api/tasks?subjet=alice', '/api/audit?agnet=x', '/api/audit?type=nope', '/api/audit?limit=0', '/api/audit?limit=201', '/api/audit?limit=abc',
      '/api/audit?cursor=zzz', `/api/audit?cursor=${Buffer.from('task.5').toString('base64url')}`, '/api/calls?outcome=maybe', '/api/agents?status=gone',
      '/api/approvals?status=pending&status=denied', '/api/overview?x=1', `/api/tasks/${txnAlice}?q=1`, '/api/audit?since=yesterday', '/api/tasks?status=open', '/api/audit?agent=alice%FF', '/api/tasks?subject=%',
    ]) {
      const body = await get<{ error: string; mandate_code: string }>(p, cookie, 400)
      expect(body, p).toMatchObject({ error: 'invalid_request', mandate_code: 'INVALID_REQUEST' })
    }
  })

  it('overview: issuer, me with role, counts, audit status', async () => {
    const { cookie } = await login(admin)
    const o = await get<Overview>('/api/overview', cookie)
    expect(o).toMatchObject({ issuer: server.url, me: { did: admin.did, name: 'root-admin', role: 'admin' }, roles: ['admin'], audit: { ok: true } })
    expect(o.counts.tasks).toBe(7)
    expect(o.counts.agents).toBe(9)
    expect(o.counts.pendingApprovals).toBe(4)
    expect(o.counts.calls24h).toBeGreaterThanOrEqual(7)
    expect(o.counts.refused24h).toBeGreaterThanOrEqual(1)
  })

  it('tasks: filter by subject, agent, search by agent name; summary counts', async () => {
    const { cookie } = await login(admin)
    const alice = await get<Page<TaskSummary>>('/api/tasks?subject=alice', cookie)
    expect(alice.items).toHaveLength(1)
    expect(alice.items[0]).toMatchObject({ txn: txnAlice, purpose: 'monthly billing', subject: 'alice', rootAgent: { did: worker.did, name: 'worker' }, status: 'active' })
    expect(alice.items[0]?.counts).toEqual({ mandates: 2, calls: 3, verified: 1, refused: 1, notPresented: 1, pendingApprovals: 3 })
    const byHelper = await get<Page<TaskSummary>>(`/api/tasks?agent=${encodeURIComponent(helper.did)}`, cookie)
    expect(byHelper.items.map((t) => t.txn)).toEqual([txnCarol, txnAlice])
    const byName = await get<Page<TaskSummary>>('/api/tasks?q=CAROL%20R', cookie)
    expect(byName.items.map((t) => t.txn)).toEqual([txnCarol])
    const all = await walk<TaskSummary>('/api/tasks?limit=2', cookie, (t) => t.txn)
    expect(all).toHaveLength(7)
    // newest first
    expect(all[all.length - 1]?.txn).toBe(txnAlice)
  })

  it('task detail: the delegation tree with node states, full actor chains and the task audit', async () => {
    const { cookie } = await login(admin)
    const d = await get<TaskDetail>(`/api/tasks/${txnAlice}`, cookie)
    expect(d.task.txn).toBe(txnAlice)
    expect(d.tree).toHaveLength(1)
    const root = d.tree[0] as TreeNode
    expect(root).toMatchObject({ kind: 'mandate', holder: { name: 'worker' }, state: 'issued' })
    const delegation = root.children.find((n) => n.kind === 'mandate') as TreeNode
    expect(delegation).toMatchObject({ holder: { did: helper.did, name: 'helper' }, actorChain: [{ name: 'worker' }, { name: 'helper' }] })
    const byId = new Map(delegation.children.map((n) => [n.id, n]))
    expect(byId.get(jtis.verified)).toMatchObject({ kind: 'call', state: 'verified', stateBy: { name: 'billing-guard' }, tool: 'billing.get' })
    expect(byId.get(jtis.refused)).toMatchObject({ state: 'refused', stateBy: { name: 'billing-guard' }, code: 'ARGUMENTS_MISMATCH' })
    expect(byId.get(jtis.unpresented)).toMatchObject({ state: 'not_presented' })
    expect(byId.get(approvalIds.pending)).toMatchObject({ state: 'pending_approval', tool: 'billing.refund', actorChain: [{ name: 'worker' }, { name: 'helper' }] })
    expect(d.audit.items.length).toBeGreaterThan(5)
    expect(d.audit.items.every((r) => r.txn === txnAlice)).toBe(true)
    await get(`/api/tasks/nope`, cookie, 404)
  })

  it('agents: names, roles, status filter, search', async () => {
    const { cookie } = await login(bob)
    const approvers = await get<Page<AgentView>>('/api/agents?role=approver', cookie)
    expect(approvers.items.map((a) => a.name).sort()).toEqual(['bob', 'carol', 'dave'])
    const found = await get<Page<AgentView>>('/api/agents?q=guard', cookie)
    expect(found.items).toMatchObject([{ did: guard.did, name: 'billing-guard', role: 'resource', status: 'enabled' }])
    const all = await walk<AgentView>('/api/agents?limit=3', cookie, (a) => a.did)
    expect(all.length).toBe(9)
  })

  it('approvals: the full actor chain, deep link, filters', async () => {
    const { cookie } = await login(bob)
    const a = await get<ApprovalView>(`/api/approvals/${approvalIds.pending}`, cookie)
    expect(a).toMatchObject({
      id: approvalIds.pending, status: 'pending', tool: 'billing.refund', requestedBy: { did: helper.did, name: 'helper' },
      actorChain: [{ did: worker.did, name: 'worker' }, { did: helper.did, name: 'helper' }], txn: txnAlice, link: `/dashboard/approvals/${approvalIds.pending}`,
    })
    const byTask = await get<Page<ApprovalView>>(`/api/approvals?task=${txnAlice}&status=pending`, cookie)
    expect(byTask.items.map((x) => x.id).sort()).toEqual([approvalIds.pending, approvalIds.approved, approvalIds.denied].sort())
    const byAgent = await get<Page<ApprovalView>>(`/api/approvals?agent=${encodeURIComponent(worker.did)}`, cookie)
    expect(byAgent.items).toHaveLength(3) // worker is in the chain of helper's requests in its task
    await get(`/api/approvals/doesnotexist`, cookie, 404)
  })

  it('calls: outcomes from guard reports, filters, paging', async () => {
    const { cookie } = await login(admin)
    const calls = await get<Page<CallView>>(`/api/calls?task=${txnAlice}&limit=200`, cookie)
    const of = (id: string) => calls.items.find((c) => c.id === id)
    expect(of(jtis.verified)).toMatchObject({ outcome: 'verified', outcomeBy: { name: 'billing-guard' }, agent: { name: 'helper' }, actorChain: [{ name: 'worker' }, { name: 'helper' }], audience: AUD })
    expect(of(jtis.verified)?.reportedAt).toBeDefined()
    expect(of(jtis.refused)).toMatchObject({ outcome: 'refused', code: 'ARGUMENTS_MISMATCH' })
    expect(of(jtis.unpresented)).toMatchObject({ outcome: 'not_presented' })
    expect(calls.items.filter((c) => c.outcome === 'pending_approval')).toHaveLength(3)
    const verified = await get<Page<CallView>>('/api/calls?outcome=verified', cookie)
    expect(verified.items.map((c) => c.id)).toEqual([jtis.verified])
    const paged = await walk<CallView>(`/api/calls?task=${txnAlice}&limit=2`, cookie, (c) => c.id)
    expect(paged.map((c) => c.id)).toEqual(calls.items.map((c) => c.id))
  })

  it('audit: filters by task, agent, type, decision, tool, search; keyset paging has no duplicates or gaps', async () => {
    const { cookie } = await login(admin)
    const full = await get<Page<AuditView>>('/api/audit?limit=200', cookie)
    const paged = await walk<AuditView>('/api/audit?limit=7', cookie, (r) => String(r.seq))
    expect(paged.map((r) => r.seq)).toEqual(full.items.map((r) => r.seq))
    // contiguous, newest first
    expect(paged.map((r) => r.seq)).toEqual(paged.map((_, i) => (paged[0] as AuditView).seq - i))
    const grants = await get<Page<AuditView>>(`/api/audit?type=grant&agent=${encodeURIComponent(worker.did)}`, cookie)
    expect(grants.items).toHaveLength(6)
    expect(grants.items.every((r) => r.type === 'grant' && r.agent?.name === 'worker' && r.decision === 'allowed')).toBe(true)
    const refused = await get<Page<AuditView>>(`/api/audit?decision=refused&task=${txnAlice}`, cookie)
    expect(refused.items.map((r) => r.type)).toEqual(['call.report'])
    const tool = await get<Page<AuditView>>(`/api/audit?tool=billing.refund&type=approval.requested`, cookie)
    expect(tool.items).toHaveLength(4)
    const q = await get<Page<AuditView>>(`/api/audit?q=billing-guard`, cookie)
    expect(q.items.length).toBeGreaterThan(0)
    const future = await get<Page<AuditView>>(`/api/audit?since=${new Date(Date.now() + 3600_000).toISOString()}`, cookie)
    expect(future.items).toHaveLength(0)
    const past = await get<Page<AuditView>>(`/api/audit?until=2000-01-01`, cookie)
    expect(past.items).toHaveLength(0)
  })
})

describe('dashboard API: large trees', () => {
  it('a task tree keeps every node (no size cap on the answer): 205 calls under one mandate', async () => {
    const a = server.authority
    const bulk = await a.grant({ grantor: grantor.did, subject: 'bulk', agent: worker.did, audiences: [AUD], tools: TOOLS })
    const wc = a.clientFor(worker)
    for (let i = 0; i < 205; i++) await wc.callCredential({ mandate: bulk.token, audience: AUD, tool: 'billing.get', arguments: { amount: i } })
    const { cookie } = await login(admin)
    const d = await get<TaskDetail>(`/api/tasks/${bulk.claims.txn}`, cookie)
    expect((d.tree[0] as TreeNode).children).toHaveLength(205)
    expect(d.task.counts).toMatchObject({ calls: 205, notPresented: 205 })
  })
})

describe('dashboard API: actions', () => {
  it('need the CSRF token and the same origin', async () => {
    const s = await login(bob)
    expect((await post(`/api/approvals/${approvalIds.approved}/approve`, { ...s, csrf: 'wrong' }, { reason: 'ok' })).status).toBe(403)
    expect((await post(`/api/approvals/${approvalIds.approved}/approve`, s, { reason: 'ok' }, { origin: 'http://evil.example' })).status).toBe(403)
  })

  it('approve/deny need a reason, which lands in the audit record', async () => {
    const s = await login(bob)
    expect(await post(`/api/approvals/${approvalIds.approved}/approve`, s, {})).toMatchObject({ status: 400, body: { mandate_code: 'INVALID_REQUEST' } })
    expect(await post(`/api/approvals/${approvalIds.approved}/approve`, s, { reason: ' ' })).toMatchObject({ status: 400 })
    expect(await post(`/api/approvals/${approvalIds.approved}/approve`, s, { reason: 'x'.repeat(501) })).toMatchObject({ status: 400 })
    expect(await post(`/api/approvals/${approvalIds.approved}/approve`, s, { reason: 'ok', extra: 1 })).toMatchObject({ status: 400 })
    // a reason that would read otherwise in the audit (bidi override, zero-width), and a duplicate member
    expect(await post(`/api/approvals/${approvalIds.approved}/approve`, s, { reason: 'ok \u202Edeifirev' })).toMatchObject({ status: 400 })
    expect(await post(`/api/approvals/${approvalIds.approved}/approve`, s, { reason: 'o\u200Bk' })).toMatchObject({ status: 400 })
    const dup = await fetch(`${server.url}/dashboard/api/approvals/${approvalIds.approved}/approve`, {
      method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, origin: server.url, 'content-type': 'application/json' }, body: '{"reason":"a","reason":"b"}',
    })
    expect(dup.status).toBe(400)
    expect(await post(`/api/approvals/${approvalIds.approved}/approve`, s, { reason: 'refund agreed with the customer' })).toMatchObject({ status: 200, body: { ok: true, status: 'approved', by: bob.did } })
    expect(await post(`/api/approvals/${approvalIds.denied}/deny`, s, { reason: 'not this month' })).toMatchObject({ status: 200, body: { ok: true, status: 'denied' } })
    const { cookie } = s
    const rec = await get<Page<AuditView>>(`/api/audit?type=approval.approved`, cookie)
    expect(rec.items[0]?.description).toContain('refund agreed with the customer')
    const raw = await server.authority.audit.query({ type: 'approval.denied' })
    expect(raw[0]?.fields).toMatchObject({ approver: bob.did, reason: 'not this month' })
    const a = await get<ApprovalView>(`/api/approvals/${approvalIds.denied}`, cookie)
    expect(a).toMatchObject({ status: 'denied', decidedBy: { did: bob.did, name: 'bob' }, decisionReason: 'not this month' })
    const tree = await get<TaskDetail>(`/api/tasks/${txnAlice}`, cookie)
    const nodes = (tree.tree[0] as TreeNode).children.find((n) => n.kind === 'mandate')?.children ?? []
    expect(nodes.find((n) => n.id === approvalIds.approved)).toMatchObject({ state: 'approved', stateBy: { name: 'bob' } })
    expect(nodes.find((n) => n.id === approvalIds.denied)).toMatchObject({ state: 'denied', approval: { reason: 'not this month' } })
  })

  it('the requesting agent cannot approve its own request; an approver cannot revoke or disable', async () => {
    // even holding a session (a login link made for it), the requesting agent is not admitted
    const own = await login(helper)
    expect(await post(`/api/approvals/${approvalIds.carol}/approve`, own, { reason: 'mine' })).toMatchObject({ status: 403, body: { mandate_code: 'ACCESS_DENIED' } })
    expect((await server.authority.store.getApproval(approvalIds.carol))?.status).toBe('pending')
    expect((await fetch(`${server.url}/dashboard/api/overview`, { headers: { cookie: own.cookie } })).status).toBe(401) // its session was ended
    const s = await login(bob)
    expect(await post('/api/revocations', s, { txn: txnCarol, reason: 'no' })).toMatchObject({ status: 403, body: { mandate_code: 'ACCESS_DENIED' } })
    expect(await post(`/api/agents/${encodeURIComponent(worker.did)}/disable`, s, { reason: 'no' })).toMatchObject({ status: 403 })
  })

  it('admin: revoke a task (exactly one target, reason audited); disable and enable an agent with reasons', async () => {
    const s = await login(admin)
    expect(await post('/api/revocations', s, { txn: txnCarol, agent: carol.did, reason: 'two' })).toMatchObject({ status: 400 })
    expect(await post('/api/revocations', s, { reason: 'none' })).toMatchObject({ status: 400 })
    expect(await post('/api/revocations', s, { txn: txnCarol })).toMatchObject({ status: 400 })
    expect(await post('/api/revocations', s, { txn: txnCarol, reason: 'task abandoned' })).toMatchObject({ status: 200, body: { ok: true, target: 'txn', revoked: 1 } })
    const rev = await server.authority.audit.query({ type: 'revocation' })
    expect(rev[rev.length - 1]?.fields).toMatchObject({ target: 'task', txn: txnCarol, by: admin.did, reason: 'task abandoned' })
    const revoked = await get<Page<TaskSummary>>('/api/tasks?status=revoked', s.cookie)
    expect(revoked.items.map((t) => t.txn)).toEqual([txnCarol])
    expect(await post(`/api/agents/${encodeURIComponent(helper.did)}/disable`, s, { reason: 'suspicious refunds' })).toMatchObject({ status: 200, body: { ok: true, status: 'disabled' } })
    const disabled = await get<Page<AgentView>>('/api/agents?status=disabled', s.cookie)
    expect(disabled.items).toMatchObject([{ did: helper.did, status: 'disabled', reason: 'suspicious refunds' }])
    expect(await post(`/api/agents/${encodeURIComponent(helper.did)}/enable`, s, { reason: 'checked with the owner' })).toMatchObject({ status: 200, body: { status: 'enabled' } })
    const changes = await server.authority.audit.query({ agent: helper.did })
    expect(changes.filter((r) => r.type === 'agent.disabled' || r.type === 'agent.enabled').map((r) => [r.type, r.fields.reason, r.fields.by])).toEqual([
      ['agent.disabled', 'suspicious refunds', admin.did], ['agent.enabled', 'checked with the owner', admin.did],
    ])
  })

  it("a revoked admin's and a disabled approver's open sessions are refused and dropped", async () => {
    const s2 = await login(admin2)
    await get('/api/overview', s2.cookie)
    const carolSession = await login(carol)
    await get('/api/overview', carolSession.cookie)
    const s = await login(admin)
    expect(await post('/api/revocations', s, { agent: admin2.did, reason: 'key leaked' })).toMatchObject({ status: 200 })
    expect(await post(`/api/agents/${encodeURIComponent(carol.did)}/disable`, s, { reason: 'left the team' })).toMatchObject({ status: 200 })
    const refused = await fetch(`${server.url}/dashboard/api/overview`, { headers: { cookie: s2.cookie } })
    expect(refused.status).toBe(401)
    expect(await refused.json()).toMatchObject({ mandate_code: 'ACCESS_DENIED' })
    expect((await fetch(`${server.url}/dashboard/api/tasks`, { headers: { cookie: carolSession.cookie } })).status).toBe(401)
    // dropped: enabling carol again does not revive the old session
    expect(await post(`/api/agents/${encodeURIComponent(carol.did)}/enable`, s, { reason: 'back' })).toMatchObject({ status: 200 })
    expect((await fetch(`${server.url}/dashboard/api/tasks`, { headers: { cookie: carolSession.cookie } })).status).toBe(401)
    // a revoked admin cannot act either
    expect((await post('/api/revocations', s2, { txn: txnAlice, reason: 'x' })).status).toBe(401)
  })

  it('the live stream names the task of each record, and ends when its principal is disabled', async () => {
    const s = await login(dave)
    const res = await fetch(`${server.url}/dashboard/api/events?after=0`, { headers: { cookie: s.cookie } })
    expect(res.status).toBe(200)
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    const until = async (needle: string) => {
      while (!text.includes(needle)) {
        const { value, done } = await reader.read()
        if (done) break
        text += new TextDecoder().decode(value)
      }
    }
    await until(`"txn":"${txnAlice}"`)
    expect(text).toContain('event: audit')
    await server.authority.disableAgent(dave.did, { by: admin.did, reason: 'rotation' })
    await until('event: logout')
    expect(text).toContain('event: logout')
    await reader.cancel()
    seen.push(text)
    expect((await fetch(`${server.url}/dashboard/api/overview`, { headers: { cookie: s.cookie } })).status).toBe(401)
  })

  it('no answer ever held a compact JWS (token, proof, signed head) or a secret', () => {
    expect(seen.length).toBeGreaterThan(40)
    for (const body of seen) {
      expect(JWS.test(body), body.slice(0, 200)).toBe(false)
      expect(body).not.toMatch(/"(d|privateJwk|token|access_token|proof|dpop|secret)":/)
    }
  })
})
