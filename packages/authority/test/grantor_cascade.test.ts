/**
 * Revoking a grantor stops everything it authorized: every task it granted (before its revocation)
 * is revoked with it, in the same transaction, each audited; the Authority refuses their exchanges
 * and a guard polling the revocation-status document refuses their calls. Tasks of other grantors
 * keep working. Databases from before grantors were recorded are migrated (those tasks have none).
 * Real HTTP server on 127.0.0.1 with a SQLite file.
 */
import { DatabaseSync } from '../src/store/sqlite_driver.js'
import { createClientAssertion, createProof, createRemoteGuard, decodeMandateUnverified, Ed25519Key, randomId, type Guard } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthority } from '../src/authority.js'
import { createAuthorityServer, type AuthorityServer } from '../src/http/server.js'
import { openSqliteStore } from '../src/store/sqlite.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const TASK = 'urn:mandate:grant-type:task'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const CALL = 'urn:mandate:token-type:call-credential'
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

let server: AuthorityServer
let admin: Ed25519Key
const tmp = tempDir()

beforeAll(async () => {
  server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { store: openSqliteStore(`${tmp.dir}/authority.db`) } })
  admin = await registered('admin')
})
afterAll(async () => {
  await server.close()
  tmp.cleanup()
})

async function registered(role: 'agent' | 'grantor' | 'admin'): Promise<Ed25519Key> {
  const k = Ed25519Key.generate()
  await server.authority.registerAgent({ did: k.did, name: `${role}-${randomId().slice(0, 6)}`, role })
  return k
}

function token(fields: string[][], k: Ed25519Key): Promise<Response> {
  const url = `${server.url}/token`
  const body = new URLSearchParams([...fields, ['client_assertion_type', JWT_BEARER], ['client_assertion', createClientAssertion(k, { clientId: k.did, audience: server.url })]])
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: createProof(k, { method: 'POST', url }) }, body })
}

async function ok(res: Response): Promise<string> {
  const text = await res.text()
  expect(res.status, text).toBe(200)
  return (JSON.parse(text) as { access_token: string }).access_token
}

/** A task grant over HTTP: the grantor's root mandate for `agent`. */
const grant = (grantor: Ed25519Key, agent: Ed25519Key) => token([
  ['grant_type', TASK], ['subject', 'alice@example.com'], ['agent', agent.did], ['resource', AUD], ['authorization_details', JSON.stringify(TOOLS)], ['max_depth', '2'],
], grantor).then(ok)
const delegate = (holder: Ed25519Key, mandate: string, to: Ed25519Key) => token([['grant_type', EXCHANGE], ['subject_token', mandate], ['subject_token_type', AT], ['requested_actor', to.did]], holder)
const call = (holder: Ed25519Key, mandate: string) => token([
  ['grant_type', EXCHANGE], ['subject_token', mandate], ['subject_token_type', AT], ['requested_token_type', CALL], ['resource', AUD], ['tool', 'billing.get'], ['tool_arguments', '{"amount":1}'],
], holder)
const txnOf = (t: string) => decodeMandateUnverified(t).payload.txn as string

const verifyAt = (guard: Guard, holder: Ed25519Key, cred: string) => guard.verifyToolCall({
  mandate: cred, proof: createProof(holder, { audience: AUD, accessToken: cred, tool: 'billing.get', arguments: { amount: 1 } }), tool: 'billing.get', arguments: { amount: 1 },
})

