/**
 * The last admin (outside probe, finding 3): an operation that would leave no admin able to act
 * (enabled, unrevoked, unexpired) is refused with LAST_ADMIN (HTTP 409), whether the admin disables or revokes itself or another
 * admin does it, over HTTP and in process; an admin may still take itself out of service while
 * another admin remains; two admins disabling each other at once leave one. Real HTTP server on
 * 127.0.0.1, over the memory store and a SQLite file.
 */
import { createClientAssertion, Ed25519Key, jwkThumbprint, MandateError, publicJwkFromDidKey } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, openSqliteStore, type AgentRecord, type AuthorityServer } from '../src/index.js'
import { tempDir } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

for (const storeKind of ['memory', 'sqlite'] as const) {
  describe(`last admin (${storeKind} store)`, () => {
    let server: AuthorityServer
    let n = 0

    beforeAll(async () => {
      server = await createAuthorityServer({
        port: 0, hostname: '127.0.0.1',
        ...(storeKind === 'sqlite' ? { authority: { store: openSqliteStore(`${tmp.dir}/last_admin.db`) } } : {}),
      })
    })
    afterAll(async () => {
      await server.close()
    })

    const authority = () => server.authority
    const headers = (k: Ed25519Key) => ({ authorization: `MandateAssertion ${createClientAssertion(k, { clientId: k.did, audience: server.url })}`, 'content-type': 'application/json' })
    const post = (k: Ed25519Key, path: string, body: unknown = {}) => fetch(`${server.url}${path}`, { method: 'POST', headers: headers(k), body: JSON.stringify(body) })
    const disable = (by: Ed25519Key, did: string) => post(by, `/admin/agents/${encodeURIComponent(did)}/disable`, { reason: 'probe' })
    const revoke = (by: Ed25519Key, did: string) => post(by, '/admin/revocations', { agent: did, reason: 'probe' })
    const canAdminister = async (k: Ed25519Key) => (await fetch(`${server.url}/admin/agents`, { headers: headers(k) })).status === 200

    async function register(role: 'admin' | 'agent', expiresAt?: number): Promise<Ed25519Key> {
      const k = Ed25519Key.generate()
      if (expiresAt === undefined) await authority().registerAgent({ did: k.did, name: `${role}-${++n}`, role })
      else {
        // a registration for a bounded time (as a federation rule makes them), written as the Authority would
        const rec: AgentRecord = { did: k.did, jkt: jwkThumbprint(publicJwkFromDidKey(k.did)), name: `${role}-${++n}`, role, status: 'enabled', disabled: false, createdAt: Date.now(), expiresAt }
        await authority().store.insertAgent(rec, { time: Date.now(), type: 'agent.registered', fields: { agent: k.did } })
      }
      return k
    }

    /** Take every admin that may act out of service (by a fresh admin), so each test starts from its own admins. */
    async function onlyAdmins(...keep: Ed25519Key[]): Promise<void> {
      const dids = new Set(keep.map((k) => k.did))
      for (const a of await authority().listAgents()) {
        if (a.role === 'admin' && a.status === 'enabled' && !dids.has(a.did)) await authority().disableAgent(a.did, { reason: 'test setup' })
      }
    }

    async function expectLastAdmin(res: Response): Promise<void> {
      expect(res.status).toBe(409)
      expect(res.headers.get('cache-control')).toBe('no-store')
      const body = (await res.json()) as Record<string, unknown>
      expect(body).toMatchObject({ error: 'invalid_request', mandate_code: 'LAST_ADMIN' })
      expect(body.error_description).toMatch(/last enabled admin/)
    }

    async function rejectsLastAdmin(p: Promise<unknown>): Promise<void> {
      const err = await p.then(() => undefined, (e: unknown) => e)
      expect(MandateError.is(err), String(err)).toBe(true)
      expect(err).toMatchObject({ code: 'LAST_ADMIN' })
    }

    it('the probe: the only admin cannot disable or revoke itself over HTTP, and keeps the admin API', async () => {
      const a = await register('admin')
      await onlyAdmins(a)
      await expectLastAdmin(await disable(a, a.did))
      await expectLastAdmin(await revoke(a, a.did))
      expect(await authority().getAgent(a.did)).toMatchObject({ status: 'enabled', disabled: false })
      expect(await authority().store.isRevoked({ ids: [], txn: '', actors: [a.did] })).toBe(false)
      expect(await canAdminister(a)).toBe(true)
    })

    it('in process too: disableAgent and revoke({ agent }) refuse the last admin; other principals are unaffected', async () => {
      const a = await register('admin')
      await onlyAdmins(a)
      await rejectsLastAdmin(authority().disableAgent(a.did, { reason: 'x' }))
      await rejectsLastAdmin(authority().revoke({ agent: a.did }, { reason: 'x' }))
      expect(await canAdminister(a)).toBe(true)
      // an agent (not an admin) is disabled and revoked as before, over HTTP by the last admin
      const worker = await register('agent')
      expect((await disable(a, worker.did)).status).toBe(200)
      expect((await revoke(a, worker.did)).status).toBe(200)
      expect(await authority().getAgent(worker.did)).toMatchObject({ status: 'revoked' })
      // a malformed revocation is still INVALID_REQUEST, not a last-admin refusal
      await expect(authority().revoke({ agent: a.did, txn: 't' } as never)).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    })

    it('with another admin: an admin may disable or revoke itself; then the remaining one is the last', async () => {
      const a = await register('admin')
      const b = await register('admin')
      await onlyAdmins(a, b)
      expect((await disable(a, a.did)).status).toBe(200)
      expect(await canAdminister(a)).toBe(false)
      await expectLastAdmin(await disable(b, b.did))
      await expectLastAdmin(await revoke(b, b.did))
      // b brings a back; now b may step down by revocation (final), and a is the last one
      expect((await post(b, `/admin/agents/${encodeURIComponent(a.did)}/enable`)).status).toBe(200)
      expect((await revoke(b, b.did)).status).toBe(200)
      expect(await authority().getAgent(b.did)).toMatchObject({ status: 'revoked' })
      await expectLastAdmin(await disable(a, a.did))
      expect(await canAdminister(a)).toBe(true)
    })

    it('disabled, revoked and expired admins do not count', async () => {
      const a = await register('admin')
      const off = await register('admin')
      const gone = await register('admin')
      const expired = await register('admin', Date.now() - 1000)
      const later = await register('admin', Date.now() + 3_600_000)
      await onlyAdmins(a, off, gone, expired, later)
      await authority().disableAgent(off.did)
      await authority().revoke({ agent: gone.did })
      // an admin registered until later still counts
      expect(await authority().disableAgent(later.did)).toMatchObject({ status: 'disabled' })
      await rejectsLastAdmin(authority().disableAgent(a.did))
      await expectLastAdmin(await disable(a, a.did))
      expect(await canAdminister(expired)).toBe(false)
      // disabling an admin already disabled is no change, never refused
      expect(await authority().disableAgent(off.did)).toMatchObject({ status: 'disabled' })
      expect(await canAdminister(a)).toBe(true)
    })

    it('two admins disabling each other at once (over HTTP and in process) leave exactly one', async () => {
      for (const how of ['http', 'in-process', 'in-process, disable and revoke'] as const) {
        const a = await register('admin')
        const b = await register('admin')
        await onlyAdmins(a, b)
        const outcomes = how === 'http'
          ? (await Promise.all([disable(a, b.did), disable(b, a.did)])).map((r) => r.status)
          : (await Promise.allSettled(how === 'in-process' ? [authority().disableAgent(b.did), authority().disableAgent(a.did)] : [authority().disableAgent(b.did), authority().revoke({ agent: a.did })]))
              .map((r) => (r.status === 'fulfilled' ? 200 : (r.reason as MandateError).code))
        // over HTTP the loser is refused by the check (409) or, when it authenticates after the winner's change, as disabled (401)
        const [won, lost] = outcomes.sort().map(String)
        expect(won, how).toBe('200')
        expect(how === 'http' ? ['401', '409'] : ['LAST_ADMIN'], how).toContain(lost)
        const left = (await authority().listAgents()).filter((x) => x.role === 'admin' && x.status === 'enabled')
        expect(left.map((x) => x.did).filter((d) => d === a.did || d === b.did)).toHaveLength(1)
        expect(left).toHaveLength(1)
      }
    })
  })
}
