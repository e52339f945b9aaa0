// The Guard against real HTTP: a node:http resource server on 127.0.0.1 using verifyRequest, a real
// JWKS server for createRemoteKeySet, a real revocation-status server, jose and dpop as third-party
// clients/verifiers. Ephemeral ports; servers closed in afterAll.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLocalJWKSet, importJWK, jwtVerify } from 'jose'
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop'
import {
  argumentsDigest, buildRootMandate, challengeFor, createGuard, createNonceSource, createProof, createRemoteKeySet, createRevocationStatusClient,
  didKeyFromPublicJwk, Ed25519Key, MandateError, MemoryReplayStore, narrowMandate, randomId, signMandate, verifyMandate, type Guard,
  type RevocationStatusDocument,
} from '@mandate/core'
import { expectReject, ISSUER, TestAuthority } from './helpers.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>
async function listen(handler: Handler): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => void handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}
const servers: Server[] = []
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
})

describe('verifyRequest behind a real HTTP server', () => {
  const auth = new TestAuthority()
  const agent = Ed25519Key.generate()
  let origin = ''
  let guard: Guard
  let nonceGuard: Guard
  let token = ''
  const nonces = createNonceSource()

  beforeAll(async () => {
    const handle = (g: () => Guard): Handler => async (req, res) => {
      try {
        const v = await g().verifyRequest({ method: req.method as string, url: `${origin}${req.url}`, headers: req.headersDistinct as Record<string, string[]> })
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ actor: v.actor, subject: v.subject, chain: v.actorChain }))
      } catch (err) {
        const c = challengeFor(err)
        res.writeHead(c.status, c.headers).end(JSON.stringify({ ...c.body, code: MandateError.is(err) ? err.code : 'INTERNAL' }))
      }
    }
    const s = await listen((req, res) => (req.url?.startsWith('/nonce') ? handle(() => nonceGuard)(req, res) : handle(() => guard)(req, res)))
    servers.push(s.server)
    origin = s.origin
    guard = createGuard({ issuer: ISSUER, jwks: { keys: [auth.key.publicJwk] }, audience: origin })
    nonceGuard = createGuard({ issuer: ISSUER, jwks: { keys: [auth.key.publicJwk] }, audience: origin, nonce: nonces })
    token = auth.root(agent, { audiences: [origin], tools: [{ type: 'tool_access', tools: ['files.*'] }] }).token
  })

  // node:http sends an array value as repeated header fields, so two DPoP headers really go on the wire
  const send = (path: string, headers: Record<string, string | string[]>, method = 'GET') =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Record<string, unknown> }>((resolve, reject) => {
      const u = new URL(path, origin)
      const r = request({ host: '127.0.0.1', port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
        let data = ''
        res.on('data', (c: Buffer) => (data += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body: JSON.parse(data) as Record<string, unknown> }))
      })
      r.on('error', reject)
      r.end()
    })
  const proof = (path: string, method = 'GET', extra: { nonce?: string; token?: string } = {}) =>
    createProof(agent, { method, url: `${origin}${path}`, accessToken: extra.token ?? token, ...(extra.nonce ? { nonce: extra.nonce } : {}) })

  it('accepts Authorization: DPoP + one DPoP header (query ignored for htu)', async () => {
    const r = await send('/files?x=1', { authorization: `DPoP ${token}`, dpop: proof('/files') })
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ actor: agent.did, subject: 'alice', chain: [agent.did] })
  })
  it('accepts one or more spaces between the scheme and the credential, and any case of the scheme (RFC 9110 §11.4)', async () => {
    for (const authz of [`DPoP  ${token}`, `dpop ${token}`, `DPOP   ${token}`]) {
      const r = await send('/files', { authorization: authz, dpop: proof('/files') })
      expect(r.status, JSON.stringify(authz.slice(0, 8))).toBe(200)
    }
    // a tab is not a separator there: refused, never read as part of the token
    expect((await send('/files', { authorization: `DPoP\t${token}`, dpop: proof('/files') })).status).toBe(401)
  })
  it('refuses two DPoP header fields → 401 TOKEN_MALFORMED', async () => {
    const r = await send('/files', { authorization: `DPoP ${token}`, dpop: [proof('/files'), proof('/files')] })
    expect(r.status).toBe(401)
    expect(r.body.code).toBe('TOKEN_MALFORMED')
  })
  it('refuses Bearer (no downgrade) → 401 with a DPoP challenge', async () => {
    const r = await send('/files', { authorization: `Bearer ${token}`, dpop: proof('/files') })
    expect(r.status).toBe(401)
    expect(r.body.code).toBe('PROOF_MISSING')
    expect(r.headers['www-authenticate']).toMatch(/^DPoP /)
  })
  it('a request without any credential gets a challenge with no error code (RFC 6750 §3.1)', async () => {
    const r = await send('/files', {})
    expect(r.status).toBe(401)
    const challenge = r.headers['www-authenticate'] as string
    expect(challenge).toMatch(/^DPoP /)
    expect(challenge).not.toMatch(/error=/)
    expect(challenge).toContain('algs=')
  })
  it('another scheme counts as no credential (no error code); a DPoP credential without its proof does get one', async () => {
    const bearer = await send('/files', { authorization: `Bearer ${token}` })
    expect(bearer.status).toBe(401)
    expect(bearer.headers['www-authenticate']).not.toMatch(/error=/)
    const noProof = await send('/files', { authorization: `DPoP ${token}` })
    expect(noProof.status).toBe(401)
    expect(noProof.headers['www-authenticate']).toContain('error="invalid_token"')
  })
  it('refuses htm, htu and ath mismatches → PROOF_INVALID (invalid_dpop_proof)', async () => {
    for (const [path, p] of [['/files', proof('/files', 'POST')], ['/files', proof('/other')], ['/files', proof('/files', 'GET', { token: `${token}x` })]] as const) {
      const r = await send(path, { authorization: `DPoP ${token}`, dpop: p })
      expect(r.status).toBe(401)
      expect(r.body).toMatchObject({ code: 'PROOF_INVALID', error: 'invalid_dpop_proof' })
    }
  })
  it('refuses a replayed proof → PROOF_REPLAYED', async () => {
    const p = proof('/files')
    expect((await send('/files', { authorization: `DPoP ${token}`, dpop: p })).status).toBe(200)
    expect((await send('/files', { authorization: `DPoP ${token}`, dpop: p })).body.code).toBe('PROOF_REPLAYED')
  })
  it('nonce flow: NONCE_REQUIRED with DPoP-Nonce (use_dpop_nonce), then success with the nonce', async () => {
    const first = await send('/nonce/files', { authorization: `DPoP ${token}`, dpop: proof('/nonce/files') })
    expect(first.status).toBe(401)
    expect(first.body).toMatchObject({ code: 'NONCE_REQUIRED', error: 'use_dpop_nonce' })
    const nonce = first.headers['dpop-nonce'] as string
    expect(nonce).toBe(nonces.current())
    expect(first.headers['www-authenticate']).toContain('error="use_dpop_nonce"')
    const second = await send('/nonce/files', { authorization: `DPoP ${token}`, dpop: proof('/nonce/files', 'GET', { nonce }) })
    expect(second.status).toBe(200)
    const wrong = await send('/nonce/files', { authorization: `DPoP ${token}`, dpop: proof('/nonce/files', 'GET', { nonce: 'stale' }) })
    expect(wrong.body.code).toBe('NONCE_REQUIRED')
  })
  it('third-party dpop proofs (alg Ed25519) with the server nonce pass', async () => {
    const kp = await generateKeyPair('Ed25519')
    const jwk = (await crypto.subtle.exportKey('jwk', kp.publicKey)) as { x: string }
    const did = didKeyFromPublicJwk({ kty: 'OKP', crv: 'Ed25519', x: jwk.x })
    const claims = buildRootMandate({ subject: 'bob', agent: { id: did, jkt: await calculateThumbprint(kp.publicKey) }, audiences: [origin], tools: [{ type: 'tool_access', tools: ['x'] }] }, { issuer: ISSUER, now: auth.now, jti: randomId(), txn: randomId() })
    const t = signMandate(claims, auth.key)
    const first = await send('/nonce/a', { authorization: `DPoP ${t}`, dpop: await generateProof(kp, `${origin}/nonce/a`, 'GET', undefined, t) })
    expect(first.body.code).toBe('NONCE_REQUIRED')
    const ok = await send('/nonce/a', { authorization: `DPoP ${t}`, dpop: await generateProof(kp, `${origin}/nonce/a`, 'GET', first.headers['dpop-nonce'] as string, t) })
    expect(ok.status).toBe(200)
    expect(ok.body.actor).toBe(did)
  })
  it('fetch-style Headers (repeated fields joined with ", ") are refused too', async () => {
    const h = new Headers()
    h.append('authorization', `DPoP ${token}`)
    h.append('dpop', proof('/files'))
    h.append('dpop', proof('/files'))
    await expectReject(guard.verifyRequest({ method: 'GET', url: `${origin}/files`, headers: h }), 'TOKEN_MALFORMED')
  })
})

