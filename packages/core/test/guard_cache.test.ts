// The guard's cache of verified audience-level tokens: a hit costs one signature verification (the
// proof's), never the mandate's again — counted on the real crypto backend, not timed — and every
// invalidation case refuses: key rotated out of a remote JWKS (real HTTP), revocation of the token,
// an ancestor, the task or an actor, expiry on a fake clock, bounded memory, forged look-alikes,
// another holder's proof, and per_call tools for every credential that is not call-bound.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createProof, createRemoteKeySet, cryptoBackend, Ed25519Key, MemoryRevocationList, tokenHash, type Guard, type KeyResolver, type PublicKeyHandle,
} from '@mandate/core'
import { MandateCache } from '../src/guard/mandate_cache.js'
import { AUD, expectReject, ISSUER, TestAuthority } from './helpers.js'

const args = { path: '/data/a.txt', amount: 5 }
const fakeEntry = (token: string) => ({
  token, hash: 'h', claims: {} as never, kid: 'k', key: { raw: new Uint8Array(32), native: null } as PublicKeyHandle, holderJkt: 'j',
  revocationIds: [], actors: [], actorChain: [], scopes: [], exp: 2, nbf: 0, iat: 0, mode: 'mandate' as const,
})
const call = (g: Guard, agent: Ed25519Key, mandate: string, tool = 'files.read', a: unknown = args) =>
  g.verifyToolCall({ mandate, proof: createProof(agent, { accessToken: mandate, audience: AUD, tool, arguments: a }), tool, arguments: a })

let verifies: ReturnType<typeof vi.spyOn>
beforeEach(() => {
  verifies = vi.spyOn(cryptoBackend, 'verify')
})
afterEach(() => {
  verifies.mockRestore()
})
/** Signature verifications made by `fn` (mandate + proof on a miss, the proof only on a hit). */
async function countVerifies(fn: () => Promise<unknown>): Promise<number> {
  const before = verifies.mock.calls.length
  await fn()
  return verifies.mock.calls.length - before
}

