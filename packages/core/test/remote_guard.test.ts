// createRemoteGuard against a real node:http "Authority" on 127.0.0.1 serving RFC 8414 metadata, a
// JWKS and revocation status for a real core-signed key (core may not depend on @mandate/authority).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import {
  buildRootMandate, createGuard, createHttpAuthorityClient, createProof, createRemoteGuard, Ed25519Key, randomId, signMandate, type RevocationStatusDocument,
} from '@mandate/core'
import { expectCode, expectReject } from './helpers.js'

const AUDIENCE = 'https://tools.example/mcp'
const servers: Server[] = []
afterAll(async () => {
  for (const s of servers) s.closeAllConnections()
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
})

interface FakeAuthority {
  issuer: string
  key: Ed25519Key
  revoked: string[]
  down: { jwks: boolean; status: boolean; metadata: boolean }
  hits: { jwks: number; status: number }
  metadata: Record<string, unknown>
  statusDelayMs: number
}

async function fakeAuthority(): Promise<FakeAuthority> {
  const fa = {
    key: Ed25519Key.generate(), revoked: [] as string[], down: { jwks: false, status: false, metadata: false }, hits: { jwks: 0, status: 0 },
    statusDelayMs: 0,
  } as FakeAuthority
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', fa.issuer).pathname
    const json = (body: unknown) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    if (path === '/.well-known/oauth-authorization-server') return fa.down.metadata ? void res.writeHead(503).end() : json(fa.metadata)
    if (path === '/jwks') {
      fa.hits.jwks++
      return fa.down.jwks ? void res.writeHead(503).end() : json({ keys: [fa.key.publicJwk] })
    }
    if (path === '/revocation-status') {
      fa.hits.status++
      if (fa.down.status) return void res.writeHead(503).end()
      const doc: RevocationStatusDocument = { issuer: fa.issuer, cursor: String(fa.revoked.length), mandates: fa.revoked, tasks: [], agents: [], refresh_interval: 5 }
      return void setTimeout(() => json(doc), fa.statusDelayMs)
    }
    res.writeHead(404).end()
  }
  const server = createServer(handle)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push(server)
  fa.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  fa.metadata = { issuer: fa.issuer, token_endpoint: `${fa.issuer}/token`, jwks_uri: `${fa.issuer}/jwks`, revocation_status_endpoint: `${fa.issuer}/revocation-status` }
  return fa
}

function grant(fa: FakeAuthority, agent: Ed25519Key) {
  const claims = buildRootMandate(
    { subject: 'alice', agent: { id: agent.did, jkt: agent.jkt }, audiences: [AUDIENCE], tools: [{ type: 'tool_access', tools: ['files.read'] }] },
    { issuer: fa.issuer, now: Math.floor(Date.now() / 1000), jti: randomId(), txn: randomId() },
  )
  return { token: signMandate(claims, fa.key), claims }
}

const args = { path: '/data/x' }
function call(guard: Awaited<ReturnType<typeof createRemoteGuard>>, token: string, holder: Ed25519Key, nowMs = Date.now()) {
  const proof = createProof(holder, { accessToken: token, audience: AUDIENCE, tool: 'files.read', arguments: args, now: Math.floor(nowMs / 1000) })
  return guard.verifyToolCall({ mandate: token, proof, tool: 'files.read', arguments: args })
}