describe('verifyToolCall results and replay', () => {
  it('reports who, for what task, under which chain, with which approval', async () => {
    const auth = new TestAuthority()
    const a = Ed25519Key.generate()
    const b = Ed25519Key.generate()
    const root = auth.root(a)
    const child = await auth.narrow(root.token, a, auth.delegate(b))
    const parent = await verifyMandate(child.token, { issuer: ISSUER, keys: auth.keys, now: auth.now })
    const args = { path: '/data/q.csv', amount: 3 }
    const approval = { id: randomId(), approver: 'carol', approved_at: auth.now }
    const callClaims = narrowMandate(parent.claims, { kind: 'call', audience: 'https://tools.example/mcp', tool: 'billing.refund', arguments: args }, { issuer: ISSUER, now: auth.now, jti: randomId(), parentToken: child.token, caller: { id: b.did, jkt: b.jkt }, approval })
    const cred = signMandate(callClaims, auth.key)
    const guard = auth.guard()
    const proof = createProof(b, { accessToken: cred, audience: 'https://tools.example/mcp', tool: 'billing.refund', arguments: args })
    const v = await guard.verifyToolCall({ mandate: cred, proof, tool: 'billing.refund', arguments: args })
    expect(v).toMatchObject({
      subject: 'alice', actor: b.did, actorChain: [a.did, b.did], task: { id: root.claims.txn, purpose: 'triage' }, scopes: ['read', 'write'],
      tool: 'billing.refund', argumentsDigest: argumentsDigest(args), approval, mandateId: callClaims.jti, ancestors: [root.claims.jti, child.claims.jti],
      callBound: true, jkt: b.jkt, expiresAt: callClaims.exp,
    })
    // the proof is single use, and so is the credential (even with a fresh proof)
    await expectReject(guard.verifyToolCall({ mandate: cred, proof, tool: 'billing.refund', arguments: args }), 'PROOF_REPLAYED')
    const again = createProof(b, { accessToken: cred, audience: 'https://tools.example/mcp', tool: 'billing.refund', arguments: args })
    await expectReject(guard.verifyToolCall({ mandate: cred, proof: again, tool: 'billing.refund', arguments: args }), 'TOKEN_REPLAYED')
  })
  it('a refused call does not burn the credential; requireCallBinding refuses audience-level mandates', async () => {
    const auth = new TestAuthority()
    const a = Ed25519Key.generate()
    const root = auth.root(a)
    const guard = auth.guard({ requireCallBinding: true })
    const args = { path: '/data/x', amount: 1 }
    const p = createProof(a, { accessToken: root.token, audience: 'https://tools.example/mcp', tool: 'files.read', arguments: args })
    await expectReject(guard.verifyToolCall({ mandate: root.token, proof: p, tool: 'files.read', arguments: args }), 'CALL_CREDENTIAL_REQUIRED')
    // the same proof is still usable at a guard that accepts audience-level mandates: nothing was burnt
    await auth.guard({ replay: new MemoryReplayStore() }).verifyToolCall({ mandate: root.token, proof: p, tool: 'files.read', arguments: args })
  })
  it('a proof stays single use through the last second it is accepted in (iat + maxAge + skew), with the default store', async () => {
    const auth = new TestAuthority()
    const a = Ed25519Key.generate()
    const root = auth.root(a)
    const args = { path: '/data/x', amount: 1 }
    let now = auth.now
    // no replay option: the guard's default store, on the guard's clock
    const guard = auth.guard({ clock: () => now * 1000 })
    const p = createProof(a, { accessToken: root.token, audience: 'https://tools.example/mcp', tool: 'files.read', arguments: args, now: auth.now })
    const call = () => guard.verifyToolCall({ mandate: root.token, proof: p, tool: 'files.read', arguments: args })
    await call()
    for (const dt of [1, 89, 90]) {
      now = auth.now + dt
      await expectReject(call(), 'PROOF_REPLAYED')
    }
    now = auth.now + 91
    await expectReject(call(), 'PROOF_STALE')
  })
  it('a guard clock behind the system clock keeps single use with the default store', async () => {
    const auth = new TestAuthority()
    auth.now -= 3600
    const a = Ed25519Key.generate()
    const root = auth.root(a)
    const args = { path: '/data/x', amount: 1 }
    // an hour behind Date.now: every expiry the guard computes is an hour in the system clock's past
    const guard = auth.guard({ clock: () => auth.now * 1000 })
    const p = createProof(a, { accessToken: root.token, audience: 'https://tools.example/mcp', tool: 'files.read', arguments: args, now: auth.now })
    await guard.verifyToolCall({ mandate: root.token, proof: p, tool: 'files.read', arguments: args })
    await expectReject(guard.verifyToolCall({ mandate: root.token, proof: p, tool: 'files.read', arguments: args }), 'PROOF_REPLAYED')
  })
  it('a proof for another audience or tool is refused', async () => {
    const auth = new TestAuthority()
    const a = Ed25519Key.generate()
    const root = auth.root(a)
    const args = { path: '/data/x', amount: 1 }
    const guard = auth.guard()
    const p1 = createProof(a, { accessToken: root.token, audience: 'https://other.example/api', tool: 'files.read', arguments: args })
    await expectReject(guard.verifyToolCall({ mandate: root.token, proof: p1, tool: 'files.read', arguments: args }), 'PROOF_INVALID')
    const p2 = createProof(a, { accessToken: root.token, audience: 'https://tools.example/mcp', tool: 'files.write', arguments: args })
    await expectReject(guard.verifyToolCall({ mandate: root.token, proof: p2, tool: 'files.read', arguments: args }), 'PROOF_INVALID')
    const p3 = createProof(a, { accessToken: root.token, audience: 'https://tools.example/mcp', tool: 'files.read', arguments: { ...args, amount: 2 } })
    await expectReject(guard.verifyToolCall({ mandate: root.token, proof: p3, tool: 'files.read', arguments: args }), 'ARGUMENTS_MISMATCH')
  })
})

