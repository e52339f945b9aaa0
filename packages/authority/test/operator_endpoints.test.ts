/**
 * The endpoints behind the operator CLI (`mandate audit query`, `revocations list`, `approvals
 * watch`, `doctor`), over real HTTP on 127.0.0.1: strict audit filters with paging, the revocation
 * listing, the approvals event stream (with resume by Last-Event-ID and a bound on streams), and
 * the store health answer.
 */
import { createClientAssertion, createHttpAuthorityClient, Ed25519Key, type AuthorityClient } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, type AuthorityServer } from '../src/index.js'
import { AUD, TOOLS } from './helpers.js'

let server: AuthorityServer
let admin: Ed25519Key, approver: Ed25519Key, agent: Ed25519Key, grantor: Ed25519Key
let root: { token: string; txn: string }
let client: AuthorityClient

const authz = (who: Ed25519Key) => ({ authorization: `MandateAssertion ${createClientAssertion(who, { clientId: who.did, audience: server.url })}` })
const get = async <T = Record<string, unknown>>(path: string, who = admin): Promise<{ status: number; body: T }> => {
  const res = await fetch(`${server.url}${path}`, { headers: authz(who) })
  return { status: res.status, body: (await res.json()) as T }
}
type Records = { records: Array<{ seq: number; type: string; fields: Record<string, unknown> }>; next?: string }

beforeAll(async () => {
  server = await createAuthorityServer({ port: 0, authority: { policy: [{ effect: 'require_approval', on: 'call', tool: 'billing.refund' }] } })
  admin = Ed25519Key.generate()
  approver = Ed25519Key.generate()
  agent = Ed25519Key.generate()
  grantor = Ed25519Key.generate()
  await server.authority.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
  await server.authority.registerAgent({ did: approver.did, name: 'bob', role: 'approver' })
  await server.authority.registerAgent({ did: agent.did, name: 'worker' })
  await server.authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  const g = await server.authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })
  root = { token: g.token, txn: g.claims.txn }
  client = createHttpAuthorityClient({ issuer: server.url, key: agent })
  await client.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.lookup', arguments: { amount: 1 } })
  await server.authority.reportCall({ mandateId: 'm1', txn: root.txn, tool: 'billing.lookup', audience: AUD, argumentsDigest: 'x'.repeat(43), decision: 'refused', errorCode: 'SCOPE_VIOLATION', actorChain: [agent.did], subject: 'alice' }, { reporter: admin.did })
})
afterAll(() => server.close())

describe('GET /audit filters', () => {
  it('filters by tool, decision and type server-side', async () => {
    const byTool = await get<Records>('/audit?tool=billing.lookup')
    expect(byTool.status).toBe(200)
    expect(byTool.body.records.length).toBeGreaterThanOrEqual(2)
    expect(byTool.body.records.every((r) => r.fields.tool === 'billing.lookup')).toBe(true)
    const refused = await get<Records>('/audit?decision=refused')
    expect(refused.body.records.map((r) => r.type)).toContain('call.report')
    expect(refused.body.records.every((r) => r.type === 'refusal' || r.fields.decision === 'refused')).toBe(true)
    const issued = await get<Records>(`/audit?decision=allowed&txn=${root.txn}`)
    expect(issued.body.records.map((r) => r.type)).toEqual(['grant', 'exchange'])
    const types = await get<Records>('/audit?type=agent.registered')
    expect(types.body.records).toHaveLength(4)
  })

  it('pages with limit and the after cursor, and says when there is no next page', async () => {
    const all = (await get<Records>('/audit')).body
    expect(all.next).toBeUndefined()
    const first = (await get<Records>('/audit?limit=2')).body
    expect(first.records.map((r) => r.seq)).toEqual(all.records.slice(0, 2).map((r) => r.seq))
    expect(first.next).toBe(String(all.records[1]!.seq))
    const second = (await get<Records>(`/audit?limit=2&after=${first.next}`)).body
    expect(second.records.map((r) => r.seq)).toEqual(all.records.slice(2, 4).map((r) => r.seq))
    const byType = (await get<Records>('/audit?type=agent.registered&limit=3')).body
    expect(byType.records).toHaveLength(3)
    const rest = (await get<Records>(`/audit?type=agent.registered&limit=3&after=${byType.next}`)).body
    expect(rest.records).toHaveLength(1)
    expect(rest.next).toBeUndefined()
  })

  it('refuses unknown, repeated and malformed parameters (never ignores them)', async () => {
    for (const q of ['tol=x', 'decision=maybe', 'type=nope', 'tool=a&tool=b', 'after=-1', 'after=01', 'limit=abc', 'since=1e3', 'tool=']) {
      const r = await get<{ error: string }>(`/audit?${q}`)
      expect(r.status, q).toBe(400)
      expect(r.body.error).toBe('invalid_request')
    }
    expect((await get('/audit', approver)).status).toBe(403)
  })
})