describe('cache hits skip the mandate signature', () => {
  const auth = new TestAuthority()
  const agent = Ed25519Key.generate()

  it('an audience credential: verified once, then one verify (the proof) per call, mode "audience"', async () => {
    const root = auth.root(agent)
    const cred = await auth.narrow(root.token, agent, { kind: 'audience', audience: AUD })
    const g = auth.guard()
    expect(await countVerifies(() => call(g, agent, cred.token))).toBe(2)
    for (let i = 0; i < 5; i++) expect(await countVerifies(() => call(g, agent, cred.token))).toBe(1)
    const v = await call(g, agent, cred.token)
    expect(v).toMatchObject({ mode: 'audience', callBound: false, mandateId: cred.claims.jti, actor: agent.did })
    expect(g.mandateCache?.size).toBe(1)
  })

  it('a plain mandate is cached too (mode "mandate"); the cached claims are frozen', async () => {
    const root = auth.root(agent)
    const g = auth.guard()
    await call(g, agent, root.token)
    expect(await countVerifies(() => call(g, agent, root.token))).toBe(1)
    const v = await call(g, agent, root.token)
    expect(v.mode).toBe('mandate')
    expect(Object.isFrozen(v.claims)).toBe(true)
    expect(Object.isFrozen(v.claims.authorization_details[0])).toBe(true)
    // the arrays handed out are the cached entry's, frozen: changing them cannot change the next call's answer
    expect(() => (v.ancestors as string[]).push('x')).toThrow(TypeError)
    expect(() => (v.actorChain as string[]).push('y')).toThrow(TypeError)
    expect(() => (v.scopes as string[]).push('z')).toThrow(TypeError)
    const again = await call(g, agent, root.token)
    expect(again.ancestors).toEqual([])
    expect(again.actorChain).toEqual([agent.did])
  })

  it('a call credential is never cached (single use): mode "call", two verifies, cache empty', async () => {
    const root = auth.root(agent)
    const c = await auth.narrow(root.token, agent, { kind: 'call', audience: AUD, tool: 'files.read', arguments: args })
    const g = auth.guard()
    expect(await countVerifies(() => call(g, agent, c.token))).toBe(2)
    expect(g.mandateCache?.size).toBe(0)
    // frozen all the same (not cached, but the same contract): a caller writing to them fails in a test as it would in production
    const c2 = await auth.narrow(root.token, agent, { kind: 'call', audience: AUD, tool: 'files.read', arguments: args })
    const v = await call(g, agent, c2.token)
    for (const arr of [v.ancestors, v.actorChain, v.scopes]) expect(Object.isFrozen(arr)).toBe(true)
    const uncached = await call(auth.guard({ mandateCache: false }), agent, root.token)
    for (const arr of [uncached.ancestors, uncached.actorChain, uncached.scopes]) expect(Object.isFrozen(arr)).toBe(true)
    await expectReject(call(g, agent, c.token), 'TOKEN_REPLAYED')
  })

  it('mandateCache: false verifies the mandate every time', async () => {
    const root = auth.root(agent)
    const g = auth.guard({ mandateCache: false })
    await call(g, agent, root.token)
    expect(await countVerifies(() => call(g, agent, root.token))).toBe(2)
    expect(g.mandateCache).toBeUndefined()
  })

  it('every per-call check still runs on a hit: proof replay, tool grant, constraints, other holder', async () => {
    const root = auth.root(agent)
    const g = auth.guard()
    await call(g, agent, root.token)
    const proof = createProof(agent, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: args })
    await g.verifyToolCall({ mandate: root.token, proof, tool: 'files.read', arguments: args })
    await expectReject(g.verifyToolCall({ mandate: root.token, proof, tool: 'files.read', arguments: args }), 'PROOF_REPLAYED')
    await expectReject(call(g, agent, root.token, 'mail.send'), 'TOOL_NOT_ALLOWED')
    await expectReject(call(g, agent, root.token, 'files.read', { path: '/etc/passwd', amount: 5 }), 'CONSTRAINT_VIOLATED')
    // a proof by another key, even with the right ath: the cached binding (cnf.jkt) refuses it
    const thief = Ed25519Key.generate()
    await expectReject(call(g, thief, root.token), 'PROOF_BINDING_MISMATCH')
    // a proof bound to other arguments than the call's
    const other = createProof(agent, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: { path: '/data/b', amount: 1 } })
    await expectReject(g.verifyToolCall({ mandate: root.token, proof: other, tool: 'files.read', arguments: args }), 'ARGUMENTS_MISMATCH')
    expect(g.mandateCache?.size).toBe(1)
  })

  it('a look-alike token never hits: tampered signature or payload is verified (and refused) in full', async () => {
    const root = auth.root(agent)
    const g = auth.guard()
    await call(g, agent, root.token)
    const [h, p, s] = root.token.split('.') as [string, string, string]
    const forgedSig = `${h}.${p}.${s[0] === 'A' ? 'B' : 'A'}${s.slice(1)}`
    await expectReject(call(g, agent, forgedSig), 'SIGNATURE_INVALID')
    // same signature (the map key), other payload: misses, is verified in full, and evicts nothing
    const forgedPayload = `${h}.${p.slice(0, -2)}${p.slice(-2) === 'AA' ? 'BB' : 'AA'}.${s}`
    await expect(call(g, agent, forgedPayload)).rejects.toBeInstanceOf(Error)
    const other = auth.root(agent, { subject: 'mallory' })
    const spliced = `${other.token.slice(0, other.token.lastIndexOf('.'))}.${s}`
    expect(await countVerifies(() => expectReject(call(g, agent, spliced), 'SIGNATURE_INVALID'))).toBe(1)
    expect(g.mandateCache?.size).toBe(1)
    expect(await countVerifies(() => call(g, agent, root.token))).toBe(1)
  })

  it('only the very same string hits (a one-character look-alike or a prefix misses)', () => {
    const cache = new MandateCache({ maxEntries: 4 })
    const entry = fakeEntry('a.b.c')
    cache.set(entry)
    expect(cache.get('a.b.c')).toBe(entry)
    expect(cache.get(['a', 'b', 'c'].join('.'))).toBe(entry) // another string object, same bytes
    expect(cache.get('a.b.d')).toBeUndefined()
    expect(cache.get('a.b.')).toBeUndefined()
    expect(cache.get('a.b.c~')).toBeUndefined()
    // a long token and a look-alike with the same tail (the map key): only the exact string hits or evicts
    const long = fakeEntry(`${'p'.repeat(200)}.${'s'.repeat(86)}`)
    cache.set(long)
    const alike = `${'q'.repeat(200)}.${'s'.repeat(86)}`
    expect(cache.get(alike)).toBeUndefined()
    cache.delete(alike)
    expect(cache.get(long.token)).toBe(long)
  })
})