describe('createRemoteKeySet against a real JWKS server', () => {
  it('fetches, refreshes on an unknown kid, honours the cooldown, and keeps keys when the server fails', async () => {
    const k1 = Ed25519Key.generate()
    const k2 = Ed25519Key.generate()
    let served = [k1.publicJwk]
    let fetches = 0
    let fail = false
    const { server, origin } = await listen((req, res) => {
      fetches++
      if (fail) return void res.writeHead(500).end()
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: served }))
    })
    servers.push(server)
    let clock = 1_000_000
    const ks = createRemoteKeySet(`${origin}/jwks`, { cooldownMs: 30_000, maxAgeMs: 600_000, now: () => clock })
    expect(await ks.resolve(k1.kid)).toBeDefined()
    expect(fetches).toBe(1)
    await ks.resolve(k1.kid)
    expect(fetches).toBe(1) // cached
    // rotation: k2 appears; inside the cooldown an unknown kid does not refetch
    served = [k1.publicJwk, k2.publicJwk]
    clock += 1_000
    await expectReject(Promise.resolve().then(() => ks.resolve(k2.kid)), 'KEY_NOT_FOUND')
    expect(fetches).toBe(1)
    clock += 30_000
    expect(await ks.resolve(k2.kid)).toBeDefined()
    expect(fetches).toBe(2)
    // an unknown kid after the cooldown refetches once, then stays refused within the cooldown
    clock += 31_000
    await expectReject(Promise.resolve().then(() => ks.resolve('nope')), 'KEY_NOT_FOUND')
    await expectReject(Promise.resolve().then(() => ks.resolve('nope')), 'KEY_NOT_FOUND')
    expect(fetches).toBe(3)
    // server down past max age: known keys still resolve
    fail = true
    clock += 700_000
    expect(await ks.resolve(k1.kid)).toBeDefined()
    // ...and a failing endpoint is not asked again by every request: 200 requests with random kids
    // and 200 with a known one, within one cooldown, make no further fetch
    const before = fetches
    for (let i = 0; i < 200; i++) {
      await expectReject(Promise.resolve().then(() => ks.resolve(`random-${i}`)), 'KEY_NOT_FOUND')
      expect(await ks.resolve(k1.kid)).toBeDefined()
    }
    expect(fetches - before).toBe(0)
    // after the failed-fetch cooldown (5 s), one try again
    clock += 5_000
    await ks.resolve(k1.kid)
    expect(fetches - before).toBe(1)
  })
  it('a guard configured with a JWKS URL verifies end to end; an unreachable JWKS → JWKS_UNAVAILABLE', async () => {
    const auth = new TestAuthority()
    const { server, origin } = await listen((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [auth.key.publicJwk] })))
    servers.push(server)
    const a = Ed25519Key.generate()
    const root = auth.root(a)
    const guard = createGuard({ issuer: ISSUER, jwks: `${origin}/jwks`, audience: 'https://tools.example/mcp' })
    const args = { path: '/data/x', amount: 1 }
    const v = await guard.verifyToolCall({ mandate: root.token, proof: createProof(a, { accessToken: root.token, audience: 'https://tools.example/mcp', tool: 'files.read', arguments: args }), tool: 'files.read', arguments: args })
    expect(v.actor).toBe(a.did)
    const { server: dead, origin: deadOrigin } = await listen((_req, res) => void res.writeHead(503).end())
    servers.push(dead)
    const g2 = createGuard({ issuer: ISSUER, jwks: `${deadOrigin}/jwks`, audience: 'https://tools.example/mcp' })
    await expectReject(g2.verifyToolCall({ mandate: root.token, proof: createProof(a, { accessToken: root.token, audience: 'https://tools.example/mcp', tool: 'files.read', arguments: args }), tool: 'files.read', arguments: args }), 'JWKS_UNAVAILABLE')
  })
})

