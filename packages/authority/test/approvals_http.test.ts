/** Approval round trip over HTTP: approval_required, SSE event stream, long poll, approve, deny, reuse, changed arguments, expiry. */
import { createClientAssertion, createHttpAuthorityClient, decodeMandateUnverified, Ed25519Key, type AuthorityClient } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, type AuthorityServer } from '../src/index.js'
import { MAX_WAITS_PER_PRINCIPAL } from '../src/http/approvals.js'
import { AUD, manualClock, TOOLS } from './helpers.js'

const clock = manualClock()
let server: AuthorityServer
let a: Ed25519Key, approver: Ed25519Key, root: string, client: AuthorityClient

beforeAll(async () => {
  server = await createAuthorityServer({
    port: 0,
    authority: {
      now: clock.now,
      approvalTtlSeconds: 120,
      policy: [{ id: 'big-refunds', effect: 'require_approval', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } }, reason: 'refunds of 100 or more need a human' }],
    },
  })
  const grantor = Ed25519Key.generate()
  a = Ed25519Key.generate()
  approver = Ed25519Key.generate()
  await server.authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await server.authority.registerAgent({ did: a.did, name: 'agent-a' })
  await server.authority.registerAgent({ did: approver.did, name: 'bob', role: 'approver' })
  root = (await server.authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })).token
  client = createHttpAuthorityClient({ issuer: server.url, key: a })
})
afterAll(() => server.close())

