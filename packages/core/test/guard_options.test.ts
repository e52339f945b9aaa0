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

describe('hostile or failing Authority endpoints (outside probe)', () => {
  const servers: Server[] = []
  afterAll(async () => {
    for (const s of servers) s.closeAllConnections()
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  })
  /** A server on 127.0.0.1 answering each request with `answer(path, n)` (n counts requests), after `delayMs`. */
  async function serveRaw(answer: (path: string, n: number) => { status: number; body: string }, delayMs = 0): Promise<{ url: string; hits: () => number }> {
    let n = 0
    const s = createServer((req, res) => {
      const a = answer(req.url ?? '', n++)
      setTimeout(() => void res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body), delayMs)
    })
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    servers.push(s)
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, hits: () => n }
  }

  it('a key set from a URL (as createGuard({ jwks: url }) builds) stops trusting its keys an hour after the last good fetch', async () => {
    const key = Ed25519Key.generate()
    let down = false
    const jwks = await serveRaw(() => (down ? { status: 503, body: '' } : { status: 200, body: JSON.stringify({ keys: [key.publicJwk] }) }))
    let t = Date.now()
    const keys = createRemoteKeySet(`${jwks.url}/jwks`, { now: () => t })
    await keys.refresh()
    down = true
    t += 59 * 60_000
    await expect(Promise.resolve(keys.resolve(key.kid))).resolves.toBeDefined()
    t += 2 * 60_000
    await expectReject(Promise.resolve().then(() => keys.resolve(key.kid)), 'JWKS_UNAVAILABLE')
    // for ever only when asked for
    const forever = createRemoteKeySet(`${jwks.url}/jwks`, { now: () => t, maxStalenessMs: Infinity })
    down = false
    await forever.refresh()
    down = true
    t += 365 * 86_400_000
    await expect(Promise.resolve(forever.resolve(key.kid))).resolves.toBeDefined()
  })

  it('a status endpoint that always says `more`, each page slow: a check waits at most one fetch deadline, and one refresh ends by its own', async () => {
    const page = (n: number) => JSON.stringify({ issuer: ISSUER, cursor: String(n + 1), mandates: [`m${n}`], tasks: [], agents: [], more: true })
    const slow = await serveRaw((_p, n) => ({ status: 200, body: page(n) }), 100)
    const status = createRevocationStatusClient(`${slow.url}/status`, { issuer: ISSUER, timeoutMs: 300, maxStalenessMs: 1_000, intervalMs: 0 })
    const started = Date.now()
    await expectReject(Promise.resolve().then(() => status.isRevoked({ ids: ['x'], txn: 't', actors: [] })), 'REVOCATION_STATUS_UNAVAILABLE')
    expect(Date.now() - started).toBeLessThan(1_000)
    // the refresh itself gives up at the staleness limit, long before 200 pages
    await expectReject(status.refresh(), 'REVOCATION_STATUS_UNAVAILABLE')
    expect(slow.hits()).toBeLessThan(20)
  })

  it('a client with a list answers from it while a long refresh runs (within the staleness limit), then refuses once stale', async () => {
    const doc = (n: number, more: boolean, mandates: string[] = []) => JSON.stringify({ issuer: ISSUER, cursor: `c${n}`, mandates, tasks: [], agents: [], ...(more ? { more: true } : {}) })
    // the first document at once; then refreshes of 20 pages, each 150 ms (well inside its 250 ms deadline)
    let n = 0
    const s = createServer((_req, res) => {
      const i = n++
      const body = i === 0 ? doc(i, false, ['revoked']) : doc(i, i % 20 !== 0)
      setTimeout(() => void res.writeHead(200, { 'content-type': 'application/json' }).end(body), i === 0 ? 0 : 150)
    })
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    servers.push(s)
    let t = Date.now()
    const status = createRevocationStatusClient(`http://127.0.0.1:${(s.address() as AddressInfo).port}/status`, { issuer: ISSUER, timeoutMs: 250, maxStalenessMs: 10_000, intervalMs: 0, now: () => t })
    await status.refresh()
    const started = Date.now()
    expect(await status.isRevoked({ ids: ['revoked'], txn: 't', actors: [] })).toBe(true)
    expect(await status.isRevoked({ ids: ['fine'], txn: 't', actors: [] })).toBe(false)
    // two checks, each waiting at most one fetch deadline (not the 3 s of the 20 pages)
    expect(Date.now() - started).toBeLessThan(1_500)
    t += 11_000
    await expectReject(Promise.resolve().then(() => status.isRevoked({ ids: ['fine'], txn: 't', actors: [] })), 'REVOCATION_STATUS_UNAVAILABLE')
  })

  it('an endpoint refusing every cursor (400) is read again from the start once per refresh, not once per page', async () => {
    const answers = await serveRaw((p, n) => (p.includes('since=')
      ? { status: 400, body: '{}' }
      : { status: 200, body: JSON.stringify({ issuer: ISSUER, cursor: String(n), mandates: [`m${n}`], tasks: [], agents: [], more: true }) }))
    const status = createRevocationStatusClient(`${answers.url}/status`, { issuer: ISSUER })
    await expectReject(status.refresh(), 'REVOCATION_STATUS_UNAVAILABLE')
    // the first page, the refused cursor, the whole list again, the refused cursor again: then it gives up
    expect(answers.hits()).toBe(4)
  })

  it('a full revocation list still takes a page that repeats ids it holds', async () => {
    const { MemoryRevocationList } = await import('../src/stores/revocation.js')
    const list = new MemoryRevocationList({ maxEntries: 3 })
    list.add({ mandates: ['a', 'b'], tasks: ['t'] })
    list.add({ mandates: ['a', 'b'], tasks: ['t'] })
    expectCode(() => list.add({ agents: ['new'] }), 'CAPACITY_EXCEEDED')
    expect(list.isRevoked({ ids: ['b'], txn: 'x', actors: [] })).toBe(true)
  })

  it('Authority metadata with a repeated member is refused, not read last-wins', async () => {
    const { fetchAuthorityMetadata } = await import('@mandate/core')
    let issuer = ''
    const meta = await serveRaw(() => ({ status: 200, body: `{"issuer":"https://evil.example","jwks_uri":"${issuer}/jwks","token_endpoint":"${issuer}/token","issuer":"${issuer}"}` }))
    issuer = meta.url
    await expectReject(fetchAuthorityMetadata(issuer), 'INVALID_RESPONSE')
    // the same document without the repeat is read
    const plain = await serveRaw(() => ({ status: 200, body: JSON.stringify({ issuer: plainUrl, jwks_uri: `${plainUrl}/jwks`, token_endpoint: `${plainUrl}/token` }) }))
    const plainUrl = plain.url
    await expect(fetchAuthorityMetadata(plainUrl)).resolves.toMatchObject({ issuer: plainUrl })
  })
})