describe('invalidation', () => {
  const auth = new TestAuthority()
  const agent = Ed25519Key.generate()

  it('revocation of the token itself: refused and evicted', async () => {
    const revocation = new MemoryRevocationList()
    const root = auth.root(agent)
    const cred = await auth.narrow(root.token, agent, { kind: 'audience', audience: AUD })
    const g = auth.guard({ revocation })
    await call(g, agent, cred.token)
    expect(g.mandateCache?.size).toBe(1)
    revocation.revokeMandate(cred.claims.jti)
    await expectReject(call(g, agent, cred.token), 'REVOKED')
    expect(g.mandateCache?.size).toBe(0)
  })

  it('revocation of an ancestor, the task, or an actor of the chain: refused on the next hit', async () => {
    const worker = Ed25519Key.generate()
    const cases: [string, (l: MemoryRevocationList, ids: { root: string; mid: string; txn: string }) => void][] = [
      ['root ancestor', (l, ids) => l.revokeMandate(ids.root)],
      ['parent ancestor', (l, ids) => l.revokeMandate(ids.mid)],
      ['task', (l, ids) => l.revokeTask(ids.txn)],
      ['earlier actor', (l) => l.revokeAgent(agent.did)],
      ['current actor', (l) => l.revokeAgent(worker.did)],
    ]
    for (const [name, revoke] of cases) {
      const revocation = new MemoryRevocationList()
      const root = auth.root(agent)
      const mid = await auth.narrow(root.token, agent, auth.delegate(worker))
      const cred = await auth.narrow(mid.token, worker, { kind: 'audience', audience: AUD })
      const g = auth.guard({ revocation })
      await call(g, worker, cred.token)
      expect(await countVerifies(() => call(g, worker, cred.token)), name).toBe(1)
      revoke(revocation, { root: root.claims.jti, mid: mid.claims.jti, txn: root.claims.txn })
      await expectReject(call(g, worker, cred.token), 'REVOKED')
      expect(g.mandateCache?.size, name).toBe(0)
    }
  })

  it('expiry on a fake clock: a hit after exp (+ skew) is refused and evicted; nbf is respected', async () => {
    let ms = auth.now * 1000
    const root = auth.root(agent, { expiresIn: 600 })
    const cred = await auth.narrow(root.token, agent, { kind: 'audience', audience: AUD, expiresIn: 300 })
    const g = auth.guard({ clock: () => ms, skew: 10 })
    await call(g, agent, cred.token)
    ms = (cred.claims.exp + 9) * 1000 - 1 // still inside the skew; proofs are created at real time, keep it fresh
    vi.useFakeTimers({ now: ms, toFake: ['Date'] })
    try {
      await call(g, agent, cred.token)
      ms = (cred.claims.exp + 10) * 1000
      vi.setSystemTime(ms)
      await expectReject(call(g, agent, cred.token), 'TOKEN_EXPIRED')
      expect(g.mandateCache?.size).toBe(0)
      // a clock that goes back before nbf - skew: a cached token is not yet valid either
      ms = auth.now * 1000
      vi.setSystemTime(ms)
      await call(g, agent, cred.token)
      expect(g.mandateCache?.size).toBe(1)
      ms = (cred.claims.nbf - 11) * 1000
      vi.setSystemTime(ms)
      await expectReject(call(g, agent, cred.token), 'TOKEN_NOT_YET_VALID')
      expect(g.mandateCache?.size).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })

  it('bounded: never more than maxEntries; the least recently used goes first and is verified again', async () => {
    const g = auth.guard({ mandateCache: { maxEntries: 3 } })
    const tokens = Array.from({ length: 6 }, () => auth.root(agent).token)
    for (const t of tokens) await call(g, agent, t)
    expect(g.mandateCache?.size).toBe(3)
    // tokens[5] is cached, tokens[0] was evicted
    expect(await countVerifies(() => call(g, agent, tokens[5] as string))).toBe(1)
    expect(await countVerifies(() => call(g, agent, tokens[0] as string))).toBe(2)
    expect(g.mandateCache?.size).toBe(3)
  })

  it('bounded in bytes too', async () => {
    const cache = new MandateCache({ maxEntries: 1000, maxBytes: 64 * 1024 })
    for (let i = 0; i < 200; i++) cache.set(fakeEntry(`${'x'.repeat(2000)}${i}`))
    expect(cache.bytes).toBeLessThanOrEqual(64 * 1024)
    expect(cache.size).toBeLessThan(200)
    expect(cache.get(`${'x'.repeat(2000)}199`)).toBeDefined()
    expect(cache.get(`${'x'.repeat(2000)}0`)).toBeUndefined()
  })

  it('a kid that now resolves to another key is verified again from scratch (and refused)', async () => {
    // a JWKS that re-uses the kid for other key material: the cached result must not survive it
    const other = Ed25519Key.generate()
    const anotherHandle = cryptoBackend.importPublic(new Uint8Array(Buffer.from(other.publicJwk.x, 'base64url')))
    let swapped = false
    const resolver: KeyResolver = { resolve: (kid) => (swapped ? anotherHandle : auth.keys.resolve(kid)) }
    const g = auth.guard({ jwks: resolver })
    const root = auth.root(agent)
    await call(g, agent, root.token)
    swapped = true
    await expectReject(call(g, agent, root.token), 'SIGNATURE_INVALID')
    expect(g.mandateCache?.size).toBe(0)
  })
})

describe('rotation at a real remote JWKS', () => {
  const servers: Server[] = []
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  })

  async function jwksServer(doc: () => unknown): Promise<string> {
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc())))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    servers.push(server)
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`
  }

  it('a refresh that drops the kid evicts the cached mandate: the next call is refused KEY_NOT_FOUND', async () => {
    const auth = new TestAuthority()
    const agent = Ed25519Key.generate()
    const next = Ed25519Key.generate()
    let keys = [auth.key.publicJwk]
    const url = await jwksServer(() => ({ keys }))
    const remote = createRemoteKeySet(url)
    const g = auth.guard({ jwks: remote })
    const root = auth.root(agent)
    await call(g, agent, root.token)
    expect(await countVerifies(() => call(g, agent, root.token))).toBe(1)
    keys = [next.publicJwk] // the Authority rotated: the old key is withdrawn
    await remote.refresh()
    await expectReject(call(g, agent, root.token), 'KEY_NOT_FOUND')
    expect(g.mandateCache?.size).toBe(0)
  })

  it('the age-driven refresh (maxAgeMs) on a hit sees the rotation too', async () => {
    const auth = new TestAuthority()
    const agent = Ed25519Key.generate()
    let keys = [auth.key.publicJwk]
    const url = await jwksServer(() => ({ keys }))
    let t = 1_000_000
    const remote = createRemoteKeySet(url, { maxAgeMs: 60_000, cooldownMs: 0, now: () => t })
    const g = auth.guard({ jwks: remote })
    const root = auth.root(agent)
    await call(g, agent, root.token)
    await call(g, agent, root.token)
    keys = [Ed25519Key.generate().publicJwk]
    t += 61_000
    await expectReject(call(g, agent, root.token), 'KEY_NOT_FOUND')
    expect(g.mandateCache?.size).toBe(0)
  })

  it('a refresh that keeps the key keeps the entry (still one verify per call)', async () => {
    const auth = new TestAuthority()
    const agent = Ed25519Key.generate()
    const url = await jwksServer(() => ({ keys: [auth.key.publicJwk, Ed25519Key.generate().publicJwk] }))
    const remote = createRemoteKeySet(url)
    const g = auth.guard({ jwks: remote })
    const root = auth.root(agent)
    await call(g, agent, root.token)
    await remote.refresh()
    expect(await countVerifies(() => call(g, agent, root.token))).toBe(1)
  })
})

describe('per_call grants demand an Authority call credential', () => {
  const auth = new TestAuthority()
  const agent = Ed25519Key.generate()
  const tools = [
    { type: 'tool_access' as const, tools: ['billing.*'], per_call: true as const },
    { type: 'tool_access' as const, tools: ['files.*'] },
  ]

  it('refused for a plain mandate and an audience credential, accepted with a call credential', async () => {
    const root = auth.root(agent, { tools })
    const cred = await auth.narrow(root.token, agent, { kind: 'audience', audience: AUD })
    const g = auth.guard()
    const refund = { invoice: 'i1' }
    await expectReject(call(g, agent, root.token, 'billing.refund', refund), 'CALL_CREDENTIAL_REQUIRED')
    await expectReject(call(g, agent, cred.token, 'billing.refund', refund), 'CALL_CREDENTIAL_REQUIRED')
    // the same tokens still work for tools outside the per_call grant, from the cache
    await call(g, agent, cred.token)
    await expectReject(call(g, agent, cred.token, 'billing.refund', refund), 'CALL_CREDENTIAL_REQUIRED')
    const c = await auth.narrow(root.token, agent, { kind: 'call', audience: AUD, tool: 'billing.refund', arguments: refund })
    const v = await call(g, agent, c.token, 'billing.refund', refund)
    expect(v).toMatchObject({ mode: 'call', callBound: true })
  })

  it('one per_call grant covering the tool is enough, even when another grant also covers it', async () => {
    const root = auth.root(agent, { tools: [{ type: 'tool_access', tools: ['files.*'] }, { type: 'tool_access', tools: ['files.delete'], per_call: true }] })
    const g = auth.guard()
    await call(g, agent, root.token, 'files.read')
    await expectReject(call(g, agent, root.token, 'files.delete'), 'CALL_CREDENTIAL_REQUIRED')
  })

  it('an HTTP request naming no tool is refused when every grant for the audience is per_call', async () => {
    const root = auth.root(agent, { tools: [{ type: 'tool_access', tools: ['billing.*'], per_call: true }] })
    const g = auth.guard()
    const url = `${AUD}/x`
    const proof = createProof(agent, { accessToken: root.token, method: 'GET', url })
    await expectReject(g.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${root.token}`, dpop: proof } }), 'CALL_CREDENTIAL_REQUIRED')
  })
})

describe('the cache entry', () => {
  it('is found by the presented string and keeps tokenHash(token), the proof ath', async () => {
    const auth = new TestAuthority()
    const agent = Ed25519Key.generate()
    const root = auth.root(agent)
    const g = auth.guard()
    await call(g, agent, root.token)
    const entry = g.mandateCache?.get(root.token)
    expect(entry?.claims.jti).toBe(root.claims.jti)
    expect(entry?.hash).toBe(tokenHash(root.token))
  })
})
