/**
 * Revoking (or disabling) a principal stops every action of it, at every endpoint and in process:
 * task grants it makes, exchanges, approval decisions, admin calls, reports it sends as a resource,
 * introspection and RFC 7009 revocation. The registry reads truthfully afterwards (status, when,
 * why), revocation is final for that did, and disable/enable are reversible and audited.
 * Real HTTP server on 127.0.0.1 with a SQLite file; oauth4webapi for the grantor's task grant.
 */
import { createClientAssertion, createProof, Ed25519Key, MandateError, randomId } from '@mandate/core'
import * as oauth from 'oauth4webapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, openSqliteStore, type AuthorityServer } from '../src/index.js'
import { AUD, principal, tempDir, TOOLS, type Principal } from './helpers.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const TASK = 'urn:mandate:grant-type:task'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const CALL = 'urn:mandate:token-type:call-credential'
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const insecure = { [oauth.allowInsecureRequests]: true } as const

let server: AuthorityServer
let as: oauth.AuthorizationServer
const tmp = tempDir()

beforeAll(async () => {
  server = await createAuthorityServer({
    port: 0, hostname: '127.0.0.1',
    authority: { store: openSqliteStore(`${tmp.dir}/authority.db`), policy: [{ id: 'refunds', effect: 'require_approval', on: ['call'], tool: 'billing.refund' }] },
  })
  // a standing admin: the admins these tests revoke or disable are never the last one (which is refused: last_admin.test.ts)
  await server.authority.registerAgent({ did: Ed25519Key.generate().did, name: 'standing-admin', role: 'admin' })
  const issuer = new URL(server.url)
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }))
})
afterAll(async () => {
  await server.close()
  tmp.cleanup()
})

type Role = 'agent' | 'grantor' | 'approver' | 'admin' | 'resource'
const authority = () => server.authority

async function registered(role: Role, name = `${role}-${randomId().slice(0, 6)}`): Promise<Principal> {
  const p = await principal()
  await authority().registerAgent({ did: p.key.did, name, role })
  return p
}

const assertion = (k: Ed25519Key) => createClientAssertion(k, { clientId: k.did, audience: server.url })
const asHeader = (k: Ed25519Key) => ({ authorization: `MandateAssertion ${assertion(k)}`, 'content-type': 'application/json' })

function form(url: string, fields: string[][], k: Ed25519Key, dpop = true): Promise<Response> {
  const body = new URLSearchParams([...fields, ['client_assertion_type', JWT_BEARER], ['client_assertion', assertion(k)]])
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }
  if (dpop) headers.dpop = createProof(k, { method: 'POST', url })
  return fetch(url, { method: 'POST', headers, body })
}

async function expectInvalidClient(res: Response, message: RegExp): Promise<void> {
  expect(res.status).toBe(401)
  const body = (await res.json()) as { error: string; mandate_code: string; error_description: string }
  expect(body).toMatchObject({ error: 'invalid_client', mandate_code: 'INVALID_CLIENT' })
  expect(body.error_description).toMatch(message)
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(MandateError.is(err), `expected a MandateError ${code}, got ${String(err)}`).toBe(true)
  expect((err as MandateError).code).toBe(code)
  if (message) expect((err as MandateError).message).toMatch(message)
}

/** A grantor, an agent and a live root mandate for the agent. */
async function task() {
  const grantor = await registered('grantor')
  const agent = await registered('agent')
  const root = await authority().grant({ grantor: grantor.key.did, subject: 'alice', agent: agent.key.did, audiences: [AUD], tools: TOOLS, maxDepth: 2 })
  return { grantor, agent, root }
}

const countType = async (type: 'grant' | 'exchange' | 'approval.approved' | 'call.report') => (await authority().audit.query({ type, limit: 10_000 })).length