describe('createRevocationStatusClient: pages, advice, a restored Authority', () => {
  /** A status server over `log` (seq = index + 1), `page` entries a document, with `more`. */
  async function statusServer(page: number, refresh?: number) {
    const state = { log: [] as string[], head: () => state.log.length, seen: [] as (string | null)[] }
    const { server, origin } = await listen((req, res) => {
      const since = new URL(req.url as string, 'http://x').searchParams.get('since')
      state.seen.push(since)
      const after = Number(since ?? 0)
      if (!/^\d+$/.test(since ?? '0') || after > state.head()) return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request","error_description":"since is ahead of this Authority"}')
      const ids = state.log.slice(after, after + page)
      const doc: RevocationStatusDocument & { more?: boolean } = { issuer: ISSUER, cursor: String(after + ids.length), mandates: ids, tasks: [], agents: [], ...(refresh !== undefined ? { refresh_interval: refresh } : {}), ...(after + ids.length < state.head() ? { more: true } : {}) }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc))
    })
    servers.push(server)
    return { ...state, state, url: `${origin}/revocation-status` }
  }
  const q = (id: string) => ({ ids: [id], txn: 't', actors: [] })

  it('reads every page before it counts as current: the last of 12 000 revocations is known at the first check', async () => {
    const s = await statusServer(5_000)
    for (let i = 0; i < 12_000; i++) s.state.log.push(`m${i}`)
    const status = createRevocationStatusClient(s.url, { issuer: ISSUER })
    expect(await status.isRevoked(q('m11999'))).toBe(true)
    expect(s.state.seen).toEqual([null, '5000', '10000'])
  })

  it('follows a refresh_interval shorter than its own interval (down to 1 s)', async () => {
    const s = await statusServer(5_000, 1)
    let clock = 1_000_000
    const status = createRevocationStatusClient(s.url, { issuer: ISSUER, intervalMs: 5_000, now: () => clock })
    expect(await status.isRevoked(q('late'))).toBe(false)
    s.state.log.push('late')
    clock += 1_000
    expect(await status.isRevoked(q('late'))).toBe(true)
  })

  it('a cursor the Authority refuses (restored from a backup: its cursors went back) is dropped for a full read, never kept refusing', async () => {
    const s = await statusServer(5_000)
    s.state.log.push('a', 'b', 'c', 'd')
    let clock = 1_000_000
    const status = createRevocationStatusClient(s.url, { issuer: ISSUER, intervalMs: 5_000, now: () => clock })
    expect(await status.isRevoked(q('d'))).toBe(true)
    // the Authority restored to a backup at cursor 2, then a new revocation takes seq 3
    s.state.log.splice(2, 2, 'after-restore')
    clock += 5_000
    expect(await status.isRevoked(q('after-restore'))).toBe(true)
    // what was learned before stays revoked here
    expect(await status.isRevoked(q('d'))).toBe(true)
    expect(s.state.seen.slice(-2)).toEqual(['4', null])
  })
})

