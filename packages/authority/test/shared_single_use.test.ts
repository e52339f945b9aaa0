// The Authority with a caller-supplied (shared) ReplayStore: every single-use check goes through
// it, and a store that fails or answers nonsense is REPLAY_STORE_UNAVAILABLE (503), never a first use.
// Real Redis/Postgres stores and two instances are tested in @mandate/redis and @mandate/postgres.
import { createClientAssertion, createSharedNonceSource, Ed25519Key, MandateError, type ReplayStore } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createAuthority } from '../src/index.js'

const ISSUER = 'https://authority.example'

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return MandateError.is(err) ? err.code : `not a MandateError: ${String(err)}`
  }
  return 'accepted'
}

async function withStore(replay: ReplayStore) {
  const authority = await createAuthority({ issuer: ISSUER, replay })
  const agent = Ed25519Key.generate()
  await authority.registerAgent({ did: agent.did, name: 'worker' })
  return { authority, agent, assertion: () => createClientAssertion(agent, { clientId: agent.did, audience: ISSUER }) }
}

describe('Authority single use on a shared ReplayStore', () => {
  it('records every client assertion jti in the given store', async () => {
    const keys: string[] = []
    const seen = new Set<string>()
    const { authority, assertion } = await withStore({ use: (k) => (keys.push(k), seen.has(k) ? false : (seen.add(k), true)) })
    const a = assertion()
    expect(await codeOf(authority.authenticate(a))).toBe('accepted')
    expect(await codeOf(authority.authenticate(a))).toBe('INVALID_CLIENT')
    expect(keys).toHaveLength(2)
    expect(keys[0]).toMatch(/^assertion:did:key:/)
    await authority.close()
  })

  it('a store that throws a plain error: REPLAY_STORE_UNAVAILABLE, not accepted', async () => {
    const { authority, assertion } = await withStore({ use: () => Promise.reject(new Error('ECONNREFUSED')) })
    const e = await authority.authenticate(assertion()).catch((err: unknown) => err)
    expect(MandateError.is(e) && e.code).toBe('REPLAY_STORE_UNAVAILABLE')
    expect(MandateError.is(e) && e.status).toBe(503)
    await authority.close()
  })

  it('a store answering something other than a boolean (e.g. a raw "OK") is refused, not taken as a first use', async () => {
    const { authority, assertion } = await withStore({ use: () => 'OK' as unknown as boolean })
    expect(await codeOf(authority.authenticate(assertion()))).toBe('REPLAY_STORE_UNAVAILABLE')
    await authority.close()
  })

  it('requireDpopNonce takes a shared NonceSource (and refuses a malformed one)', async () => {
    const secret = 's'.repeat(32)
    const a = await createAuthority({ issuer: ISSUER, requireDpopNonce: createSharedNonceSource({ secret }) })
    const b = await createAuthority({ issuer: ISSUER, requireDpopNonce: createSharedNonceSource({ secret }) })
    expect(a.dpopNonce()).toBe(b.dpopNonce())
    await expect(createAuthority({ issuer: ISSUER, requireDpopNonce: { current: 1 } as never })).rejects.toThrow(MandateError)
    await a.close()
    await b.close()
  })

  it('keeps a per-principal budget in front of the shared store (a shared store cannot tell who wrote a key)', async () => {
    const seen = new Set<string>()
    const writes: string[] = []
    const replay: ReplayStore = { use: (k) => (writes.push(k), seen.has(k) ? false : (seen.add(k), true)) }
    const authority = await createAuthority({ issuer: ISSUER, replay, singleUse: { perPrincipal: 3 } })
    const greedy = Ed25519Key.generate()
    const other = Ed25519Key.generate()
    await authority.registerAgent({ did: greedy.did, name: 'greedy' })
    await authority.registerAgent({ did: other.did, name: 'other' })
    const as = (k: Ed25519Key) => createClientAssertion(k, { clientId: k.did, audience: ISSUER })
    for (let i = 0; i < 3; i++) expect(await codeOf(authority.authenticate(as(greedy)))).toBe('accepted')
    // the fourth live entry of this principal is refused before the shared store is written
    const before = writes.length
    expect(await codeOf(authority.authenticate(as(greedy)))).toBe('CAPACITY_EXCEEDED')
    expect(writes.length).toBe(before)
    // another principal's budget is its own
    expect(await codeOf(authority.authenticate(as(other)))).toBe('accepted')
    await authority.close()
  })

  it('refuses singleUse.maxEntries together with a shared store (it bounds only the in-memory one)', async () => {
    expect(await codeOf(createAuthority({ issuer: ISSUER, replay: { use: () => true }, singleUse: { maxEntries: 10 } }))).toBe('CONFIG_INVALID')
  })
})