for (const how of ['revoked', 'disabled'] as const) {
  const stop = async (did: string) => {
    if (how === 'revoked') await authority().revoke({ agent: did }, { reason: 'key leaked' })
    else await authority().disableAgent(did, { reason: 'on leave' })
  }
  const why = how === 'revoked' ? /revoked/ : /disabled/

  describe(`a ${how} principal is refused for every role`, () => {
    it('grantor: no task grant over HTTP (oauth4webapi) nor in process', async () => {
      const grantor = await registered('grantor')
      const agent = await registered('agent')
      const newSubject = await registered('agent')
      await stop(grantor.key.did)
      const grants = await countType('grant')
      const res = await oauth.genericTokenEndpointRequest(as, grantor.client, grantor.auth, TASK, [
        ['subject', 'mallory'], ['agent', newSubject.key.did], ['resource', AUD], ['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['*'] }])],
      ], insecure)
      await expectInvalidClient(res, why)
      await rejectsWith(authority().grant({ grantor: grantor.key.did, subject: 'mallory', agent: agent.key.did, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['*'] }] }), 'UNAUTHORIZED_CLIENT', why)
      expect(await countType('grant')).toBe(grants)
    })

    it('agent: no exchange over HTTP, nor in process (signed and key clients, authority.exchange)', async () => {
      const { agent, root } = await task()
      const other = await registered('agent')
      await stop(agent.key.did)
      const exchanges = await countType('exchange')
      const del = await form(`${server.url}/token`, [['grant_type', EXCHANGE], ['subject_token', root.token], ['subject_token_type', AT], ['requested_actor', other.key.did]], agent.key)
      await expectInvalidClient(del, why)
      const call = await form(`${server.url}/token`, [['grant_type', EXCHANGE], ['subject_token', root.token], ['subject_token_type', AT], ['requested_token_type', CALL], ['resource', AUD], ['tool', 'billing.get'], ['tool_arguments', '{}']], agent.key)
      await expectInvalidClient(call, why)
      for (const authentication of ['signed', 'key'] as const) {
        await rejectsWith(authority().clientFor(agent.key, { authentication }).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: {} }), 'INVALID_CLIENT', why)
      }
      await rejectsWith(authority().exchange(agent.key, { kind: 'delegation', subjectToken: root.token, requestedActor: other.key.did }), 'INVALID_CLIENT', why)
      expect(await countType('exchange')).toBe(exchanges)
    })

    it('approver: no decision over HTTP nor in process; cannot read approvals', async () => {
      const { agent, root } = await task()
      const approver = await registered('approver')
      const pending = await authority().clientFor(agent.key).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 5 } })
      if (pending.status !== 'approval_required') throw new Error('expected an approval')
      await stop(approver.key.did)
      const approved = await countType('approval.approved')
      const res = await fetch(`${server.url}/approvals/${pending.approvalId}/approve`, { method: 'POST', headers: asHeader(approver.key), body: '{}' })
      await expectInvalidClient(res, why)
      await expectInvalidClient(await fetch(`${server.url}/approvals`, { headers: asHeader(approver.key) }), why)
      await rejectsWith(authority().approvals.approve(pending.approvalId, { approver: approver.key.did }), 'ACCESS_DENIED', why)
      expect(await countType('approval.approved')).toBe(approved)
      expect((await authority().approvals.get(pending.approvalId)).status).toBe('pending')
    })

    it('agent waiting for its approval in process is refused', async () => {
      const { agent, root } = await task()
      const pending = await authority().clientFor(agent.key).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 6 } })
      if (pending.status !== 'approval_required') throw new Error('expected an approval')
      await stop(agent.key.did)
      await rejectsWith(authority().clientFor(agent.key).waitForApproval(pending.approvalId, { timeoutMs: 2000 }), 'INVALID_CLIENT', why)
    })

    it('admin: no admin call (list, register, revoke, disable, rotate, audit)', async () => {
      const admin = await registered('admin')
      await stop(admin.key.did)
      const victim = Ed25519Key.generate()
      for (const [method, path, body] of [
        ['GET', '/admin/agents', undefined], ['POST', '/admin/agents', JSON.stringify({ did: victim.did, name: 'x', role: 'admin' })],
        ['POST', '/admin/revocations', JSON.stringify({ txn: 'whatever', preemptive: true })], ['POST', `/admin/agents/${encodeURIComponent(victim.did)}/disable`, '{}'],
        ['POST', '/admin/keys/rotate', undefined], ['GET', '/audit', undefined], ['GET', '/audit/verify', undefined],
      ] as const) {
        const res = await fetch(`${server.url}${path}`, { method, headers: asHeader(admin.key), ...(body !== undefined ? { body } : {}) })
        await expectInvalidClient(res, why)
      }
      expect(await authority().getAgent(victim.did)).toBeUndefined()
    })

    it('resource (and agent) reports: refused over HTTP and in process', async () => {
      const rs = await registered('resource')
      const { agent } = await task()
      await stop(rs.key.did)
      await stop(agent.key.did)
      const reports = await countType('call.report')
      const report = { mandateId: 'm'.repeat(22), txn: 't', tool: 'billing.get', audience: AUD, argumentsDigest: 'd', decision: 'allowed', actorChain: [agent.key.did], subject: 'alice' }
      await expectInvalidClient(await fetch(`${server.url}/audit/reports`, { method: 'POST', headers: asHeader(rs.key), body: JSON.stringify(report) }), why)
      await expectInvalidClient(await fetch(`${server.url}/audit/reports`, { method: 'POST', headers: asHeader(agent.key), body: JSON.stringify(report) }), why)
      await rejectsWith(authority().clientFor(rs.key).reportCall!(report as never), 'INVALID_CLIENT', why)
      await rejectsWith(authority().reportCall(report as never, { reporter: rs.key.did }), 'INVALID_CLIENT', why)
      expect(await countType('call.report')).toBe(reports)
    })

    it('introspection and RFC 7009 revocation callers', async () => {
      const { agent, root } = await task()
      const rs = await registered('resource')
      await stop(rs.key.did)
      await stop(agent.key.did)
      await expectInvalidClient(await form(`${server.url}/introspect`, [['token', root.token]], rs.key, false), why)
      await expectInvalidClient(await form(`${server.url}/revoke`, [['token', root.token]], agent.key, false), why)
      // in process, a record read before the revocation does not carry its holder through
      const stale = { ...(await authority().getAgent(rs.key.did))!, status: 'enabled' as const, disabled: false }
      await rejectsWith(authority().introspect(root.token, stale), 'INVALID_CLIENT', why)
      await rejectsWith(authority().revokeToken(root.token, { ...stale, did: agent.key.did }), 'INVALID_CLIENT', why)
    })
  })
}

