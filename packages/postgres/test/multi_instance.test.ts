/**
 * Two Authority HTTP processes on one Postgres database (plus one in this process), as behind a
 * load balancer: concurrent exchanges on both leave one audit chain with no fork and no gap; an
 * approval decided on B wakes the agent waiting on A; a revocation on A is refused by B at once; a
 * key rotated on A is served and trusted by B.
 */
import { createClientAssertion, createHttpAuthorityClient, decodeMandateUnverified, Ed25519Key } from '@mandate/core'
import { createAuthority, type Authority } from '@mandate/authority'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, startPostgres, type PostgresServer } from '../../../scripts/test-services.mjs'
import { createPostgresStore, migrate } from '../src/index.js'
import { adminCall, ISSUER, kill, startInstance, via, type Instance } from './fixtures/fleet.js'
import { POLICY } from './fixtures/policy.js'

const AUD = 'http://127.0.0.1:7500/billing'
const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'] }]
const enabled = requireService('postgres')

describe.skipIf(!enabled)('many Authority processes on one Postgres', () => {
  let server: PostgresServer
  let A: Instance, B: Instance
  let C: Authority
  const grantor = Ed25519Key.generate()
  const admin = Ed25519Key.generate()
  const approver = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  const helper = Ed25519Key.generate()
  const client = (i: Instance, key = agent) => createHttpAuthorityClient({ issuer: ISSUER, key, fetch: via(i) })
  const grant = () => C.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })

  beforeAll(async () => {
    server = await startPostgres()
    const db = await server.database()
    await migrate(db)
    C = await createAuthority({ issuer: ISSUER, store: await createPostgresStore({ connectionString: db }), policy: POLICY })
    await C.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await C.registerAgent({ did: admin.did, name: 'ops', role: 'admin' })
    await C.registerAgent({ did: approver.did, name: 'boss', role: 'approver' })
    await C.registerAgent({ did: agent.did, name: 'agent' })
    await C.registerAgent({ did: helper.did, name: 'helper' })
    ;[A, B] = await Promise.all([startInstance(db), startInstance(db)])
  })
  afterAll(async () => {
    await Promise.all([A && kill(A, 'SIGTERM'), B && kill(B, 'SIGTERM')])
    await C?.close()
    await server?.destroy()
  })

  it('concurrent exchanges on both instances: one chain, no fork, no gap, every head signed', async () => {
    const root = await grant()
    const calls = await Promise.all(Array.from({ length: 80 }, (_, i) => client(i % 2 ? A : B).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { i } })))
    expect(calls.every((c) => c.status === 'issued')).toBe(true)
    const records = await C.audit.query({ txn: root.claims.txn as string, type: 'exchange', limit: 1000 })
    expect(records).toHaveLength(80)
    const v = await C.audit.verify()
    expect(v).toMatchObject({ ok: true })
    if (v.ok) expect(v.signed?.seq).toBe(v.head?.seq)
  })

  it('an approval decided on B wakes the agent waiting on A, by event', async () => {
    const root = await grant()
    const asked = await client(A).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 900 } })
    expect(asked.status).toBe('approval_required')
    if (asked.status !== 'approval_required') return
    const started = Date.now()
    const waiting = client(A).waitForApproval(asked.approvalId, { timeoutMs: 20_000 })
    await new Promise((r) => setTimeout(r, 300))
    const decided = await fetch(`${B.url}/approvals/${asked.approvalId}/approve`, {
      method: 'POST',
      headers: { authorization: `MandateAssertion ${createClientAssertion(approver, { clientId: approver.did, audience: ISSUER })}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'ok' }),
    })
    expect(decided.status).toBe(200)
    const outcome = await waiting
    expect(outcome).toMatchObject({ status: 'approved', approver: approver.did })
    // by event: well before any long-poll round (25 s) would have seen it
    expect(Date.now() - started).toBeLessThan(5000)
    const resumed = await client(A).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 900 }, approvalId: asked.approvalId })
    expect(resumed.status).toBe('issued')
  })

  it('a task revoked on A is refused on B at once', async () => {
    const root = await grant()
    expect((await client(B).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: {} })).status).toBe('issued')
    const r = await adminCall(A, admin, '/admin/revocations', { txn: root.claims.txn, reason: 'test' })
    expect(r.status).toBe(200)
    await expect(client(B).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: {} })).rejects.toMatchObject({ code: 'REVOKED' })
  })

  it('a key rotated on A: B trusts mandates it signs at once and serves the same JWKS', async () => {
    const root = await grant()
    const rotated = await adminCall(A, admin, '/admin/keys/rotate', {})
    expect(rotated.status).toBe(200)
    const kid = rotated.json.kid as string
    // A signs with the new key; B has not been told yet maybe, and must still accept it
    const child = await client(A).delegate({ mandate: root.token, to: helper.did, maxDepth: 0 })
    expect(decodeMandateUnverified(child.token).header.kid).toBe(kid)
    const call = await client(B, helper).callCredential({ mandate: child.token, audience: AUD, tool: 'billing.get', arguments: {} })
    expect(call.status).toBe('issued')
    const jwks = async (i: Instance) => ((await (await fetch(`${i.url}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
    for (let t = 0; t < 50 && (await jwks(B))[0] !== kid; t++) await new Promise((r) => setTimeout(r, 100))
    expect(await jwks(B)).toEqual(await jwks(A))
    expect((await jwks(B))[0]).toBe(kid)
    // heads signed by the rotated key on A are trusted by B's next write: no foreign-write record
    await client(B).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: {} })
    expect(await C.audit.verify()).toMatchObject({ ok: true })
  })
})
