// createGuard, createRemoteKeySet, createRevocationStatusClient, MemoryReplayStore and the nonce
// source refuse options that would switch a check off or fail only at the first call (outside probe).
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import {
  createGuard, createNonceSource, createProof, createRemoteKeySet, createRevocationStatusClient, Ed25519Key, MemoryReplayStore, verifyProof,
  type GuardOptions, type RevocationStatusDocument,
} from '@mandate/core'
import { AUD, expectCode, expectReject, ISSUER, TestAuthority } from './helpers.js'

const auth = new TestAuthority()
const base: GuardOptions = { issuer: ISSUER, jwks: auth.keys, audience: AUD }

describe('createGuard options', () => {
  it('an unknown option (a typo that would switch a check off) is CONFIG_INVALID, naming it', () => {
    for (const typo of ['revocations', 'requiredScope', 'replayStore', 'requireCallbinding', '__proto__x']) {
      const err = expectCode(() => createGuard({ ...base, [typo]: true } as GuardOptions), 'CONFIG_INVALID')
      expect(err.message).toContain(typo)
    }
  })

  const wrong: [string, Partial<Record<keyof GuardOptions, unknown>>][] = [
    ['jwks null', { jwks: null }], ['jwks 42', { jwks: 42 }], ['jwks {resolve: 1}', { jwks: { resolve: 1 } }], ['jwks {keys: []}', { jwks: { keys: [] } }],
    ['replay {}', { replay: {} }], ['replay "redis://x"', { replay: 'redis://x' }], ['revocation {}', { revocation: {} }], ['revocation true', { revocation: true }],
    ['nonce true', { nonce: true }], ['nonce {}', { nonce: {} }], ['registry {}', { registry: {} }], ['requiredScopes "admin"', { requiredScopes: 'admin' }],
    ['requiredScopes {}', { requiredScopes: {} }], ['requiredScopes ["a b"]', { requiredScopes: ['a b'] }], ['requiredScopes [""]', { requiredScopes: [''] }],
    ['requireCallBinding "false"', { requireCallBinding: 'false' }], ['mandateCache "off"', { mandateCache: 'off' }], ['options null', {}],
  ]
  for (const [name, o] of wrong) {
    it(`${name} is CONFIG_INVALID when the guard is built`, () => {
      expectCode(() => createGuard((name === 'options null' ? null : { ...base, ...o }) as GuardOptions), 'CONFIG_INVALID')
    })
  }

  it('a replay store answering anything but a boolean refuses the call (REPLAY_STORE_UNAVAILABLE), never a first use', async () => {
    const agent = Ed25519Key.generate()
    const root = auth.root(agent)
    for (const answer of ['true', 'false', 1, undefined, null, {}]) {
      const guard = createGuard({ ...base, replay: { use: async () => answer as boolean } })
      const args = { amount: 1, path: '/data/x' }
      const proof = createProof(agent, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: args, now: auth.now })
      await expectReject(guard.verifyToolCall({ mandate: root.token, proof, tool: 'files.read', arguments: args }), 'REPLAY_STORE_UNAVAILABLE')
    }
    // verifyProof with its own replay store: the same rule
    const proof = createProof(agent, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: {} })
    await expectReject(verifyProof(proof, { accessToken: root.token, audience: AUD, replay: { use: () => 'yes' as unknown as boolean } }), 'REPLAY_STORE_UNAVAILABLE')
  })
})

describe('clocks and sizes of the stores and sources', () => {
  const servers: Server[] = []
  afterAll(async () => {
    for (const s of servers) s.closeAllConnections()
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  })
  async function serve(body: (issuer: string) => unknown): Promise<{ url: string; down: { now: boolean } }> {
    const down = { now: false }
    let url = ''
    const s = createServer((_req, res) => (down.now ? void res.writeHead(503).end() : void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body(url)))))
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    servers.push(s)
    url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`
    return { url, down }
  }

  it('a non-function clock is CONFIG_INVALID when built', () => {
    expectCode(() => createRemoteKeySet('http://127.0.0.1:1/jwks', { now: 'x' as unknown as () => number }), 'CONFIG_INVALID')
    expectCode(() => createRevocationStatusClient('http://127.0.0.1:1/s', { issuer: ISSUER, now: 5 as unknown as () => number }), 'CONFIG_INVALID')
    expectCode(() => new MemoryReplayStore({ now: 'x' as unknown as () => number }), 'CONFIG_INVALID')
    expectCode(() => createNonceSource({ now: {} as unknown as () => number }), 'CONFIG_INVALID')
  })

  it('a key set whose clock reads NaN refuses rather than trusting a key forever', async () => {
    const key = Ed25519Key.generate()
    const jwks = await serve(() => ({ keys: [key.publicJwk] }))
    let t: number = Date.now()
    const keys = createRemoteKeySet(`${jwks.url}/jwks`, { now: () => t, maxStalenessMs: 1 })
    await keys.refresh()
    jwks.down.now = true
    t = NaN
    await expect(Promise.resolve().then(() => keys.resolve(key.kid))).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
  })

  it('a revocation client whose clock reads NaN refuses rather than answering from an old list', async () => {
    const doc = await serve((): RevocationStatusDocument => ({ issuer: ISSUER, cursor: '0', mandates: [], tasks: [], agents: [] }))
    let t: number = Date.now()
    const status = createRevocationStatusClient(`${doc.url}/status`, { issuer: ISSUER, now: () => t, maxStalenessMs: 2000 })
    await status.refresh()
    t = NaN
    await expect(Promise.resolve().then(() => status.isRevoked({ ids: ['m'], txn: 't', actors: [] }))).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
  })

  it('MemoryReplayStore: an expiry that is not a number is refused; one already past still holds the key this second (outside probe)', () => {
    const store = new MemoryReplayStore({ now: () => 1_000 })
    for (const bad of [NaN, undefined, Infinity, '5']) expectCode(() => store.use(`k-${String(bad)}`, bad as number), 'CONFIG_INVALID')
    expect(store.use('past', 1)).toBe(true)
    expect(store.use('past', 1)).toBe(false)
    expect(store.use('now', 1_000)).toBe(true)
    expect(store.use('now', 1_000)).toBe(false)
  })

  it('verifyProof: a maxAge or skew that is not a sane number is CONFIG_INVALID, never a window switched off (outside probe)', async () => {
    const agent = Ed25519Key.generate()
    const old = Math.floor(Date.now() / 1000) - 365 * 86_400
    const proof = createProof(agent, { accessToken: 'x'.repeat(40), audience: AUD, tool: 't', arguments: {}, now: old })
    const replay = new MemoryReplayStore()
    for (const o of [{ maxAge: NaN }, { skew: NaN }, { maxAge: Infinity }, { maxAge: 0 }, { skew: -1 }, { skew: 61 }, { maxAge: '60' }]) {
      await expectReject(verifyProof(proof, { accessToken: 'x'.repeat(40), audience: AUD, replay, ...(o as object) }), 'CONFIG_INVALID')
    }
    await expectReject(verifyProof(proof, { accessToken: 'x'.repeat(40), audience: AUD, replay }), 'PROOF_STALE')
  })

  it('MemoryReplayStore maxEntries and the nonce period must be positive', () => {
    for (const maxEntries of [NaN, 0, -1, 1.5, Infinity]) expectCode(() => new MemoryReplayStore({ maxEntries }), 'CONFIG_INVALID')
    for (const rotateEverySeconds of [NaN, 0, -5, Infinity]) expectCode(() => createNonceSource({ rotateEverySeconds }), 'CONFIG_INVALID')
  })
})