describe('the registry tells the truth about revoked and disabled principals', () => {
  it('revoking an agent also disables it, records when and why, and is final for that did', async () => {
    const a = await registered('agent', 'leaky')
    const before = Date.now()
    await authority().revoke({ agent: a.key.did }, { reason: 'key leaked' })
    const rec = await authority().getAgent(a.key.did)
    expect(rec).toMatchObject({ status: 'revoked', disabled: true, revokedReason: 'key leaked' })
    expect(rec?.revokedAt).toBeGreaterThanOrEqual(before)
    expect(rec?.disabledAt).toBe(rec?.revokedAt)
    expect((await authority().listAgents()).find((x) => x.did === a.key.did)?.status).toBe('revoked')
    await rejectsWith(authority().enableAgent(a.key.did, { reason: 'oops' }), 'INVALID_REQUEST', /revoked.*new key/)
    await rejectsWith(authority().registerAgent({ did: a.key.did, name: 'again' }), 'INVALID_REQUEST')
    expect((await authority().getAgent(a.key.did))?.status).toBe('revoked')
  })

  it('disable then enable: audited with the reason; the agent works again', async () => {
    const { agent, root } = await task()
    const off = await authority().disableAgent(agent.key.did, { by: 'ops', reason: 'on leave' })
    expect(off).toMatchObject({ status: 'disabled', disabled: true, disabledReason: 'on leave' })
    await rejectsWith(authority().clientFor(agent.key).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: {} }), 'INVALID_CLIENT')
    const on = await authority().enableAgent(agent.key.did, { by: 'ops', reason: 'back' })
    expect(on).toMatchObject({ status: 'enabled', disabled: false })
    expect(on.disabledAt).toBeUndefined()
    expect(on.disabledReason).toBeUndefined()
    const res = await authority().clientFor(agent.key).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } })
    expect(res.status).toBe('issued')
    const recs = await authority().audit.query({ agent: agent.key.did, limit: 1000 })
    expect(recs.find((r) => r.type === 'agent.disabled')?.fields).toMatchObject({ reason: 'on leave', by: 'ops' })
    expect(recs.find((r) => r.type === 'agent.enabled')?.fields).toMatchObject({ reason: 'back', by: 'ops' })
    await rejectsWith(authority().enableAgent(agent.key.did), 'INVALID_REQUEST', /not disabled/)
    await rejectsWith(authority().enableAgent(Ed25519Key.generate().did), 'NOT_FOUND')
  })

  it('admin HTTP: enable endpoint; list shows status; enabling a revoked agent is refused', async () => {
    const admin = await registered('admin')
    const a = await registered('agent')
    const b = await registered('agent')
    const dis = await fetch(`${server.url}/admin/agents/${encodeURIComponent(a.key.did)}/disable`, { method: 'POST', headers: asHeader(admin.key), body: JSON.stringify({ reason: 'paused' }) })
    expect(await dis.json()).toMatchObject({ status: 'disabled', disabledReason: 'paused' })
    const en = await fetch(`${server.url}/admin/agents/${encodeURIComponent(a.key.did)}/enable`, { method: 'POST', headers: asHeader(admin.key), body: JSON.stringify({ reason: 'resumed' }) })
    expect(en.status).toBe(200)
    expect(await en.json()).toMatchObject({ status: 'enabled' })
    await authority().revoke({ agent: b.key.did }, { reason: 'stolen' })
    const refused = await fetch(`${server.url}/admin/agents/${encodeURIComponent(b.key.did)}/enable`, { method: 'POST', headers: asHeader(admin.key), body: '{}' })
    expect(refused.status).toBe(400)
    expect(await refused.json()).toMatchObject({ mandate_code: 'INVALID_REQUEST' })
    const list = (await (await fetch(`${server.url}/admin/agents`, { headers: asHeader(admin.key) })).json()) as { agents: Array<{ did: string; status: string; revokedReason?: string }> }
    expect(list.agents.find((x) => x.did === a.key.did)?.status).toBe('enabled')
    expect(list.agents.find((x) => x.did === b.key.did)).toMatchObject({ status: 'revoked', revokedReason: 'stolen' })
  })
})