async function revokeOverHttp(body: Record<string, unknown>): Promise<{ status: number; json: { revoked: Array<{ kind: string; id: string }>; preemptive: boolean } }> {
  const res = await fetch(`${server.url}/admin/revocations`, {
    method: 'POST',
    headers: { authorization: `MandateAssertion ${createClientAssertion(admin, { clientId: admin.did, audience: server.url })}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: res.status, json: (await res.json()) as never }
}

describe('revoking a grantor revokes the tasks it granted', () => {
  it('its earlier tasks are refused at the Authority (exchange) and at a guard (revocation status); other tasks keep working', async () => {
    const grantor = await registered('grantor')
    const other = await registered('grantor')
    const agent = await registered('agent')
    const helper = await registered('agent')
    const first = await grant(grantor, agent)
    const second = await grant(grantor, helper)
    const unrelated = await grant(other, agent)
    const delegated = await ok(await delegate(agent, first, helper))
    const cred = await ok(await call(agent, first))
    const credDelegated = await ok(await call(helper, delegated))
    const credUnrelated = await ok(await call(agent, unrelated))

    const guard = await createRemoteGuard({ issuer: server.url, audience: AUD, revocationIntervalMs: 0 })
    await expect(verifyAt(guard, agent, cred)).resolves.toMatchObject({ subject: 'alice@example.com' })

    const before = (await server.authority.audit.query({ type: 'revocation', limit: 10_000 })).length
    const r = await revokeOverHttp({ agent: grantor.did, reason: 'key leaked' })
    expect(r.status).toBe(200)
    expect(r.json.preemptive).toBe(false)
    expect(r.json.revoked.map((e) => [e.kind, e.id])).toEqual([['agent', grantor.did], ['task', txnOf(first)], ['task', txnOf(second)]])

    // at the Authority: no exchange of any mandate of those tasks (root or delegated)
    for (const [holder, mandate] of [[agent, first], [helper, second], [helper, delegated]] as const) {
      const res = await call(holder, mandate)
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ mandate_code: 'REVOKED' })
    }
    expect((await delegate(agent, first, helper)).status).toBe(400)

    // at a guard: the revocation-status document lists the tasks, so credentials minted before are refused
    const status = (await (await fetch(`${server.url}/revocation-status`)).json()) as { tasks: string[]; agents: string[] }
    expect(status.agents).toContain(grantor.did)
    expect(status.tasks).toEqual(expect.arrayContaining([txnOf(first), txnOf(second)]))
    await expect(verifyAt(guard, agent, cred)).rejects.toMatchObject({ code: 'REVOKED' })
    await expect(verifyAt(guard, helper, credDelegated)).rejects.toMatchObject({ code: 'REVOKED' })

    // another grantor's task is untouched
    await expect(verifyAt(guard, agent, credUnrelated)).resolves.toMatchObject({ subject: 'alice@example.com' })
    await ok(await call(agent, unrelated))

    // each revoked task has its own audit record, naming the grantor it was revoked with
    const recs = (await server.authority.audit.query({ type: 'revocation', limit: 10_000 })).slice(before)
    expect(recs.map((x) => x.fields)).toEqual([
      expect.objectContaining({ target: 'agent', agent: grantor.did, reason: 'key leaked' }),
      expect.objectContaining({ target: 'task', txn: txnOf(first), granted_by: grantor.did, cascade: 'grantor', reason: 'key leaked' }),
      expect.objectContaining({ target: 'task', txn: txnOf(second), granted_by: grantor.did, cascade: 'grantor', reason: 'key leaked' }),
    ])
    expect((await server.authority.audit.query({ txn: txnOf(first), type: 'revocation' })).length).toBe(1)
    expect((await server.authority.audit.verify()).ok).toBe(true)

    // revoking it again changes nothing
    expect((await revokeOverHttp({ agent: grantor.did })).json.revoked).toEqual([])
  })

  it('the stored root mandate names its grantor; derived mandates do not', async () => {
    const grantor = await registered('grantor')
    const agent = await registered('agent')
    const helper = await registered('agent')
    const root = await grant(grantor, agent)
    const del = await ok(await delegate(agent, root, helper))
    expect((await server.authority.store.getMandate(decodeMandateUnverified(root).payload.jti as string))?.grantor).toBe(grantor.did)
    expect((await server.authority.store.getMandate(decodeMandateUnverified(del).payload.jti as string))?.grantor).toBeUndefined()
    expect(await server.authority.store.tasksGrantedBy(grantor.did)).toEqual([txnOf(root)])
  })

  it('works the same in process with the memory store', async () => {
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400' })
    try {
      const g = Ed25519Key.generate()
      const a = Ed25519Key.generate()
      await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
      await authority.registerAgent({ did: a.did, name: 'a' })
      const root = await authority.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
      const result = await authority.revoke({ agent: g.did }, { reason: 'key leaked' })
      expect(result.revoked.map((e) => [e.kind, e.id])).toEqual([['agent', g.did], ['task', root.claims.txn]])
      expect(await authority.store.isRevoked({ ids: [], txn: root.claims.txn, actors: [] })).toBe(true)
      expect((await authority.audit.verify()).ok).toBe(true)
    } finally {
      await authority.close()
    }
  })
})

describe('databases from before grantors were recorded', () => {
  it('gain the grantor column on open; their earlier tasks have no grantor (not revoked with it), new ones do', async () => {
    const db = `${tmp.dir}/legacy.db`
    const issuer = 'http://127.0.0.1:7400'
    const g = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    const first = await createAuthority({ issuer, store: openSqliteStore(db) })
    await first.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
    await first.registerAgent({ did: a.did, name: 'a' })
    const old = await first.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
    await first.close()
    // make it a database of the schema before: no grantor column
    const raw = new DatabaseSync(db)
    raw.exec('DROP INDEX IF EXISTS mandates_grantor; ALTER TABLE mandates DROP COLUMN grantor')
    raw.close()

    const again = await createAuthority({ issuer, store: openSqliteStore(db) })
    try {
      expect((await again.store.getMandate(old.claims.jti))?.grantor).toBeUndefined()
      const fresh = await again.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
      const result = await again.revoke({ agent: g.did }, { reason: 'key leaked' })
      expect(result.revoked.map((e) => [e.kind, e.id])).toEqual([['agent', g.did], ['task', fresh.claims.txn]])
      expect(await again.store.isRevoked({ ids: [], txn: old.claims.txn, actors: [] })).toBe(false)
      expect((await again.audit.verify()).ok).toBe(true)
    } finally {
      await again.close()
    }
  })
})
