/**
 * Webhook notifications against a real receiver on 127.0.0.1 that verifies every signature with the
 * official `standardwebhooks` library: order per approval, retries through a receiver that is down,
 * answers 500 or hangs, delivery after a restart from the SQLite outbox, payload contents (no
 * credential, arguments only where configured), the Slack shape, strict config, the admin status.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { createClientAssertion, Ed25519Key } from '@mandate/core'
import { DatabaseSync } from '../src/store/sqlite_driver.js'
import { Webhook } from 'standardwebhooks'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthority, createAuthorityServer, openSqliteStore, type Authority, type AuthorityOptions } from '../src/index.js'
import { AUD, tempDir, TOOLS } from './helpers.js'
import { until, WebhookReceiver } from './webhook_receiver.js'

const ISSUER = 'https://authority.test'
const POLICY = [{ id: 'refunds', effect: 'require_approval' as const, tool: 'billing.refund' }]
const secret = (): string => `whsec_${randomBytes(32).toString('base64')}`
const FAST = { initialBackoffMs: 30, maxBackoffMs: 200, timeoutMs: 400, maxAttempts: 60 }

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function receiver(secrets: string[]): Promise<WebhookReceiver> {
  const r = await new WebhookReceiver(secrets).start()
  cleanups.push(() => r.stop())
  return r
}

async function authorityWith(notifications: AuthorityOptions['notifications'], extra: Partial<AuthorityOptions> = {}): Promise<Authority> {
  const a = await createAuthority({ issuer: ISSUER, policy: POLICY, notifications, ...extra })
  cleanups.push(() => a.close())
  return a
}

/** grantor, approver, two agents (a delegates to b), a root task with a purpose, b's mandate. */
async function world(authority: Authority) {
  const grantor = Ed25519Key.generate()
  const approver = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  const b = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'grantor', role: 'grantor' })
  await authority.registerAgent({ did: approver.did, name: 'bob-approver', role: 'approver' })
  await authority.registerAgent({ did: a.did, name: 'planner-agent' })
  await authority.registerAgent({ did: b.did, name: 'billing-agent' })
  const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS, purpose: 'refund order 1234' })
  const child = await authority.exchange(a, { kind: 'delegation', subjectToken: root.token, requestedActor: b.did })
  const ask = async (amount: number) => {
    const r = await authority.clientFor(b).callCredential({ mandate: child.token, audience: AUD, tool: 'billing.refund', arguments: { amount, card: 'tok_4242_secret_card' } })
    if (r.status !== 'approval_required') throw new Error('expected an approval')
    return r.approvalId
  }
  return { grantor, approver, a, b, root, child, ask }
}

const types = (r: WebhookReceiver): string[] => r.unique().map((x) => String(x.json.type))

