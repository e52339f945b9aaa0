/** Approval round trip over HTTP: approval_required, SSE event stream, long poll, approve, deny, reuse, changed arguments, expiry. */
import { createClientAssertion, createHttpAuthorityClient, decodeMandateUnverified, Ed25519Key, type AuthorityClient } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, type AuthorityServer } from '../src/index.js'
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
