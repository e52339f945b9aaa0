/**
 * A principal registered for a bounded time (a workload agent under a federation rule) can do
 * nothing once its registration has expired: admitPrincipal refuses it at its own clock, and the
 * HTTP endpoints (client authentication, on the Authority's clock) answer 401 saying so. Real
 * memory store; a real server on 127.0.0.1 with a controllable Authority clock.
 */
import { createClientAssertion, Ed25519Key, jwkThumbprint, publicJwkFromDidKey } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admitPrincipal } from '../src/exchange/principals.js'
import { createAuthorityServer, MemoryStore, type AgentRecord, type AuthorityServer } from '../src/index.js'
import { manualClock } from './helpers.js'

const T0 = 1_700_000_000_000
function bounded(key: Ed25519Key, role: AgentRecord['role'], expiresAt: number): AgentRecord {
  return {
    did: key.did, jkt: jwkThumbprint(publicJwkFromDidKey(key.did)), name: `bounded-${role}`, role, status: 'enabled', disabled: false, createdAt: T0, expiresAt,
    binding: { iss: 'https://ci.example.test', sub: 'repo:acme/deploy:ref:refs/heads/main', rule: 'deploy', claims: { repository: 'acme/deploy' } },
  }
}

describe('admitPrincipal and expiresAt', () => {
  it('admits before expiresAt and refuses from it on (the given clock, else Date.now())', async () => {
    const store = new MemoryStore()
    const key = Ed25519Key.generate()
    await store.insertAgent(bounded(key, 'agent', T0 + 60_000), { time: T0, type: 'agent.registered', fields: { agent: key.did } })
    expect((await admitPrincipal(store, key.did, { now: T0 + 59_999 })).did).toBe(key.did)
    await expect(admitPrincipal(store, key.did, { now: T0 + 60_000 })).rejects.toMatchObject({ code: 'INVALID_CLIENT', message: "client's registration has expired" })
    await expect(admitPrincipal(store, key.did, { now: T0 + 60_001, code: 'INVALID_GRANT', as: 'workload agent' })).rejects.toMatchObject({ code: 'INVALID_GRANT', message: "workload agent's registration has expired" })
    // without a clock: the real time, long past T0 + 60 s
    await expect(admitPrincipal(store, key.did)).rejects.toMatchObject({ message: "client's registration has expired" })
    // a revoked principal is reported as revoked, not expired (the stronger state first)
    await store.revoke([{ kind: 'agent', id: key.did }], { at: T0 }, { time: T0, type: 'revocation', fields: { agent: key.did } })
    await expect(admitPrincipal(store, key.did, { now: T0 + 60_001 })).rejects.toMatchObject({ message: 'client has been revoked' })
  })

  it('a principal without expiresAt never expires', async () => {
    const store = new MemoryStore()
    const key = Ed25519Key.generate()
    const { expiresAt: _e, ...record } = bounded(key, 'agent', 0)
    await store.insertAgent(record, { time: T0, type: 'agent.registered', fields: { agent: key.did } })
    expect((await admitPrincipal(store, key.did, { now: Number.MAX_SAFE_INTEGER })).did).toBe(key.did)
  })
})

describe('an expired registration over HTTP', () => {
  const clock = manualClock(T0)
  let server: AuthorityServer
  const admin = Ed25519Key.generate()
  beforeAll(async () => {
    server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { store: new MemoryStore(), now: clock.now } })
    await server.authority.store.insertAgent(bounded(admin, 'admin', T0 + 60_000), { time: T0, type: 'agent.registered', fields: { agent: admin.did } })
  })
  afterAll(async () => {
    await server.close()
  })
  // assertions made at the Authority's clock, so only the registration's expiry differs
  const call = () => fetch(`${server.url}/admin/agents`, {
    headers: { authorization: `MandateAssertion ${createClientAssertion(admin, { clientId: admin.did, audience: server.url, now: Math.floor(clock.now() / 1000) })}` },
  })

  it('authenticates until the registration ends, then answers 401 invalid_client saying it expired', async () => {
    const ok = await call()
    expect(ok.status).toBe(200)
    const { agents } = (await ok.json()) as { agents: AgentRecord[] }
    // the registry shows the binding and expiry
    expect(agents.find((a) => a.did === admin.did)).toMatchObject({ expiresAt: T0 + 60_000, binding: { rule: 'deploy', iss: 'https://ci.example.test' } })
    clock.advance(60_000)
    const late = await call()
    expect(late.status).toBe(401)
    expect(await late.json()).toMatchObject({ error: 'invalid_client', error_description: expect.stringContaining('registration has expired') })
  })
})