describe('webhook notifications', () => {
  it('requested → approved: delivered in order, signed per Standard Webhooks (two secrets during a rotation), with the full context and a deep link', async () => {
    const s1 = secret()
    const s2 = secret()
    const rx = await receiver([s1, s2])
    const authority = await authorityWith({ webhooks: [{ id: 'ops', url: rx.url, secret: [s1, s2] }], dashboardUrl: 'https://console.example/dashboard/', delivery: FAST })
    const w = await world(authority)
    const id = await w.ask(120)
    await authority.approvals.approve(id, { approver: w.approver.did, reason: 'customer called' })
    await until(() => rx.unique().length >= 2, 20_000, 'two deliveries')
    expect(types(rx)).toEqual(['approval.requested', 'approval.approved'])
    for (const m of rx.requests) {
      expect(m.verified).toBe(true)
      expect(m.signature.split(' ')).toHaveLength(2)
      expect(m.signature).toMatch(/^v1,[A-Za-z0-9+/=]+ v1,[A-Za-z0-9+/=]+$/)
    }
    // and the check is real: another secret does not verify
    const m0 = rx.requests[0]!
    expect(() => new Webhook(secret()).verify(m0.body, { 'webhook-id': m0.id, 'webhook-timestamp': m0.timestamp, 'webhook-signature': m0.signature })).toThrow()
    const [req, dec] = rx.unique().map((m) => m.json as { type: string; timestamp: string; data: Record<string, any> })
    expect(req!.data).toMatchObject({
      approval: { id, status: 'pending', tool: 'billing.refund', audience: AUD, link: `https://console.example/dashboard/approvals/${id}` },
      task: { txn: w.root.claims.txn, subject: 'alice', purpose: 'refund order 1234' },
      requested_by: { did: w.b.did, name: 'billing-agent' },
      actor_chain: [{ did: w.a.did, name: 'planner-agent' }, { did: w.b.did, name: 'billing-agent' }],
    })
    expect(req!.data.approval.arguments_digest).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(Date.parse(req!.timestamp)).toBeGreaterThan(0)
    expect(dec!.data).toMatchObject({ approval: { id, status: 'approved' }, decision: { outcome: 'approved', by: { did: w.approver.did, name: 'bob-approver' }, reason: 'customer called' } })
    // includeArguments is off: neither the arguments nor any of their values
    for (const m of rx.requests) {
      expect(m.body).not.toContain('"arguments"')
      expect(m.body).not.toContain('tok_4242_secret_card')
    }
  })

  it('denied, expired and revocations (mandate, task, agent) are notified; `events` filters per endpoint', async () => {
    const s = secret()
    const all = await receiver([s])
    const some = await receiver([s])
    const authority = await authorityWith({ webhooks: [{ id: 'all', url: all.url, secret: s }, { id: 'revocations', url: some.url, secret: s, events: ['revocation.*'] }], delivery: FAST }, { approvalTtlSeconds: 1 })
    const w = await world(authority)
    const denied = await w.ask(10)
    await authority.approvals.deny(denied, { approver: w.approver.did, reason: 'not today' })
    const expiring = await w.ask(11)
    await new Promise((r) => setTimeout(r, 1100))
    await authority.approvals.sweep()
    await authority.revoke({ mandate: w.child.claims.jti }, { reason: 'rotate' })
    await authority.revoke({ txn: w.root.claims.txn }, { reason: 'done' })
    await authority.revoke({ agent: w.b.did }, { reason: 'compromised' })
    await until(() => all.unique().length >= 7 && some.unique().length >= 3, 20_000, 'all deliveries')
    // order is kept per approval (deliveries of different approvals and revocations run concurrently)
    expect(types(all).sort()).toEqual(['approval.denied', 'approval.expired', 'approval.requested', 'approval.requested', 'revocation.agent', 'revocation.mandate', 'revocation.task'])
    const of = (id: string) => all.unique().filter((m) => (m.json as { data: { approval?: { id: string } } }).data.approval?.id === id).map((m) => m.json.type)
    expect(of(denied)).toEqual(['approval.requested', 'approval.denied'])
    expect(of(expiring)).toEqual(['approval.requested', 'approval.expired'])
    expect(types(some).sort()).toEqual(['revocation.agent', 'revocation.mandate', 'revocation.task'])
    const byType = Object.fromEntries(all.unique().map((m) => [m.json.type, m.json as { data: Record<string, any> }]))
    expect(byType['approval.denied']!.data).toMatchObject({ approval: { id: denied, status: 'denied' }, decision: { outcome: 'denied', reason: 'not today' } })
    expect(byType['approval.expired']!.data).toMatchObject({ approval: { id: expiring, status: 'expired' }, decision: { outcome: 'expired' } })
    expect(byType['revocation.mandate']!.data).toMatchObject({ revocation: { target: 'mandate', id: w.child.claims.jti, reason: 'rotate' }, task: { txn: w.root.claims.txn, subject: 'alice' }, holder: { did: w.b.did, name: 'billing-agent' } })
    expect(byType['revocation.task']!.data).toMatchObject({ revocation: { target: 'task', id: w.root.claims.txn, reason: 'done' }, task: { txn: w.root.claims.txn, subject: 'alice', purpose: 'refund order 1234' } })
    expect(byType['revocation.agent']!.data).toMatchObject({ revocation: { target: 'agent', id: w.b.did, reason: 'compromised' }, agent: { did: w.b.did, name: 'billing-agent' } })
    // default deep link: the issuer's dashboard
    expect(byType['approval.denied']!.data.approval.link).toBe(`${ISSUER}/dashboard/approvals/${denied}`)
    expect(all.requests.every((m) => m.verified) && some.requests.every((m) => m.verified)).toBe(true)
  })

  it('revoking a grantor notifies the agent revocation and each task revoked with it (grantor cascade)', async () => {
    const s = secret()
    const rx = await receiver([s])
    const authority = await authorityWith({ webhooks: [{ url: rx.url, secret: s, events: ['revocation.*'] }], delivery: FAST })
    const w = await world(authority)
    await authority.revoke({ agent: w.grantor.did }, { reason: 'grantor key leaked' })
    await until(() => rx.unique().length >= 2, 20_000, 'two revocations')
    const byType = Object.fromEntries(rx.unique().map((m) => [m.json.type, m.json as { data: Record<string, any> }]))
    expect(byType['revocation.agent']!.data).toMatchObject({ revocation: { target: 'agent', id: w.grantor.did }, agent: { did: w.grantor.did, name: 'grantor' } })
    expect(byType['revocation.task']!.data).toMatchObject({ revocation: { target: 'task', id: w.root.claims.txn, cascade: 'grantor', granted_by: { did: w.grantor.did, name: 'grantor' } }, task: { txn: w.root.claims.txn, subject: 'alice' } })
  })

  it('a receiver that is down (connection refused), then answers 500, then comes back: everything is delivered, nothing lost, order per approval kept', async () => {
    const s = secret()
    const rx = await receiver([s])
    await rx.stop() // down: connection refused
    const authority = await authorityWith({ webhooks: [{ url: rx.url, secret: s }], delivery: FAST })
    const w = await world(authority)
    const ids: string[] = []
    for (let i = 0; i < 4; i++) ids.push(await w.ask(i + 1))
    for (const [i, id] of ids.entries()) {
      if (i % 2) await authority.approvals.deny(id, { approver: w.approver.did })
      else await authority.approvals.approve(id, { approver: w.approver.did })
    }
    await until(async () => (await authority.notificationStatus()).endpoints[0]!.lastError === 'connection refused', 20_000, 'a refused attempt')
    await rx.start()
    rx.mode = 'error'
    await until(() => rx.requests.length >= 3, 20_000, 'attempts answered 500')
    rx.mode = 'ok'
    await until(() => rx.unique().length >= 8, 30_000, 'eight deliveries')
    const got = rx.unique()
    expect(got).toHaveLength(8)
    for (const id of ids) {
      const mine = got.filter((m) => (m.json as { data: { approval: { id: string } } }).data.approval.id === id).map((m) => m.json.type)
      expect(mine).toHaveLength(2)
      expect(mine[0]).toBe('approval.requested')
    }
    expect(rx.requests.every((m) => m.verified)).toBe(true)
    // a retry is the same message: same webhook-id, same bytes
    const first = new Map<string, string>()
    for (const m of rx.requests) {
      if (!first.has(m.id)) first.set(m.id, m.body)
      expect(m.body).toBe(first.get(m.id))
    }
    const status = await authority.notificationStatus()
    await until(async () => (await authority.notificationStatus()).endpoints[0]!.pending === 0, 10_000, 'no pending')
    expect(status.endpoints[0]).toMatchObject({ failed: 0, url: `http://127.0.0.1:${new URL(rx.url).port}/…` })
    expect((await authority.notificationStatus()).endpoints[0]).toMatchObject({ delivered: 8, pending: 0, lastSuccessAt: expect.any(String) })
  })

  it.each(['memory', 'sqlite'] as const)('order per approval (%s store): a decision waits while its request is being retried; other approvals are not held up', async (kind) => {
    const s = secret()
    const rx = await receiver([s])
    const t = tempDir()
    cleanups.push(t.cleanup)
    const authority = await authorityWith({ webhooks: [{ url: rx.url, secret: s }], delivery: FAST }, kind === 'sqlite' ? { store: openSqliteStore(join(t.dir, 'order.db')) } : {})
    const w = await world(authority)
    const held = await w.ask(1)
    // the receiver refuses the request of `held` (only it) for now
    rx.failWhen = (r) => r.json.type === 'approval.requested' && (r.json as { data: { approval: { id: string } } }).data.approval.id === held
    await authority.approvals.approve(held, { approver: w.approver.did })
    const other = await w.ask(2)
    await authority.approvals.deny(other, { approver: w.approver.did })
    await until(() => rx.unique().length >= 2 && rx.requests.filter((r) => r.json.type === 'approval.requested').length >= 5, 20_000, 'the other approval and retries of the held one')
    const idOf = (m: { json: Record<string, unknown> }) => (m.json as { data: { approval: { id: string } } }).data.approval.id
    // the held approval's decision has not gone out before its request
    expect(rx.requests.filter((m) => idOf(m) === held).map((m) => m.json.type).every((t) => t === 'approval.requested')).toBe(true)
    expect(rx.unique().filter((m) => idOf(m) === other).map((m) => m.json.type)).toEqual(['approval.requested', 'approval.denied'])
    rx.failWhen = undefined
    await until(() => rx.unique().filter((m) => idOf(m) === held).length >= 2, 20_000, 'the held approval')
    expect(rx.unique().filter((m) => idOf(m) === held).map((m) => m.json.type)).toEqual(['approval.requested', 'approval.approved'])
  })

  it('a receiver that hangs is timed out and retried; the exchange returns while the receiver hangs', async () => {
    const s = secret()
    const rx = await receiver([s])
    rx.mode = 'hang'
    const authority = await authorityWith({ webhooks: [{ url: rx.url, secret: s }], delivery: FAST })
    const w = await world(authority)
    const id = await w.ask(5)
    await until(() => rx.hanging > 0, 10_000, 'a hanging request')
    // the receiver holds a request open, and exchanges and decisions still answer
    const other = await w.ask(6)
    await authority.approvals.approve(id, { approver: w.approver.did })
    expect(rx.hanging).toBeGreaterThan(0)
    expect(rx.delivered).toHaveLength(0)
    await until(() => rx.requests.length >= 2, 10_000, 'a retry after the timeout')
    await until(() => rx.requests.filter((m) => m.id === rx.requests[0]!.id).length >= 2, 10_000, 'the same message again')
    expect((await authority.notificationStatus()).endpoints[0]!.lastError).toBe('no answer within 400 ms')
    rx.mode = 'ok'
    await until(() => rx.unique().length >= 3, 20_000, 'deliveries after the receiver answers')
    const order = rx.unique().map((m) => [(m.json as { data: { approval: { id: string } } }).data.approval.id, m.json.type])
    expect(order.filter(([a]) => a === id).map(([, t]) => t)).toEqual(['approval.requested', 'approval.approved'])
    expect(order.some(([a]) => a === other)).toBe(true)
  })

  it('an endpoint that hangs holds only its share of the delivery slots: another endpoint keeps receiving', async () => {
    const s = secret()
    const stuck = await receiver([s])
    stuck.mode = 'hang'
    const fine = await receiver([s])
    const authority = await authorityWith({ webhooks: [{ id: 'stuck', url: stuck.url, secret: s }, { id: 'fine', url: fine.url, secret: s }], delivery: { ...FAST, timeoutMs: 60_000, concurrency: 2 } })
    const w = await world(authority)
    for (let i = 0; i < 3; i++) await w.ask(i + 1)
    await until(() => fine.unique().length >= 3, 20_000, 'the other endpoint to receive everything')
    expect(stuck.hanging).toBe(1)
    expect(stuck.delivered).toHaveLength(0)
  })

  it('undelivered notifications survive a restart: the next Authority on the same SQLite file delivers them', async () => {
    const t = tempDir()
    cleanups.push(t.cleanup)
    const file = join(t.dir, 'authority.db')
    const s = secret()
    const rx = await receiver([s])
    await rx.stop()
    const notifications = { webhooks: [{ id: 'ops', url: rx.url, secret: s }], delivery: FAST }
    const first = await createAuthority({ issuer: ISSUER, policy: POLICY, store: openSqliteStore(file), notifications })
    const w = await world(first)
    const id = await w.ask(7)
    await first.approvals.approve(id, { approver: w.approver.did })
    await first.revoke({ txn: w.root.claims.txn })
    expect((await first.notificationStatus()).endpoints[0]).toMatchObject({ id: 'ops', pending: 3, delivered: 0 })
    await first.close()
    // one outbox row per notifiable audit record, each naming its record (written in its transaction)
    const db = new DatabaseSync(file, { readOnly: true })
    const rows = db.prepare(`SELECT o.event, o.status, a.type FROM outbox o JOIN audit a ON a.seq = o.seq ORDER BY o.id`).all() as Array<{ event: string; status: string; type: string }>
    const notifiable = db.prepare(`SELECT type FROM audit WHERE type LIKE 'approval.%' OR type = 'revocation' ORDER BY seq`).all() as Array<{ type: string }>
    db.close()
    expect(rows.map((r) => r.type)).toEqual(notifiable.map((r) => r.type))
    expect(rows.map((r) => [r.event, r.status])).toEqual([['approval.requested', 'pending'], ['approval.approved', 'pending'], ['revocation.task', 'pending']])

    await rx.start()
    const second = await createAuthority({ issuer: ISSUER, policy: POLICY, store: openSqliteStore(file), notifications })
    cleanups.push(() => second.close())
    await until(() => rx.unique().length >= 3, 20_000, 'deliveries after the restart')
    expect(types(rx).sort()).toEqual(['approval.approved', 'approval.requested', 'revocation.task'])
    expect(types(rx).filter((t) => t.startsWith('approval.'))).toEqual(['approval.requested', 'approval.approved'])
    expect(rx.requests.every((m) => m.verified)).toBe(true)
    await until(async () => (await second.notificationStatus()).endpoints[0]!.delivered === 3, 10_000, 'marked delivered')
  })

  it('no credential, proof or mandate in any body; a JWS pasted into free text is redacted; arguments only for an endpoint that asks for them', async () => {
    const s = secret()
    const plain = await receiver([s])
    const withArgs = await receiver([s])
    const authority = await authorityWith({ webhooks: [{ id: 'plain', url: plain.url, secret: s }, { id: 'args', url: withArgs.url, secret: s, includeArguments: true }], delivery: FAST })
    const w = await world(authority)
    const id = await w.ask(42)
    // an approver who pastes something JWS-shaped into the reason (reasons are at most 512 characters)
    const pasted = `${w.root.token.split('.')[0]}.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl`
    await authority.approvals.approve(id, { approver: w.approver.did, reason: `ok ${pasted}` })
    const issued = await authority.clientFor(w.b).callCredential({ mandate: w.child.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 42, card: 'tok_4242_secret_card' }, approvalId: id })
    await authority.revoke({ mandate: w.root.claims.jti }, { reason: `leaked ${pasted}` })
    await until(() => plain.unique().length >= 3 && withArgs.unique().length >= 3, 20_000, 'deliveries')
    const bodies = [...plain.requests, ...withArgs.requests].map((m) => m.body)
    const secrets = [w.root.token, w.child.token, ...(issued.status === 'issued' ? [issued.token] : []), s, s.slice(6)]
    for (const b of bodies) {
      expect(b).not.toMatch(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./) // no JWS / JWT shape at all
      for (const x of secrets) expect(b).not.toContain(x)
      expect(b).not.toMatch(/"(token|access_token|dpop|proof|mandate_token|client_assertion|secret)"/)
    }
    expect(plain.requests.map((m) => m.body).join('\n')).not.toContain('tok_4242_secret_card')
    const requested = withArgs.unique().find((m) => m.json.type === 'approval.requested')!.json as { data: { approval: { arguments: unknown } } }
    expect(requested.data.approval.arguments).toEqual({ amount: 42, card: 'tok_4242_secret_card' })
    const approved = plain.unique().find((m) => m.json.type === 'approval.approved')!.json as { data: { decision: { reason: string } } }
    expect(approved.data.decision.reason).toBe('ok [redacted]')
  })

  it('format "slack": { text, blocks } as a Slack incoming webhook takes it, still signed', async () => {
    const s = secret()
    const rx = await receiver([s])
    const authority = await authorityWith({ webhooks: [{ url: rx.url, secret: s, format: 'slack', includeArguments: true }], dashboardUrl: 'https://console.example/dashboard', delivery: FAST })
    const w = await world(authority)
    const id = await w.ask(99)
    await until(() => rx.unique().length >= 1, 20_000, 'a delivery')
    const m = rx.unique()[0]!
    expect(m.verified).toBe(true)
    const body = m.json as { text: string; blocks: Array<Record<string, any>> }
    expect(Object.keys(body).sort()).toEqual(['blocks', 'text'])
    expect(body.text).toBe('Approval requested: billing.refund for alice by billing-agent')
    expect(body.blocks.every((b) => ['section', 'context', 'actions'].includes(b.type))).toBe(true)
    for (const b of body.blocks.filter((x) => x.type === 'section')) {
      if (b.text) expect(b.text).toMatchObject({ type: 'mrkdwn', text: expect.any(String) })
      if (b.fields) expect(b.fields.length).toBeGreaterThan(0)
    }
    expect(JSON.stringify(body.blocks)).toContain('planner-agent')
    expect(JSON.stringify(body.blocks)).toContain('tok_4242_secret_card') // includeArguments on
    const button = body.blocks.find((b) => b.type === 'actions')!.elements[0]
    expect(button).toMatchObject({ type: 'button', text: { type: 'plain_text' }, url: `https://console.example/dashboard/approvals/${id}` })
    // Slack control sequences in names and reasons are escaped, never live (`<!channel>` would notify everyone)
    const sneaky = Ed25519Key.generate()
    await authority.registerAgent({ did: sneaky.did, name: '<!channel> & friends' })
    await authority.revoke({ agent: sneaky.did }, { reason: '<https://evil.example|click>' })
    await until(() => rx.unique().length >= 2, 20_000, 'the revocation')
    const rev = rx.unique()[1]!.body
    expect(rev).not.toContain('<!channel>')
    expect(rev).not.toContain('<https://evil.example')
    expect(rev).toContain('&lt;!channel&gt; &amp; friends')
  })

  it('a receiver that always fails: the message is marked failed after maxAttempts, visible in GET /admin/notifications (admins only, no secret, no URL path)', async () => {
    const s = secret()
    const rx = await receiver([s])
    rx.mode = 'error'
    const server = await createAuthorityServer({ port: 0, authority: { policy: POLICY, notifications: { webhooks: [{ id: 'pager', url: rx.url, secret: s }], delivery: { ...FAST, maxAttempts: 2 } } } })
    cleanups.push(() => server.close())
    const authority = server.authority
    const w = await world(authority)
    const id = await w.ask(3)
    await until(async () => (await authority.notificationStatus()).endpoints[0]!.failed === 1, 20_000, 'a failed message')
    expect(rx.requests).toHaveLength(2)
    const admin = Ed25519Key.generate()
    await authority.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
    const get = (who: Ed25519Key) => fetch(`${server.url}/admin/notifications`, { headers: { authorization: `MandateAssertion ${createClientAssertion(who, { clientId: who.did, audience: server.url })}` } })
    const res = await get(admin)
    expect(res.status).toBe(200)
    const text = await res.text()
    const body = JSON.parse(text) as { enabled: boolean; endpoints: any[]; recentFailures: any[] }
    expect(body.enabled).toBe(true)
    expect(body.endpoints).toEqual([expect.objectContaining({ id: 'pager', url: `http://127.0.0.1:${new URL(rx.url).port}/…`, pending: 0, failed: 1, delivered: 0, lastError: 'HTTP 500', lastFailureAt: expect.any(String) })])
    expect(body.recentFailures).toEqual([expect.objectContaining({ endpoint: 'pager', event: 'approval.requested', approval: id, attempts: 2, lastError: 'HTTP 500', lastStatus: 500 })])
    expect(text).not.toContain(s.slice(6))
    expect(text).not.toContain('secret-path')
    expect((await get(w.b)).status).toBe(403)
    // an approval whose request failed for good does not hold back its decision
    rx.mode = 'ok'
    await authority.approvals.deny(id, { approver: w.approver.did })
    await until(() => rx.unique().length >= 1, 20_000, 'the decision')
    expect(rx.unique()[0]!.json.type).toBe('approval.denied')
  })

  it('config is validated strictly (CONFIG_INVALID), never echoing a secret', async () => {
    const s = secret()
    const bad: unknown[] = [
      { webhooks: [] },
      { webhooks: [{ url: 'http://127.0.0.1:1/x', secret: s }], extra: 1 },
      { webhooks: [{ url: 'http://127.0.0.1:1/x', secret: s, retries: 3 }] },
      { webhooks: [{ url: 'ftp://127.0.0.1/x', secret: s }] },
      { webhooks: [{ url: 'not a url', secret: s }] },
      { webhooks: [{ url: 'https://user:pw@example.com/x', secret: s }] },
      { webhooks: [{ url: 'https://example.com/x', secret: 'plain-secret-value' }] },
      { webhooks: [{ url: 'https://example.com/x', secret: `whsec_${randomBytes(8).toString('base64')}` }] },
      { webhooks: [{ url: 'https://example.com/x', secret: [] }] },
      { webhooks: [{ url: 'https://example.com/x', secret: s, events: ['approval.maybe'] }] },
      { webhooks: [{ url: 'https://example.com/x', secret: s, format: 'teams' }] },
      { webhooks: [{ url: 'https://example.com/x', secret: s, includeArguments: 'yes' }] },
      { webhooks: [{ id: 'a', url: 'https://example.com/x', secret: s }, { id: 'a', url: 'https://example.com/y', secret: s }] },
      { webhooks: [{ url: 'https://example.com/x', secret: s }], dashboardUrl: 'javascript:alert(1)' },
      { webhooks: [{ url: 'https://example.com/x', secret: s }], delivery: { maxAttempts: 0 } },
      { webhooks: [{ url: 'https://example.com/x', secret: s }], delivery: { jitter: true } },
    ]
    for (const notifications of bad) {
      const err = await createAuthority({ issuer: ISSUER, notifications: notifications as never }).then(() => undefined, (e: unknown) => e as { code: string; message: string })
      expect(err, JSON.stringify(notifications)).toMatchObject({ code: 'CONFIG_INVALID' })
      expect(err!.message).not.toContain(s.slice(6, 20))
      expect(err!.message).not.toContain('plain-secret-value')
    }
    // a store without an outbox: refused, not silently undelivered
    await expect(createAuthority({ issuer: ISSUER, store: { kind: 'custom' } as never, notifications: { webhooks: [{ url: 'https://example.com/x', secret: s }] } })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('outbox') })
    // refused before the port is bound by the server bootstrap too
    await expect(createAuthorityServer({ port: 0, authority: { notifications: { webhooks: [{ url: 'ftp://x', secret: s }] } } })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
  })

  it('without notifications configured the status says so', async () => {
    const authority = await createAuthority({ issuer: ISSUER })
    cleanups.push(() => authority.close())
    expect(await authority.notificationStatus()).toEqual({ enabled: false, endpoints: [], recentFailures: [] })
  })
})