function decide(id: string, action: 'approve' | 'deny', who: Ed25519Key, body?: unknown): Promise<Response> {
  return fetch(`${server.url}/approvals/${id}/${action}`, {
    method: 'POST',
    headers: { authorization: `MandateAssertion ${createClientAssertion(who, { clientId: who.did, audience: server.url })}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  })
}

async function needApproval(amount: number): Promise<string> {
  const res = await client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount } })
  expect(res.status).toBe('approval_required')
  if (res.status !== 'approval_required') throw new Error('unreachable')
  expect(res.reason).toBeTruthy()
  return res.approvalId
}

describe('approvals over HTTP', () => {
  it('approve round trip via the SSE event stream; the credential names the approval; one use only', async () => {
    const id = await needApproval(200)
    // a raw SSE reader sees the pending state, then the decision, then the stream closes
    const sse = await fetch(`${server.url}/approvals/${id}/events`, { headers: { authorization: `MandateAssertion ${createClientAssertion(a, { clientId: a.did, audience: server.url })}` } })
    expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const text = sse.text()
    const waiting = client.waitForApproval(id, { timeoutMs: 10_000 })
    // the requesting agent can never approve its own call
    const self = await fetch(`${server.url}/approvals/${id}/approve`, { method: 'POST', headers: { authorization: `MandateAssertion ${createClientAssertion(a, { clientId: a.did, audience: server.url })}` } })
    expect(self.status).toBe(403)
    await new Promise((r) => setTimeout(r, 50))
    const ok = await decide(id, 'approve', approver)
    expect(ok.status).toBe(200)
    expect(await waiting).toEqual({ status: 'approved', approver: approver.did })
    const events = await text
    expect(events).toMatch(/event: status\ndata: .*"status":"pending"/)
    expect(events).toMatch(/event: status\ndata: .*"status":"approved"/)

    const issued = await client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 200 }, approvalId: id })
    expect(issued.status).toBe('issued')
    if (issued.status !== 'issued') return
    const claims = decodeMandateUnverified(issued.token).payload
    expect(claims.approval).toMatchObject({ id, approver: approver.did })
    expect(typeof (claims.approval as { approved_at: number }).approved_at).toBe('number')

    await expect(client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 200 }, approvalId: id })).rejects.toMatchObject({ code: 'INVALID_GRANT' })
  })

  it('changed arguments need a new approval', async () => {
    const id = await needApproval(300)
    await decide(id, 'approve', approver)
    const before = await server.authority.countMandates()
    await expect(client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 301 }, approvalId: id })).rejects.toMatchObject({ code: 'INVALID_GRANT', message: expect.stringMatching(/different call/) })
    expect(await server.authority.countMandates()).toBe(before)
    const fresh = await needApproval(301)
    expect(fresh).not.toBe(id)
  })

  it('deny path, learned by long poll', async () => {
    const id = await needApproval(150)
    const auth = () => ({ authorization: `MandateAssertion ${createClientAssertion(a, { clientId: a.did, audience: server.url })}` })
    const poll = fetch(`${server.url}/approvals/${id}?wait=10`, { headers: auth() }).then((r) => r.json() as Promise<Record<string, unknown>>)
    await new Promise((r) => setTimeout(r, 50))
    expect((await decide(id, 'deny', approver, { reason: 'not this customer' })).status).toBe(200)
    expect(await poll).toMatchObject({ id, status: 'denied', decided_by: approver.did, decision_reason: 'not this customer' })
    await expect(client.waitForApproval(id)).resolves.toEqual({ status: 'denied', approver: approver.did, reason: 'not this customer' })
    await expect(client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 150 }, approvalId: id })).rejects.toMatchObject({ code: 'APPROVAL_DENIED' })
    expect((await decide(id, 'approve', approver)).status).toBe(400)
  })

  it('small calls need no approval; approvers list pending approvals; agents cannot', async () => {
    expect((await client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 5 } })).status).toBe('issued')
    const id = await needApproval(120)
    const list = await fetch(`${server.url}/approvals?status=pending`, { headers: { authorization: `MandateAssertion ${createClientAssertion(approver, { clientId: approver.did, audience: server.url })}` } })
    expect(((await list.json()) as { approvals: Array<{ id: string }> }).approvals.map((x) => x.id)).toContain(id)
    const denied = await fetch(`${server.url}/approvals?status=pending`, { headers: { authorization: `MandateAssertion ${createClientAssertion(a, { clientId: a.did, audience: server.url })}` } })
    expect(denied.status).toBe(403)
  })

  it('an approval decided by an approver disabled or revoked since authorizes nothing more', async () => {
    for (const how of ['disable', 'revoke'] as const) {
      const p = Ed25519Key.generate()
      await server.authority.registerAgent({ did: p.did, name: `approver-${how}`, role: 'approver' })
      const id = await needApproval(how === "disable" ? 410 : 411)
      expect((await decide(id, 'approve', p)).status).toBe(200)
      if (how === 'disable') await server.authority.disableAgent(p.did, { reason: 'key leaked' })
      else await server.authority.revoke({ agent: p.did }, { reason: 'key leaked' })
      const before = await server.authority.countMandates()
      await expect(client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: how === "disable" ? 410 : 411 }, approvalId: id }))
        .rejects.toMatchObject({ code: 'APPROVAL_DENIED', message: expect.stringMatching(/approver .* disabled or revoked/) })
      expect(await server.authority.countMandates()).toBe(before)
    }
  })

  it('an approval decided by an approver disabled and enabled again since authorizes nothing (re-enabling does not revive it)', async () => {
    const p = Ed25519Key.generate()
    await server.authority.registerAgent({ did: p.did, name: 'approver-revived', role: 'approver' })
    const id = await needApproval(412)
    expect((await decide(id, 'approve', p)).status).toBe(200)
    clock.advance(1_000)
    await server.authority.disableAgent(p.did, { reason: 'key leaked' })
    await server.authority.enableAgent(p.did, { reason: 'new laptop, same key (mistake)' })
    const before = await server.authority.countMandates()
    await expect(client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 412 }, approvalId: id }))
      .rejects.toMatchObject({ code: 'APPROVAL_DENIED', message: expect.stringMatching(/approver .* disabled or revoked/) })
    expect(await server.authority.countMandates()).toBe(before)
    // an approval this approver decides after being enabled again is good
    const fresh = await needApproval(413)
    expect((await decide(fresh, 'approve', p)).status).toBe(200)
    expect((await client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 413 }, approvalId: fresh })).status).toBe('issued')
  })

  it('approvals expire (injectable clock) and the waiting agent learns it by event', async () => {
    const id = await needApproval(400)
    const waiting = client.waitForApproval(id, { timeoutMs: 10_000 })
    await new Promise((r) => setTimeout(r, 50))
    clock.advance(121_000)
    expect(await waiting).toEqual({ status: 'expired' })
    expect((await decide(id, 'approve', approver)).status).toBe(401) // the approver's assertion is now stale too
    const view = await server.authority.approvals.get(id)
    expect(view.status).toBe('expired')
  })
})

describe('an approved approval', () => {
  it('is redeemable until its expiry, not for the rest of the parent mandate', async () => {
    // its own Authority on the real clock (the client's assertions are on it too), a 1 s window
    const srv = await createAuthorityServer({ port: 0, authority: { approvalTtlSeconds: 1, policy: [{ effect: 'require_approval', tool: 'billing.refund' }] } })
    try {
      const grantor = Ed25519Key.generate()
      const agent = Ed25519Key.generate()
      const human = Ed25519Key.generate()
      await srv.authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
      await srv.authority.registerAgent({ did: agent.did, name: 'agent' })
      await srv.authority.registerAgent({ did: human.did, name: 'bob', role: 'approver' })
      const mandate = (await srv.authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })).token
      const c = createHttpAuthorityClient({ issuer: srv.url, key: agent })
      const call = { mandate, audience: AUD, tool: 'billing.refund', arguments: { amount: 20 } }
      const asked = await c.callCredential(call)
      if (asked.status !== 'approval_required') throw new Error(`expected approval_required, got ${asked.status}`)
      const ok = await fetch(`${srv.url}/approvals/${asked.approvalId}/approve`, { method: 'POST', headers: { authorization: `MandateAssertion ${createClientAssertion(human, { clientId: human.did, audience: srv.url })}` } })
      expect(ok.status).toBe(200)
      await new Promise((r) => setTimeout(r, 1_100))
      await expect(c.callCredential({ ...call, approvalId: asked.approvalId })).rejects.toMatchObject({ code: 'APPROVAL_EXPIRED' })
    } finally {
      await srv.close()
    }
  })
})

describe('approval decisions and waits are bounded', () => {
  let srv: AuthorityServer
  let agent: Ed25519Key, human: Ed25519Key, admin: Ed25519Key, grantor: Ed25519Key
  const auth = (k: Ed25519Key) => ({ authorization: `MandateAssertion ${createClientAssertion(k, { clientId: k.did, audience: srv.url })}` })
  const post = (path: string, k: Ed25519Key, body: unknown) => fetch(`${srv.url}${path}`, { method: 'POST', headers: { ...auth(k), 'content-type': 'application/json' }, body: JSON.stringify(body) })
  let amount = 100
  async function ask(): Promise<{ id: string; mandate: string }> {
    const mandate = (await srv.authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })).token
    const res = await createHttpAuthorityClient({ issuer: srv.url, key: agent }).callCredential({ mandate, audience: AUD, tool: 'billing.refund', arguments: { amount: amount++ } })
    if (res.status !== 'approval_required') throw new Error(`expected approval_required, got ${res.status}`)
    return { id: res.approvalId, mandate }
  }

  beforeAll(async () => {
    srv = await createAuthorityServer({ port: 0, authority: { policy: [{ effect: 'require_approval', tool: 'billing.refund' }] } })
    grantor = Ed25519Key.generate()
    agent = Ed25519Key.generate()
    human = Ed25519Key.generate()
    admin = Ed25519Key.generate()
    await srv.authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await srv.authority.registerAgent({ did: agent.did, name: 'agent' })
    await srv.authority.registerAgent({ did: human.did, name: 'bob', role: 'approver' })
    await srv.authority.registerAgent({ did: admin.did, name: 'root', role: 'admin' })
  })
  afterAll(() => srv.close())

  it('a decision reason with controls, bidi or invisible characters is refused (as the dashboard does); tab and newline are kept', async () => {
    const { id } = await ask()
    for (const reason of ['ok \u202Edeifirev', 'a\u200Bb', 'line\r\nfeed', 'bell\u0007', 'c1\u0085', 'sep\u2028x', 'x'.repeat(513), 'fill\u3164er', 'cgj\u034F', 'khmer\u17B5', 'braille\u2800blank']) {
      const res = await post(`/approvals/${id}/approve`, human, { reason })
      expect(res.status, JSON.stringify(reason)).toBe(400)
      expect(await res.json()).toMatchObject({ mandate_code: 'INVALID_REQUEST' })
    }
    expect((await srv.authority.approvals.get(id)).status).toBe('pending')
    await expect(srv.authority.approvals.deny(id, { approver: human.did, reason: 'no \u202Eway' })).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    const ok = await post(`/approvals/${id}/deny`, human, { reason: 'first line\n\tsecond line ❤️' })
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ status: 'denied', decision_reason: 'first line\n\tsecond line ❤️' })
  })

  it('revocation and agent changes refuse the same reasons', async () => {
    const other = Ed25519Key.generate()
    await srv.authority.registerAgent({ did: other.did, name: 'other' })
    const disable = await post(`/admin/agents/${encodeURIComponent(other.did)}/disable`, admin, { reason: 'leak \u202Etxt.exe' })
    expect(disable.status).toBe(400)
    expect((await srv.authority.getAgent(other.did))?.disabled).toBe(false)
    const revoke = await post('/admin/revocations', admin, { agent: other.did, reason: 'x\u2066y' })
    expect(revoke.status).toBe(400)
    await expect(srv.authority.revoke({ agent: other.did }, { reason: 'x\u0000' })).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    await expect(srv.authority.disableAgent(other.did, { reason: '\u061Cx' })).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    expect((await srv.authority.getAgent(other.did))?.disabled).toBe(false)
  })

  it('an approval whose task was revoked can be denied, never approved', async () => {
    for (const target of ['txn', 'mandate'] as const) {
      const { id } = await ask()
      const a = await srv.authority.approvals.get(id)
      const rec = await srv.authority.store.getApproval(id)
      await srv.authority.revoke(target === 'txn' ? { txn: a.txn } : { mandate: rec?.parent as string }, { reason: 'stop' })
      const res = await post(`/approvals/${id}/approve`, human, {})
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ mandate_code: 'INVALID_REQUEST', error_description: expect.stringMatching(/revoked/) })
      expect((await srv.authority.approvals.get(id)).status).toBe('pending')
      expect((await post(`/approvals/${id}/deny`, human, { reason: 'revoked' })).status).toBe(200)
    }
  })

  it(`a principal holds at most ${MAX_WAITS_PER_PRINCIPAL} open waits (long polls and event streams); closing one frees its slot`, async () => {
    const { id } = await ask()
    const aborts: AbortController[] = []
    const open = async (path: string) => {
      const ac = new AbortController()
      aborts.push(ac)
      return fetch(`${srv.url}${path}`, { headers: auth(agent), signal: ac.signal })
    }
    // event streams answer their headers at once; long polls answer only when they end
    const streams = await Promise.all(Array.from({ length: MAX_WAITS_PER_PRINCIPAL / 2 }, () => open(`/approvals/${id}/events`)))
    for (const s of streams) expect(s.status).toBe(200)
    const polls = Array.from({ length: MAX_WAITS_PER_PRINCIPAL / 2 }, () => open(`/approvals/${id}?wait=30`).catch(() => undefined))
    await new Promise((r) => setTimeout(r, 200))
    const over = await fetch(`${srv.url}/approvals/${id}?wait=30`, { headers: auth(agent) })
    expect(over.status).toBe(503)
    expect(await over.json()).toMatchObject({ mandate_code: 'CAPACITY_EXCEEDED' })
    expect((await fetch(`${srv.url}/approvals/${id}/events`, { headers: auth(agent) })).status).toBe(503)
    // a plain read takes no slot, and another principal has its own
    expect((await fetch(`${srv.url}/approvals/${id}`, { headers: auth(agent) })).status).toBe(200)
    const other = new AbortController()
    const approverStream = await fetch(`${srv.url}/approvals/${id}/events`, { headers: auth(human), signal: other.signal })
    expect(approverStream.status).toBe(200)
    other.abort()
    for (const ac of aborts.splice(0)) ac.abort()
    await Promise.all(polls)
    await new Promise((r) => setTimeout(r, 200))
    const again = await open(`/approvals/${id}?wait=1`)
    expect(again.status).toBe(200)
    for (const ac of aborts) ac.abort()
  })
})