describe('createRemoteGuard', () => {
  it('discovers JWKS and revocation status, primes both, and checks revocation by default', async () => {
    const fa = await fakeAuthority()
    fa.statusDelayMs = 100
    const agent = Ed25519Key.generate()
    const root = grant(fa, agent)
    let clock = Date.now()
    const guard = await createRemoteGuard({ issuer: fa.issuer, audience: AUDIENCE, clock: () => clock })
    // primed: both fetched before the guard existed
    expect(fa.hits).toEqual({ jwks: 1, status: 1 })
    // three parallel first calls: none refused for a cold cache
    const first = await Promise.allSettled([call(guard, root.token, agent), call(guard, root.token, agent), call(guard, root.token, agent)])
    expect(first.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled'])
    // revocation is checked without the caller configuring anything
    fa.revoked.push(root.claims.jti)
    clock += 5_000
    await expectReject(call(guard, root.token, agent), 'REVOKED')
  })

  it('fails closed when revocation status goes stale, and when the JWKS goes stale', async () => {
    const fa = await fakeAuthority()
    const agent = Ed25519Key.generate()
    const root = grant(fa, agent)
    let clock = Date.now()
    const guard = await createRemoteGuard({ issuer: fa.issuer, audience: AUDIENCE, clock: () => clock })
    await call(guard, root.token, agent)
    fa.down.status = true
    clock += 61_000
    await expectReject(call(guard, root.token, agent, clock), 'REVOCATION_STATUS_UNAVAILABLE')
    // the JWKS: known keys are kept through short outages, never past jwksMaxStalenessMs
    const fb = await fakeAuthority()
    const r2 = grant(fb, agent)
    let clock2 = Date.now()
    const g2 = await createRemoteGuard({ issuer: fb.issuer, audience: AUDIENCE, clock: () => clock2, jwksMaxStalenessMs: 120_000, revocationMaxStalenessMs: 10 * 3_600_000 })
    fb.down.jwks = true
    clock2 += 100_000
    await call(g2, r2.token, agent, clock2)
    clock2 += 30_000
    await expectReject(call(g2, r2.token, agent, clock2), 'JWKS_UNAVAILABLE')
  })

  it('refuses to build without a revocation status endpoint unless the caller opts out explicitly', async () => {
    const fa = await fakeAuthority()
    delete fa.metadata.revocation_status_endpoint
    const e = await expectReject(createRemoteGuard({ issuer: fa.issuer, audience: AUDIENCE }), 'CONFIG_INVALID')
    expect(e.message).toMatch(/revocation_status_endpoint/)
    const agent = Ed25519Key.generate()
    const guard = await createRemoteGuard({ issuer: fa.issuer, audience: AUDIENCE, insecureAllowNoRevocation: true })
    await call(guard, grant(fa, agent).token, agent)
  })

  it('refuses to build when priming fails or the metadata is not the issuer’s', async () => {
    const fa = await fakeAuthority()
    fa.down.status = true
    await expectReject(createRemoteGuard({ issuer: fa.issuer, audience: AUDIENCE }), 'REVOCATION_STATUS_UNAVAILABLE')
    fa.down.status = false
    fa.down.jwks = true
    await expectReject(createRemoteGuard({ issuer: fa.issuer, audience: AUDIENCE }), 'JWKS_UNAVAILABLE')
    fa.down.jwks = false
    // exact issuer match: a trailing slash is another issuer
    await expectReject(createRemoteGuard({ issuer: `${fa.issuer}/`, audience: AUDIENCE }), 'ISSUER_MISMATCH')
    fa.metadata = { ...fa.metadata, issuer: 'https://evil.example' }
    await expectReject(createRemoteGuard({ issuer: fa.issuer, audience: AUDIENCE }), 'ISSUER_MISMATCH')
    fa.metadata = { ...fa.metadata, issuer: fa.issuer, jwks_uri: 42 }
    await expectReject(createRemoteGuard({ issuer: fa.issuer, audience: AUDIENCE }), 'INVALID_RESPONSE')
    fa.down.metadata = true
    await expectReject(createRemoteGuard({ issuer: fa.issuer, audience: AUDIENCE }), 'INVALID_RESPONSE')
  })

  it('an unreachable Authority → AUTHORITY_UNREACHABLE', async () => {
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const port = (probe.address() as AddressInfo).port
    await new Promise((r) => probe.close(r))
    const e = await expectReject(createRemoteGuard({ issuer: `http://127.0.0.1:${port}`, audience: AUDIENCE }), 'AUTHORITY_UNREACHABLE')
    expect(e.detail?.url).toBe(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)
  })

  it('configuration mistakes are CONFIG_INVALID MandateErrors at construction', async () => {
    const jwks = { keys: [Ed25519Key.generate().publicJwk] }
    expectCode(() => createGuard({ issuer: '', jwks, audience: AUDIENCE }), 'CONFIG_INVALID')
    expectCode(() => createGuard({ issuer: 'https://a.example', jwks, audience: '' }), 'CONFIG_INVALID')
    expectCode(() => createGuard({ issuer: 'https://a.example', jwks, audience: AUDIENCE, skew: 600 }), 'CONFIG_INVALID')
    expectCode(() => createGuard({ issuer: 'https://a.example', jwks, audience: AUDIENCE, argumentLimits: { maxBytes: -1 } }), 'CONFIG_INVALID')
    expectCode(() => createHttpAuthorityClient({ issuer: '', key: Ed25519Key.generate() }), 'CONFIG_INVALID')
    await expectReject(createRemoteGuard({ issuer: '', audience: AUDIENCE }), 'CONFIG_INVALID')
    await expectReject(createRemoteGuard({ issuer: 'not a url', audience: AUDIENCE }), 'CONFIG_INVALID')
  })
})