describe('createRevocationStatusClient against a real status server', () => {
  it('learns revocations incrementally (since=cursor), revokes descendants at the guard, fails closed when stale', async () => {
    const log: { cursor: number; kind: 'mandates' | 'tasks' | 'agents'; id: string }[] = []
    const seen: (string | null)[] = []
    let down = false
    let issuer = ISSUER
    const { server, origin } = await listen((req, res) => {
      if (down) return void res.writeHead(500).end()
      const since = new URL(req.url as string, 'http://x').searchParams.get('since')
      seen.push(since)
      const after = log.filter((e) => e.cursor > Number(since ?? 0))
      const doc: RevocationStatusDocument = {
        issuer, cursor: String(log.length), refresh_interval: 5,
        mandates: after.filter((e) => e.kind === 'mandates').map((e) => e.id),
        tasks: after.filter((e) => e.kind === 'tasks').map((e) => e.id),
        agents: after.filter((e) => e.kind === 'agents').map((e) => e.id),
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc))
    })
    servers.push(server)
    let clock = 5_000_000
    const status = createRevocationStatusClient(`${origin}/revocation-status`, { issuer: ISSUER, intervalMs: 5_000, maxStalenessMs: 60_000, now: () => clock })
    const auth = new TestAuthority()
    const a = Ed25519Key.generate()
    const b = Ed25519Key.generate()
    const root = auth.root(a)
    const child = await auth.narrow(root.token, a, auth.delegate(b))
    const guard = auth.guard({ revocation: status, clock: () => auth.now * 1000 })
    const args = { path: '/data/x', amount: 1 }
    const callOnce = () => guard.verifyToolCall({ mandate: child.token, proof: createProof(b, { accessToken: child.token, audience: 'https://tools.example/mcp', tool: 'files.read', arguments: args, now: auth.now }), tool: 'files.read', arguments: args })
    await callOnce()
    expect(seen).toEqual([null])
    log.push({ cursor: 1, kind: 'mandates', id: root.claims.jti }) // revoke the ROOT
    await callOnce() // within the interval: not yet known
    clock += 5_000
    await expectReject(callOnce(), 'REVOKED')
    expect(seen).toEqual([null, '0'])
    expect(status.list.mandates.has(root.claims.jti)).toBe(true)
    // a document from another issuer is ignored; the authority going away fails closed after maxStaleness
    issuer = 'https://evil.example'
    log.push({ cursor: 2, kind: 'agents', id: 'x' })
    clock += 5_000
    await expectReject(callOnce(), 'REVOKED')
    expect(status.list.agents.has('x')).toBe(false)
    down = true
    clock += 61_000
    await expectReject(callOnce(), 'REVOCATION_STATUS_UNAVAILABLE')
  })
})

describe('interop: jose.jwtVerify accepts our mandates', () => {
  it('typ at+jwt, alg Ed25519 (RFC 9864), issuer and audience, key from a JWKS of the published key', async () => {
    const auth = new TestAuthority()
    const a = Ed25519Key.generate()
    const root = auth.root(a)
    const child = await auth.narrow(root.token, a, auth.delegate(Ed25519Key.generate()))
    for (const t of [root.token, child.token]) {
      const { payload, protectedHeader } = await jwtVerify(t, createLocalJWKSet({ keys: [auth.key.publicJwk] }), {
        typ: 'at+jwt', algorithms: ['EdDSA', 'Ed25519'], issuer: ISSUER, audience: 'https://tools.example/mcp', currentDate: new Date(auth.now * 1000),
      })
      expect(protectedHeader).toMatchObject({ alg: 'Ed25519', typ: 'at+jwt', kid: auth.key.kid })
      expect(payload.sub).toBe('alice')
    }
    // and jose refuses what we refuse: a token signed by another key
    const other = new TestAuthority()
    await expect(jwtVerify(other.root(a).token, await importJWK(auth.key.publicJwk), { typ: 'at+jwt', algorithms: ['Ed25519'] })).rejects.toThrow()
  })
})
