/**
 * Client-assertion and DPoP-proof single use cannot be turned into a lockout: strangers' assertions
 * (valid signatures by unregistered did:keys) never take a place in the single-use store, each
 * registered principal has its own budget, and entries are evicted when they expire.
 * Real HTTP server on 127.0.0.1; caps scaled down (300 entries) so the flood stays small.
 */
import { createClientAssertion, createProof, Ed25519Key, MandateError, MemoryReplayStore, type ReplayStore } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createAuthority, createAuthorityServer, type AuthorityServer } from '../src/index.js'
import { MemorySingleUse } from '../src/exchange/single_use.js'
import { AUD, manualClock, TOOLS } from './helpers.js'

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const CALL = 'urn:mandate:token-type:call-credential'

/** Run `n` tasks with at most `width` in flight. */
async function pool(n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await task(next++)
  }))
}

async function flood(server: AuthorityServer, n: number): Promise<void> {
  const strangers = Array.from({ length: 50 }, () => Ed25519Key.generate())
  const statuses = new Map<number, number>()
  await pool(n, 16, async (i) => {
    const k = strangers[i % strangers.length] as Ed25519Key
    const assertion = createClientAssertion(k, { clientId: k.did, audience: server.url })
    // half at a JSON endpoint, half at the token endpoint with a valid DPoP proof of the same key
    const res = i % 2 === 0
      ? await fetch(`${server.url}/admin/agents`, { headers: { authorization: `MandateAssertion ${assertion}` } })
      : await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: createProof(k, { method: 'POST', url: `${server.url}/token` }) },
        body: new URLSearchParams({ grant_type: EXCHANGE, subject_token: 'x', subject_token_type: AT, requested_actor: k.did, client_assertion_type: JWT_BEARER, client_assertion: assertion }),
      })
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    await res.body?.cancel()
  })
  expect([...statuses.keys()]).toEqual([401])
}

async function registeredStillWork(server: AuthorityServer): Promise<void> {
  const admin = Ed25519Key.generate()
  const grantor = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  await server.authority.registerAgent({ did: admin.did, name: 'ops', role: 'admin' })
  await server.authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await server.authority.registerAgent({ did: agent.did, name: 'worker' })
  const list = await fetch(`${server.url}/admin/agents`, { headers: { authorization: `MandateAssertion ${createClientAssertion(admin, { clientId: admin.did, audience: server.url })}` } })
  expect(list.status).toBe(200)
  const root = await server.authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })
  const call = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: createProof(agent, { method: 'POST', url: `${server.url}/token` }) },
    body: new URLSearchParams({
      grant_type: EXCHANGE, subject_token: root.token, subject_token_type: AT, requested_token_type: CALL, resource: AUD, tool: 'billing.get',
      tool_arguments: '{"amount":1}', client_assertion_type: JWT_BEARER, client_assertion: createClientAssertion(agent, { clientId: agent.did, audience: server.url }),
    }),
  })
  expect(call.status, await call.clone().text()).toBe(200)
}

describe('single use cannot be filled by strangers', () => {
  it('a caller-supplied ReplayStore capped at 300: 900 valid-signature assertions from unregistered did:keys, then registered agents still authenticate', async () => {
    const replay = new MemoryReplayStore({ maxEntries: 300 })
    const server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { replay } })
    try {
      await flood(server, 900)
      expect(replay.size).toBe(0)
      await registeredStillWork(server)
    } finally {
      await server.close()
    }
  }, 120_000)

  it('the default store capped at 300: same kind of flood, same result', async () => {
    const server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { singleUse: { maxEntries: 300 } } })
    try {
      await flood(server, 600)
      await registeredStillWork(server)
    } finally {
      await server.close()
    }
  }, 120_000)

  it('a bad signature under a registered did records nothing; a replay of a good one is refused', async () => {
    const used: string[] = []
    const replay: ReplayStore = { use: (k) => (used.includes(k) ? false : (used.push(k), true)) }
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', replay })
    const agent = Ed25519Key.generate()
    await authority.registerAgent({ did: agent.did, name: 'a' })
    const forged = createClientAssertion(Ed25519Key.generate(), { clientId: agent.did, audience: authority.issuer })
    await expect(authority.authenticate(forged)).rejects.toMatchObject({ code: 'INVALID_CLIENT' })
    expect(used).toHaveLength(0)
    const good = createClientAssertion(agent, { clientId: agent.did, audience: authority.issuer })
    expect((await authority.authenticate(good)).did).toBe(agent.did)
    await expect(authority.authenticate(good)).rejects.toMatchObject({ code: 'INVALID_CLIENT', message: expect.stringMatching(/already been used/) })
    expect(used).toHaveLength(1)
    await authority.close()
  })
})

describe('per-principal budgets and eviction by expiry', () => {
  it('one registered principal exhausting its budget locks out only itself, until its entries expire', async () => {
    const clock = manualClock(Date.UTC(2026, 0, 1))
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', now: clock.now, singleUse: { perPrincipal: 20, maxEntries: 1000 } })
    const noisy = Ed25519Key.generate()
    const quiet = Ed25519Key.generate()
    await authority.registerAgent({ did: noisy.did, name: 'noisy' })
    await authority.registerAgent({ did: quiet.did, name: 'quiet' })
    const sec = () => Math.floor(clock.now() / 1000)
    const as = (k: Ed25519Key) => createClientAssertion(k, { clientId: k.did, audience: authority.issuer, now: sec() })
    for (let i = 0; i < 20; i++) await authority.authenticate(as(noisy))
    const err = await authority.authenticate(as(noisy)).catch((e: unknown) => e)
    expect(MandateError.is(err) && err.code).toBe('CAPACITY_EXCEEDED')
    expect((await authority.authenticate(as(quiet))).did).toBe(quiet.did)
    clock.advance(60_000 + 30_000 + 2_000) // assertion lifetime (60 s) + skew (30 s) + 2 s
    expect((await authority.authenticate(as(noisy))).did).toBe(noisy.did)
    await authority.close()
  })

  it('MemorySingleUse evicts expired entries (and only those), keeps replays refused until expiry', () => {
    let t = 1_000
    const s = new MemorySingleUse({ perPrincipal: 5, maxEntries: 8 }, () => t)
    for (let i = 0; i < 5; i++) expect(s.use('a', `k${i}`, t + 10 + i)).toBe(true)
    expect(s.use('a', 'k0', t + 100)).toBe(false) // replay
    expect(() => s.use('a', 'k5', t + 10)).toThrow(/too many/)
    for (let i = 0; i < 3; i++) expect(s.use('b', `j${i}`, t + 50)).toBe(true)
    expect(() => s.use('c', 'x', t + 10)).toThrow(/full/)
    expect(s.size).toBe(8)
    t += 10 // k0 expires at 1010: still live during that second
    expect(s.use('a', 'k0', t + 100)).toBe(false)
    t += 1
    expect(s.size).toBe(7)
    expect(s.use('a', 'k0', t + 100)).toBe(true) // expired entries are forgotten; the new one counts
    t += 100_000 // a long idle gap: everything expired
    expect(s.size).toBe(0)
    expect(s.use('c', 'x', t + 10)).toBe(true)
    // an expiry that is not a number is a caller's bug: refused, never a first use (outside probe)
    for (const bad of [NaN, Infinity, undefined]) expect(() => s.use('c', 'nan', bad as number)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
  })
})