describe('GET /admin/revocations', () => {
  it('lists entries with reason, by and at, filtered by kind, paged by the seq cursor', async () => {
    await server.authority.revoke({ txn: 'task-1' }, { by: admin.did, reason: 'cancelled', preemptive: true })
    await server.authority.revoke({ mandate: 'jti-1' }, { by: admin.did, reason: 'leaked', preemptive: true })
    await server.authority.revoke({ txn: 'task-2' }, { by: admin.did, preemptive: true })
    const all = await get<{ revocations: Array<{ seq: number; kind: string; id: string; reason?: string; by?: string; at: number }>; next?: string }>('/admin/revocations')
    expect(all.status).toBe(200)
    expect(all.body.revocations.map((e) => [e.kind, e.id])).toEqual([['task', 'task-1'], ['mandate', 'jti-1'], ['task', 'task-2']])
    expect(all.body.revocations[0]).toMatchObject({ reason: 'cancelled', by: admin.did })
    expect(all.body.next).toBeUndefined()
    const tasks = await get<{ revocations: Array<{ id: string }>; next?: string }>('/admin/revocations?kind=task&limit=1')
    expect(tasks.body.revocations.map((e) => e.id)).toEqual(['task-1'])
    const next = await get<{ revocations: Array<{ id: string }>; next?: string }>(`/admin/revocations?kind=task&limit=1&after=${tasks.body.next}`)
    expect(next.body.revocations.map((e) => e.id)).toEqual(['task-2'])
    expect(next.body.next).toBeUndefined()
    for (const q of ['kind=txn', 'since=1', 'limit=x', 'after=a']) expect((await get(`/admin/revocations?${q}`)).status, q).toBe(400)
    expect((await get('/admin/revocations', approver)).status).toBe(403)
  })
})

describe('GET /admin/health', () => {
  it('answers store health and the time for admins only', async () => {
    const r = await get<{ ok: boolean; store: { ok: boolean }; time: string }>('/admin/health')
    expect(r.status).toBe(200)
    expect(r.body.ok).toBe(true)
    expect(r.body.store.ok).toBe(true)
    expect(Math.abs(Date.parse(r.body.time) - Date.now())).toBeLessThan(60_000)
    expect((await get('/admin/health', agent)).status).toBe(403)
  })
})

/** Read SSE events off a response until `n` `approval` events arrived. */
async function readEvents(res: Response, n: number): Promise<Array<{ id: string; data: { seq: number; change: string; approval: { id: string; status: string; tool: string } } }>> {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let buf = ''
  const events: Array<{ id: string; data: { seq: number; change: string; approval: { id: string; status: string; tool: string } } }> = []
  while (events.length < n) {
    const { value, done } = await reader.read()
    if (done) break
    buf += decoder.decode(value, { stream: true })
    let end: number
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, end)
      buf = buf.slice(end + 2)
      const lines = block.split('\n')
      if (!lines.includes('event: approval')) continue
      events.push({ id: lines.find((l) => l.startsWith('id: '))!.slice(4), data: JSON.parse(lines.find((l) => l.startsWith('data: '))!.slice(6)) })
    }
  }
  await reader.cancel()
  return events
}

describe('GET /approvals/events', () => {
  it('streams new approvals and their decisions to approvers; resumes after Last-Event-ID', async () => {
    const res = await fetch(`${server.url}/approvals/events`, { headers: authz(approver) })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reading = readEvents(res, 2)
    const asked = await client.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 5 } })
    if (asked.status !== 'approval_required') throw new Error('expected an approval')
    const decided = await fetch(`${server.url}/approvals/${asked.approvalId}/deny`, { method: 'POST', headers: { ...authz(approver), 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'no' }) })
    expect(decided.status).toBe(200)
    const events = await reading
    expect(events.map((e) => [e.data.change, e.data.approval.id])).toEqual([['requested', asked.approvalId], ['denied', asked.approvalId]])
    expect(events[0]!.data.approval.tool).toBe('billing.refund')
    // a reconnect with the first event's id gets the second again, nothing lost
    const again = await fetch(`${server.url}/approvals/events`, { headers: { ...authz(approver), 'last-event-id': events[0]!.id } })
    expect((await readEvents(again, 1)).map((e) => e.data.change)).toEqual(['denied'])
  })

  it('cuts off a watcher that is disabled while its stream is open', async () => {
    const carol = Ed25519Key.generate()
    await server.authority.registerAgent({ did: carol.did, name: 'carol', role: 'approver' })
    const res = await fetch(`${server.url}/approvals/events`, { headers: authz(carol) })
    expect(res.status).toBe(200)
    await server.authority.disableAgent(carol.did, { by: admin.did, reason: 'left' })
    const asked = await client.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 6 } })
    expect(asked.status).toBe('approval_required')
    // the stream ends without sending the approval
    expect(await readEvents(res, 1)).toEqual([])
  })

  it('is for approvers and admins only, strict about its input, and bounded', async () => {
    expect((await fetch(`${server.url}/approvals/events`, { headers: authz(agent) })).status).toBe(403)
    expect((await fetch(`${server.url}/approvals/events`)).status).toBe(401)
    expect((await fetch(`${server.url}/approvals/events?x=1`, { headers: authz(approver) })).status).toBe(400)
    expect((await fetch(`${server.url}/approvals/events`, { headers: { ...authz(approver), 'last-event-id': '99999999' } })).status).toBe(400)
    const open: Response[] = []
    for (let i = 0; i < 32; i++) {
      const r = await fetch(`${server.url}/approvals/events`, { headers: authz(i % 2 ? approver : admin) })
      expect(r.status).toBe(200)
      open.push(r)
    }
    const over = await fetch(`${server.url}/approvals/events`, { headers: authz(approver) })
    expect(over.status).toBe(503)
    expect(((await over.json()) as { mandate_code: string }).mandate_code).toBe('CAPACITY_EXCEEDED')
    for (const r of open) await r.body?.cancel()
  })
})