describe('approval decisions over HTTP', () => {
  it('refuse members a decision does not define (as the admin endpoints do)', async () => {
    const { agent, root } = await task()
    const approver = await registered('approver')
    const pending = await authority().clientFor(agent.key).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 7 } })
    if (pending.status !== 'approval_required') throw new Error('expected an approval')
    const res = await fetch(`${server.url}/approvals/${pending.approvalId}/approve`, { method: 'POST', headers: asHeader(approver.key), body: JSON.stringify({ reason: 'ok', approver: 'did:key:zSomeoneElse' }) })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ mandate_code: 'INVALID_REQUEST' })
    expect((await authority().approvals.get(pending.approvalId)).status).toBe('pending')
  })
})

describe('revoking something that does not exist', () => {
  it('is NOT_FOUND (HTTP 404) unless pre-emptive is asked for; RFC 7009 /revoke still answers 200', async () => {
    const admin = await registered('admin')
    const post = (body: unknown) => fetch(`${server.url}/admin/revocations`, { method: 'POST', headers: asHeader(admin.key), body: JSON.stringify(body) })
    for (const target of [{ txn: 'no-such-task' }, { mandate: 'no-such-mandate' }, { agent: Ed25519Key.generate().did }]) {
      const res = await post({ ...target, reason: 'typo' })
      expect(res.status, JSON.stringify(target)).toBe(404)
      expect(await res.json()).toMatchObject({ mandate_code: 'NOT_FOUND' })
      await rejectsWith(authority().revoke(target), 'NOT_FOUND')
    }
    expect(await authority().revocationStatus()).not.toMatchObject({ tasks: expect.arrayContaining(['no-such-task']) })
    const pre = await post({ txn: 'future-task', preemptive: true, reason: 'planned' })
    expect(pre.status).toBe(200)
    expect(await pre.json()).toMatchObject({ preemptive: true, revoked: [{ kind: 'task', id: 'future-task' }] })
    const future = Ed25519Key.generate()
    expect(await authority().revoke({ agent: future.did }, { preemptive: true })).toMatchObject({ preemptive: true, revoked: [{ kind: 'agent', id: future.did }] })
    // a pre-emptively revoked did can never be registered
    await rejectsWith(authority().registerAgent({ did: future.did, name: 'late' }), 'INVALID_REQUEST', /revoked/)
    // a known target is not pre-emptive, even when the flag is set
    const { root } = await task()
    const known = await post({ txn: root.claims.txn, preemptive: true })
    expect(await known.json()).toMatchObject({ preemptive: false, revoked: [{ kind: 'task', id: root.claims.txn }] })
    // revoking it again: nothing new, and it says so
    const again = await post({ txn: root.claims.txn })
    expect(await again.json()).toMatchObject({ preemptive: false, revoked: [] })
    expect((await post({ txn: 'x', preemptive: 'yes' })).status).toBe(400)
    // RFC 7009: unknown tokens are answered 200
    const rs = await registered('resource')
    expect((await form(`${server.url}/revoke`, [['token', 'not-a-token']], rs.key, false)).status).toBe(200)
  })
})
